"""Starting, finding and stopping inference workers on a host (over SSH, or on this machine).

The host needs Python (>= `MIN_PYTHON`) with torch; nothing of edgetop is installed there.
The code a worker runs is shipped by `ensure_code` into a versioned cache directory,
`~/.cache/edgetop/<version>/edgetop/...` (the version is a hash of the shipped files, so an
unchanged tree is reused and a changed one gets a new directory, next to the old one that
running workers may still use), and workers run with PYTHONPATH pointing at it.

A deployment lives in `~/.local/state/edgetop/deployments/<id>/` on the host (see
`edgetop.remote.worker` for the files). `deploy` writes its spec.json, launches the worker
detached (`setsid`, stdio redirected, so it outlives the SSH session that started it) and waits
until it is running or has failed. `list_deployments` reads every deployment back, which is how
a restarted controller finds its workers again; `stop` ends one. Those two run the worker
module's own stdlib-only `--scan`/`--stop` commands on the host: one command each.

Quoting: nothing user-supplied is ever part of a shell script. The model name and the other
spec fields travel only inside spec.json (written over SFTP); paths and the interpreter are
passed as separate words of a fixed `sh -c` script or argv, each through `shlex.quote`, and
the remote login shell sees nothing else. Deployment ids and model names are also validated
(`edgetop.remote.worker.ID_RE` / `MODEL_RE`) before anything is sent.

Transports: pass an `asyncssh.SSHClientConnection` (from `edgetop.remote.ssh.connect`) or a
`LocalHost()` for the `local` transport; both go through the small `HostShell` interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import secrets
import shlex
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncssh

import edgetop
from edgetop.remote.errors import ConnectError, EdgetopError
from edgetop.remote.worker import (
    ID_RE,
    LOG_FILE,
    METRICS_FILE,
    MODULE,
    PID_FILE,
    SPEC_FILE,
    STATUS_FILE,
    SpecError,
    WorkerSpec,
)

DEFAULT_STATE_DIR = "~/.local/state/edgetop/deployments"
DEFAULT_CACHE_DIR = "~/.cache/edgetop"
MANIFEST = "MANIFEST.json"
# The worker's dependencies inside edgetop.remote; edgetop.models is shipped whole.
REMOTE_MODULES = ("__init__", "worker", "loadgen", "agent", "errors", "stage", "tensorwire")

# The worker, loadgen and edgetop.models run on Python >= 3.8: JetPack 5 Jetsons (Orin,
# Xavier) ship 3.8 with NVIDIA's torch wheels (tests/test_host_python.py guards it). torch
# there must be >= 2.0 (meta-device builds under `with torch.device(...)`, scaled dot-product
# attention; the worker refuses older ones itself, worker.MIN_TORCH), ideally >= 2.1
# (torch.utils.flop_counter, for the activation part of the worker's memory estimate).
MIN_PYTHON = (3, 8)
RUN_TIMEOUT_S = 60.0
TORCH_CHECK_TIMEOUT_S = 180.0  # a cold `import torch` on a Jetson's SD card takes a while
START_TIMEOUT_S = 180.0
POLL_INTERVAL_S = 0.25
# A worker that has not written its status this long after the launch never started.
NO_STATUS_GRACE_S = 15.0

# Fixed text; every variable part is a positional parameter ($1 dir, $2 python,
# $3 PYTHONPATH).
# `setsid` (or `nohup` where util-linux is missing) detaches the worker from the SSH session;
# with stdio on /dev/null and the log it holds nothing of the session open.
LAUNCH_SCRIPT = """\
cd "$1" || exit 90
rm -f status.json pid metrics.jsonl
if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=nohup; fi
PYTHONPATH="$3" "$detach" "$2" -m edgetop.remote.worker --dir "$1" \
  </dev/null >>worker.log 2>&1 &
"""
# $1 the code directory; the rest is the command.
WORKER_SCRIPT = 'cd "$1" || exit 90; PYTHONPATH="$1"; export PYTHONPATH; shift; exec "$@"'


class DeployError(EdgetopError):
    """A deployment could not be started, found or stopped; `info` is what the host said."""

    def __init__(self, message: str, info: DeploymentInfo | None = None) -> None:
        super().__init__(message)
        self.info = info


@dataclass(frozen=True)
class Layout:
    """Where deployments and shipped code live on a host; `~` is the remote user's home."""

    state: str = DEFAULT_STATE_DIR
    cache: str = DEFAULT_CACHE_DIR


