"""The state directory: desired deployments and the decision log, never half-written.

- `deployments.json`: every deployment edgetop manages, rewritten whole through a temporary
  file, fsync and rename, so a crash leaves the old or the new file and never a torn one.
- `decisions.jsonl`: the audit log, one JSON object per decision, appended and fsynced.
- `lock`: an flock held while a process updates the state, so the interface, `--auto` and
  `edgetop deploy` run side by side without losing each other's changes.

Location: `--state-dir`, else `$XDG_STATE_HOME/edgetop`, else `~/.local/state/edgetop`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetop.core.lifecycle import Deployment, LifecycleError
from edgetop.remote.errors import EdgetopError

STATE_VERSION = 1
DEPLOYMENTS_FILE = "deployments.json"
DECISIONS_FILE = "decisions.jsonl"
LOCK_FILE = "lock"


class StateError(EdgetopError):
    """The state directory cannot be used: unreadable, corrupt, or of another version."""


def default_state_dir(environ: Mapping[str, str] = os.environ, home: Path | None = None) -> Path:
    base = environ.get("XDG_STATE_HOME")
    if base and Path(base).is_absolute():  # the XDG spec says relative values are ignored
        return Path(base) / "edgetop"
    return (home or Path.home()) / ".local" / "state" / "edgetop"


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text`: temp file in the same directory, fsync, rename, fsync dir."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class Decision:
    """One line of the audit log."""

    who: str  # "operator" or "auto"
    action: str  # deploy, accept, override, move, rollback, stop, fail, ...
    deployment: str
    detail: Mapping[str, Any]  # what was chosen, the recommendation followed or overridden, ...
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.at, 3),
            "who": self.who,
            "action": self.action,
            "deployment": self.deployment,
            **self.detail,
        }


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _ensure(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(f"cannot create state directory {self.directory}: {exc}") from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the state's lock (blocking) for a read-modify-write."""
        self._ensure()
        with open(self.directory / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self) -> tuple[Deployment, ...]:
        path = self.directory / DEPLOYMENTS_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ()
        except OSError as exc:
            raise StateError(f"cannot read {path}: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StateError(f"{path} is not valid JSON ({exc}); it was not written by edgetop "
                             "or was edited by hand: fix or remove it") from None  # fmt: skip
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            found = data.get("version") if isinstance(data, dict) else None
            raise StateError(f"{path} is state version {found!r}, expected {STATE_VERSION}")
        records = data.get("deployments")
        if not isinstance(records, list):
            raise StateError(f"{path}: 'deployments' must be a list")
        try:
            return tuple(Deployment.from_dict(r) for r in records)
        except LifecycleError as exc:
            raise StateError(f"{path}: {exc}") from None

    def save(self, deployments: tuple[Deployment, ...]) -> None:
        self._ensure()
        data = {"version": STATE_VERSION, "deployments": [d.to_dict() for d in deployments]}
        try:
            write_atomic(self.directory / DEPLOYMENTS_FILE, json.dumps(data, indent=1) + "\n")
        except OSError as exc:
            raise StateError(f"cannot write {self.directory / DEPLOYMENTS_FILE}: {exc}") from None

    def update(
        self, change: Callable[[tuple[Deployment, ...]], tuple[Deployment, ...]]
    ) -> tuple[Deployment, ...]:
        """Load, apply `change` (pure), save: under the lock, so concurrent writers serialise."""
        with self.locked():
            new = change(self.load())
            self.save(new)
            return new

    def record(self, decision: Decision) -> None:
        """Append one decision to the audit log (fsynced: an audit line is never lost)."""
        self._ensure()
        line = json.dumps(decision.to_dict(), separators=(",", ":"), default=str) + "\n"
        path = self.directory / DECISIONS_FILE
        try:
            with open(path, "ab+") as f:
                # A line torn by a crash mid-append must not swallow this one.
                if f.seek(0, os.SEEK_END) > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = "\n" + line
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise StateError(f"cannot append to {path}: {exc}") from None

    def decisions(self) -> list[dict[str, Any]]:
        """The audit log; a torn last line (power cut mid-append) is skipped, not fatal."""
        path = self.directory / DECISIONS_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    out.append(entry)
        return out
