"""Drive a program in a real terminal: a detached tmux session of a fixed size.

`TmuxSession.start(argv, ...)` runs the program in a new session on its own tmux server
socket (so nothing touches the user's tmux), `keys()` types, `screen()` reads the visible
pane back with `capture-pane`, `wait_for()` polls the screen for text. The session and its
server go away on `close()` (or leaving the `with` block), whatever happened.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

POLL_S = 0.2


def tmux_unavailable_reason() -> str | None:
    return None if shutil.which("tmux") else "tmux is not installed"


class TmuxSession:
    def __init__(self, socket: Path, name: str) -> None:
        self.socket = socket
        self.name = name

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        workdir: Path,
        size: tuple[int, int] = (120, 40),
        env: Mapping[str, str] | None = None,
    ) -> TmuxSession:
        session = cls(workdir / f"tmux-{uuid.uuid4().hex[:8]}.sock", "edgetop")
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        # `remain-on-exit` keeps the pane (and what the program last printed) after it exits.
        command = f"env {exports} {shlex.join(argv)}" if exports else shlex.join(argv)
        session._tmux(
            "new-session", "-d", "-s", session.name, "-x", str(size[0]), "-y", str(size[1]),
            command,
        )  # fmt: skip
        session._tmux("set-option", "-t", session.name, "remain-on-exit", "on")
        return session

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        """Send keys (tmux key names such as Enter, Tab, C-u; or text with literal=True)."""
        self._tmux("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def styled_screen(self) -> str:
        """The screen with its colour escapes: focus moving shows up here, not in the text."""
        return self._tmux("capture-pane", "-e", "-p", "-t", self.name)

    def dead(self) -> bool:
        return self._tmux("display-message", "-p", "-t", self.name, "#{pane_dead}").strip() == "1"

    def wait_for(
        self, check: str | Callable[[str], bool], timeout: float, what: str | None = None
    ) -> str:
        """Poll the screen until `check` (text it must show, or a predicate) holds; the last
        screen is in the error otherwise."""
        test = (lambda s: check in s) if isinstance(check, str) else check
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if test(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {timeout:.0f}s the screen does not show {what or check!r}:\n{text}"
                )
            time.sleep(POLL_S)

    def wait_settled(self, timeout: float, quiet_s: float = 0.6) -> None:
        """Wait until the screen, colours included, has not changed for `quiet_s`: the program
        has finished reacting to the last keys (a list closing, focus moving back). A blinking
        cursor never settles, so call this while a list or button has focus, not a text field."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            text = self.styled_screen()
            if text != last:
                last, since = text, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(POLL_S / 2)
        raise AssertionError(f"after {timeout:.0f}s the screen still changes:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )
        self.socket.unlink(missing_ok=True)

    def __enter__(self) -> TmuxSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