@dataclass(frozen=True)
class DeploymentInfo:
    """One deployment directory as the host reported it.

    `state`: starting | running | failed | stopped, or `dead` (status says starting/running
    but the process is gone: killed, OOM-killed, host rebooted). `metrics` is the last metrics
    line (p50_ms, p90_ms, p99_ms, throughput, slo_compliance, count, device, threads, rss, t,
    ...); `metrics_age_s` its age by the host's clock."""

    host: str
    id: str
    dir: str
    state: str | None
    reason: str | None
    pid: int | None
    alive: bool
    spec: dict[str, Any] | None
    metrics: dict[str, Any] | None
    metrics_age_s: float | None
    log_tail: tuple[str, ...] = ()
    launch: str = ""

    @classmethod
    def from_wire(cls, data: Any, host: str) -> DeploymentInfo:
        """From the worker's `--describe`/`--scan` JSON; raises ValueError on anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ValueError(f"not a deployment description: {str(data)[:200]}")

        def opt(key: str, kind: type | tuple[type, ...]) -> Any:
            value = data.get(key)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        status = data.get("status") if isinstance(data.get("status"), dict) else {}
        tail = data.get("log_tail")
        return cls(
            host=host,
            id=data["id"],
            dir=str(data.get("dir", "")),
            state=opt("state", str),
            reason=opt("reason", str),
            pid=opt("pid", int),
            alive=data.get("alive") is True,
            spec=opt("spec", dict),
            metrics=opt("metrics", dict),
            metrics_age_s=opt("metrics_age_s", (int, float)),
            log_tail=tuple(str(x) for x in tail) if isinstance(tail, list) else (),
            launch=str(status.get("launch") or ""),
        )


@dataclass(frozen=True)
class DeploymentHandle:
    """A worker that `deploy` saw running."""

    host: str
    id: str
    dir: str
    pid: int | None
    code_dir: str
    python: str
    info: DeploymentInfo


# --------------------------------------------------------------------------------------------
# Hosts: the few operations the deployer needs, over SSH or on this machine
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Completed:
    returncode: int | None
    stdout: str
    stderr: str

    def tail(self, lines: int = 3) -> str:
        text = [ln.strip() for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        return " | ".join(text[-lines:])[:600]


class HostShell(ABC):
    """Run an argv and read/write files on one host. Paths are absolute and POSIX."""

    label: str

    @abstractmethod
    async def home(self) -> str: ...

    @abstractmethod
    async def run(self, argv: Sequence[str], *, timeout: float = RUN_TIMEOUT_S) -> Completed:
        """Run `argv` (no shell involved beyond quoting each word); never raises on exit status."""

    @abstractmethod
    async def exists(self, path: str) -> bool: ...

    @abstractmethod
    async def makedirs(self, path: str, mode: int = 0o755) -> None: ...

    @abstractmethod
    async def write(self, path: str, data: bytes) -> None: ...

    @abstractmethod
    async def rename(self, src: str, dst: str) -> None:
        """POSIX rename: replaces a file atomically; fails onto a non-empty directory."""

    @abstractmethod
    async def remove_tree(self, path: str) -> None: ...

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release per-session resources (not the connection itself)."""


class SSHHost(HostShell):
    """A host behind an asyncssh connection: commands as exec requests, files over SFTP."""

    def __init__(self, conn: asyncssh.SSHClientConnection, label: str | None = None) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self.label = label or (f"{peer[0]}:{peer[1]}" if peer else "ssh host")
        self._sftp: asyncssh.SFTPClient | None = None

    def _error(self, what: str, exc: BaseException) -> EdgetopError:
        if isinstance(exc, asyncssh.DisconnectError | OSError):
            return ConnectError(f"{self.label}: {what}: {exc}")
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        return DeployError(f"{self.label}: {what}: {reason}")

    async def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = await self._conn.start_sftp_client()
            except (asyncssh.Error, OSError) as exc:
                raise self._error("cannot start SFTP", exc) from None
        return self._sftp

    async def home(self) -> str:
        sftp = await self._client()
        try:
            return await sftp.realpath(".")
        except (asyncssh.Error, OSError) as exc:
            raise self._error("cannot find the home directory", exc) from None

    async def run(self, argv: Sequence[str], *, timeout: float = RUN_TIMEOUT_S) -> Completed:
        command = shlex.join(argv)
        try:
            done = await self._conn.run(command, check=False, timeout=timeout)
        except asyncssh.TimeoutError:
            raise DeployError(
                f"{self.label}: {argv[0]} did not finish within {timeout:g} s"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise self._error(f"cannot run {argv[0]}", exc) from None
        return Completed(done.exit_status, _text(done.stdout), _text(done.stderr))

    async def exists(self, path: str) -> bool:
        sftp = await self._client()
        try:
            return await sftp.exists(path)
        except (asyncssh.Error, OSError) as exc:
            raise self._error(f"cannot stat {path}", exc) from None

    async def makedirs(self, path: str, mode: int = 0o755) -> None:
        sftp = await self._client()
        try:
            await sftp.makedirs(path, attrs=asyncssh.SFTPAttrs(permissions=mode), exist_ok=True)
        except (asyncssh.Error, OSError) as exc:
            raise self._error(f"cannot create {path}", exc) from None

    async def write(self, path: str, data: bytes) -> None:
        sftp = await self._client()
        try:
            async with sftp.open(path, "wb") as handle:
                await handle.write(data)
        except (asyncssh.Error, OSError) as exc:
            raise self._error(f"cannot write {path}", exc) from None

    async def rename(self, src: str, dst: str) -> None:
        sftp = await self._client()
        try:
            await sftp.posix_rename(src, dst)
        except (asyncssh.Error, OSError) as exc:
            raise self._error(f"cannot rename {src} to {dst}", exc) from None

    async def remove_tree(self, path: str) -> None:
        sftp = await self._client()
        try:
            await sftp.rmtree(path)
        except (asyncssh.SFTPNoSuchFile, FileNotFoundError):
            pass
        except (asyncssh.Error, OSError) as exc:
            raise self._error(f"cannot remove {path}", exc) from None

    async def close(self) -> None:
        sftp, self._sftp = self._sftp, None
        if sftp is not None:
            sftp.exit()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sftp.wait_closed(), timeout=5)


class LocalHost(HostShell):
    """This machine (the `local` transport): subprocesses and plain file I/O."""

    def __init__(self, label: str = "local") -> None:
        self.label = label

    async def home(self) -> str:
        return str(Path.home())

    async def run(self, argv: Sequence[str], *, timeout: float = RUN_TIMEOUT_S) -> Completed:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return Completed(127, "", f"{argv[0]}: {exc.strerror or exc}")
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise DeployError(
                f"{self.label}: {argv[0]} did not finish within {timeout:g} s"
            ) from None
        return Completed(proc.returncode, _text(out), _text(err))

    async def exists(self, path: str) -> bool:
        return os.path.exists(path)

    async def makedirs(self, path: str, mode: int = 0o755) -> None:
        try:
            os.makedirs(path, mode=mode, exist_ok=True)
        except OSError as exc:
            raise DeployError(f"{self.label}: cannot create {path}: {exc.strerror}") from None

    async def write(self, path: str, data: bytes) -> None:
        try:
            Path(path).write_bytes(data)
        except OSError as exc:
            raise DeployError(f"{self.label}: cannot write {path}: {exc.strerror}") from None

    async def rename(self, src: str, dst: str) -> None:
        try:
            os.rename(src, dst)
        except OSError as exc:
            raise DeployError(f"{self.label}: cannot rename {src} to {dst}: {exc}") from None

    async def remove_tree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


@contextlib.asynccontextmanager
async def _session(conn: asyncssh.SSHClientConnection | HostShell) -> AsyncIterator[HostShell]:
    host = conn if isinstance(conn, HostShell) else SSHHost(conn)
    try:
        yield host
    finally:
        await host.close()


def _expand(path: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    elif not path.startswith("/"):
        path = f"{home}/{path}"
    return os.path.normpath(path)


# --------------------------------------------------------------------------------------------
# The code that goes to the host
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeBundle:
    files: Mapping[str, bytes]  # path relative to the cache directory -> content
    version: str  # hash of every path and content


def _package_dir(name: str) -> Path:
    # Located, not imported: the deployer ships edgetop.models without depending on it.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DeployError(f"cannot find the {name} package to ship")
    return Path(next(iter(spec.submodule_search_locations)))


def _bundle(files: dict[str, bytes]) -> CodeBundle:
    digest = hashlib.sha256()
    for rel_name in sorted(files):
        data = files[rel_name]
        digest.update(f"{rel_name}\0{len(data)}\0".encode())
        digest.update(data)
    return CodeBundle(files, digest.hexdigest()[:16])


def code_bundle() -> CodeBundle:
    """The files a worker needs: edgetop/__init__, the worker's modules of edgetop.remote and
    the whole edgetop.models package (sources and data, no caches)."""
    files: dict[str, bytes] = {
        "edgetop/__init__.py": Path(edgetop.__file__).read_bytes(),
    }
    remote = Path(__file__).resolve().parent
    for name in REMOTE_MODULES:
        files[f"edgetop/remote/{name}.py"] = (remote / f"{name}.py").read_bytes()
    models = _package_dir("edgetop.models")
    for path in sorted(models.rglob("*")):
        rel = path.relative_to(models)
        if (
            path.is_file()
            and "__pycache__" not in rel.parts
            and not any(part.startswith(".") for part in rel.parts)
            and path.suffix not in (".pyc", ".pyo")
        ):
            files[f"edgetop/models/{rel.as_posix()}"] = path.read_bytes()
    return _bundle(files)


def user_bundle(modules: Sequence[str | Path]) -> CodeBundle:
    """Single-file Python modules holding user models (`module:function` names), shipped to
    their own versioned directory so that edgetop's own bundle stays one per version."""
    files: dict[str, bytes] = {}
    for module in modules:
        path = Path(module)
        if path.suffix != ".py" or not path.stem.isidentifier() or path.stem == "edgetop":
            raise DeployError(f"cannot ship {path}: expected a single-file Python module")
        try:
            files[path.name] = path.read_bytes()
        except OSError as exc:
            raise DeployError(f"cannot read {path}: {exc.strerror}") from None
    return _bundle(files)


async def ensure_code(host: HostShell, bundle: CodeBundle, cache_dir: str) -> str:
    """The bundle's directory on the host, uploading it unless that version is already there.

    Uploads go to a temporary directory renamed into place at the end, so a half-shipped
    version is never used and two controllers shipping at once both end up with a whole one."""
    final = f"{cache_dir}/{bundle.version}"
    if await host.exists(f"{final}/{MANIFEST}"):
        return final
    tmp = f"{cache_dir}/.{bundle.version}.{secrets.token_hex(4)}.tmp"
    try:
        for parent in sorted({os.path.dirname(f"{tmp}/{rel}") for rel in bundle.files}):
            await host.makedirs(parent)
        await asyncio.gather(
            *(host.write(f"{tmp}/{rel}", data) for rel, data in bundle.files.items())
        )
        manifest = {"version": bundle.version, "files": sorted(bundle.files), "t": time.time()}
        await host.write(f"{tmp}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
        if await host.exists(final) and not await host.exists(f"{final}/{MANIFEST}"):
            await host.remove_tree(final)  # debris of something else; ours are renamed whole
        try:
            await host.rename(tmp, final)
        except DeployError:
            if not await host.exists(f"{final}/{MANIFEST}"):  # not another controller's win
                raise
    finally:
        with contextlib.suppress(EdgetopError):
            await host.remove_tree(tmp)
    return final


# --------------------------------------------------------------------------------------------
# deploy / list / stop
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Paths:
    state: str
    cache: str


async def _paths(host: HostShell, layout: Layout) -> _Paths:
    home = await host.home()
    paths = _Paths(_expand(layout.state, home), _expand(layout.cache, home))
    if ":" in paths.cache:  # it goes into PYTHONPATH, which ':' separates
        raise DeployError(f"the code cache directory {paths.cache!r} must not contain ':'")
    return paths


def _worker_argv(python: str, code_dir: str, *args: str) -> list[str]:
    # Run from inside the code directory: `python -m` puts the working directory first on
    # sys.path, and there it can only find the shipped edgetop, never another checkout.
    return ["sh", "-c", WORKER_SCRIPT, "edgetop-worker", code_dir, python, "-m", MODULE, *args]


async def _worker_json(
    host: HostShell, python: str, code_dir: str, *args: str, timeout: float = RUN_TIMEOUT_S
) -> Any:
    done = await host.run(_worker_argv(python, code_dir, *args), timeout=timeout)
    if done.returncode != 0:
        raise DeployError(
            f"{host.label}: {MODULE} {args[0]} failed (exit {done.returncode}): {done.tail()}"
        )
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise DeployError(f"{host.label}: unreadable answer from {MODULE} {args[0]}") from None


async def _describe(host: HostShell, python: str, code_dir: str, directory: str) -> DeploymentInfo:
    data = await _worker_json(host, python, code_dir, "--describe", "--dir", directory)
    try:
        return DeploymentInfo.from_wire(data, host.label)
    except ValueError as exc:
        raise DeployError(f"{host.label}: {exc}") from None


async def check_torch(host: HostShell, python: str) -> str:
    """torch's version on the host; DeployError saying what is missing otherwise."""
    probe = "import sys; print(sys.version.split()[0]); import torch; print(torch.__version__)"
    done = await host.run([python, "-c", probe], timeout=TORCH_CHECK_TIMEOUT_S)
    lines = done.stdout.split()
    if not lines:  # the interpreter itself did not run
        raise DeployError(f"cannot run {python!r} on {host.label}: {done.tail() or 'not found'}")
    version = tuple(int(p) for p in lines[0].split(".")[:2] if p.isdigit())
    if version < MIN_PYTHON:
        raise DeployError(
            f"{python} on {host.label} is Python {lines[0]}; the worker needs "
            f"{'.'.join(map(str, MIN_PYTHON))} or newer (with torch >= 2.0)"
        )
    if done.returncode == 0 and len(lines) >= 2:
        return lines[1]
    if "No module named 'torch'" in done.stderr:
        raise DeployError(
            f"torch is not installed on {host.label} (python {lines[0]} at {python}); install "
            "it there, or point the host's `python` at an interpreter that has it"
        )
    raise DeployError(f"torch cannot be imported on {host.label}: {done.tail()}")


async def deploy(
    conn: asyncssh.SSHClientConnection | HostShell,
    spec: WorkerSpec | Mapping[str, Any],
    *,
    python: str = "python3",
    layout: Layout = Layout(),
    timeout: float = START_TIMEOUT_S,
    user_modules: Sequence[str | Path] = (),
) -> DeploymentHandle:
    """Start `spec` (a WorkerSpec, or its fields) on the host and wait until it runs.

    DeployError when it cannot: a bad spec (nothing is sent), torch missing on the host, the
    worker failing (its reason, e.g. not enough memory, in the message and `.info`)."""
    try:
        if not isinstance(spec, WorkerSpec):
            spec = WorkerSpec.from_dict(dict(spec))
        spec = replace(spec, launch=secrets.token_hex(8))
    except SpecError as exc:
        raise DeployError(f"invalid deployment: {exc}") from None
    async with _session(conn) as host:
        paths = await _paths(host, layout)
        await check_torch(host, python)
        code_dir = await ensure_code(host, code_bundle(), paths.cache)
        python_path = code_dir
        if user_modules:
            user_dir = await ensure_code(host, user_bundle(user_modules), f"{paths.cache}/user")
            python_path = f"{code_dir}:{user_dir}"
        directory = f"{paths.state}/{spec.id}"
        current = await _describe(host, python, code_dir, directory)
        if current.alive:
            raise DeployError(
                f"deployment {spec.id} is already running on {host.label} (pid {current.pid}); "
                "stop it first",
                current,
            )
        await host.makedirs(directory, mode=0o700)
        tmp = f"{directory}/.{SPEC_FILE}.{spec.launch}.tmp"
        await host.write(tmp, (json.dumps(spec.to_dict(), indent=1) + "\n").encode())
        await host.rename(tmp, f"{directory}/{SPEC_FILE}")
        launched = await host.run(
            ["sh", "-c", LAUNCH_SCRIPT, "edgetop-launch", directory, python, python_path]
        )
        if launched.returncode != 0:
            raise DeployError(
                f"cannot launch the worker on {host.label} (exit {launched.returncode}): "
                f"{launched.tail()}"
            )
        info = await _wait_started(host, python, code_dir, directory, spec, timeout)
        return DeploymentHandle(host.label, spec.id, directory, info.pid, code_dir, python, info)


async def _wait_started(
    host: HostShell, python: str, code_dir: str, directory: str, spec: WorkerSpec, timeout: float
) -> DeploymentInfo:
    start = time.monotonic()
    while True:
        info = await _describe(host, python, code_dir, directory)
        ours = info.launch == spec.launch
        waited = time.monotonic() - start
        if ours and info.state == "running":
            return info
        if ours and info.state in ("failed", "dead", "stopped"):
            raise DeployError(
                f"deployment {spec.id} on {host.label} {info.state}: {info.reason}", info
            )
        if not ours and waited > NO_STATUS_GRACE_S:
            tail = " | ".join(info.log_tail) or "no log"
            raise DeployError(
                f"deployment {spec.id} on {host.label}: the worker never reported ({tail})", info
            )
        if waited > timeout:
            with contextlib.suppress(EdgetopError):
                await _worker_json(host, python, code_dir, "--stop", "--dir", directory)
            raise DeployError(
                f"deployment {spec.id} on {host.label} did not start within {timeout:g} s "
                f"(state {info.state}); stopped it",
                info,
            )
        await asyncio.sleep(POLL_INTERVAL_S)


async def list_deployments(
    conn: asyncssh.SSHClientConnection | HostShell,
    *,
    python: str = "python3",
    layout: Layout = Layout(),
) -> list[DeploymentInfo]:
    """Every deployment on the host, running or not, with its last metrics line."""
    async with _session(conn) as host:
        paths = await _paths(host, layout)
        code_dir = await ensure_code(host, code_bundle(), paths.cache)
        data = await _worker_json(host, python, code_dir, "--scan", paths.state)
        if not isinstance(data, list):
            raise DeployError(f"{host.label}: unreadable deployment list")
        out: list[DeploymentInfo] = []
        for item in data:
            with contextlib.suppress(ValueError):  # one bad entry must not hide the others
                out.append(DeploymentInfo.from_wire(item, host.label))
        return out


async def stop(
    conn: asyncssh.SSHClientConnection | HostShell,
    deployment_id: str,
    *,
    python: str = "python3",
    layout: Layout = Layout(),
    timeout: float = 15.0,
) -> DeploymentInfo:
    """SIGTERM the deployment's worker (after checking /proc that the pid is really it), wait
    for it to exit (SIGKILL after `timeout`); returns the final state, `stopped`."""
    if not isinstance(deployment_id, str) or not ID_RE.match(deployment_id):
        raise DeployError(f"invalid deployment id {deployment_id!r}")
    async with _session(conn) as host:
        paths = await _paths(host, layout)
        code_dir = await ensure_code(host, code_bundle(), paths.cache)
        directory = f"{paths.state}/{deployment_id}"
        if not await host.exists(f"{directory}/{SPEC_FILE}"):
            raise DeployError(f"no deployment {deployment_id} on {host.label}")
        data = await _worker_json(
            host, python, code_dir, "--stop", "--dir", directory, "--timeout", repr(float(timeout)),
            timeout=timeout + RUN_TIMEOUT_S,
        )  # fmt: skip
        try:
            return DeploymentInfo.from_wire(data, host.label)
        except ValueError as exc:
            raise DeployError(f"{host.label}: {exc}") from None


__all__ = [
    "LOG_FILE",
    "METRICS_FILE",
    "PID_FILE",
    "STATUS_FILE",
    "CodeBundle",
    "Completed",
    "DeployError",
    "DeploymentHandle",
    "DeploymentInfo",
    "HostShell",
    "Layout",
    "LocalHost",
    "SSHHost",
    "WorkerSpec",
    "code_bundle",
    "deploy",
    "ensure_code",
    "list_deployments",
    "stop",
    "user_bundle",
]
