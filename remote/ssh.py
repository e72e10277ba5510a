"""`ssh` transport: asyncssh, with OpenSSH's host-key policy.

Host keys are checked against known_hosts by default. An unknown key is refused unless the
operator opted into accept-new (then it is recorded, as OpenSSH's `StrictHostKeyChecking
accept-new` does); a changed key is always refused. ~/.ssh/config, identity files and the
agent are honoured through asyncssh's defaults; ProxyJump is a chain of tunnels.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from edgetop.remote.agent import agent_source
from edgetop.remote.errors import AgentError, AuthError, ConnectError, HostKeyError
from edgetop.remote.transport import (
    AgentStream,
    StderrTail,
    Transport,
    agent_shell_command,
    describe_exit,
)

CONNECT_TIMEOUT_S = 15.0
KEEPALIVE_INTERVAL_S = 5.0
KEEPALIVE_COUNT_MAX = 3


@dataclass(frozen=True)
class SSHTarget:
    address: str
    port: int = 22
    user: str | None = None
    identity: str | None = None
    known_hosts: str | None = None
    # Another target to tunnel through, or an OpenSSH-style "[user@]host[:port]".
    jump: SSHTarget | str | None = None
    accept_new_hosts: bool = False

    @property
    def label(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.address}:{self.port}"

    @property
    def known_hosts_path(self) -> Path:
        return Path(self.known_hosts or "~/.ssh/known_hosts").expanduser()

    @property
    def known_hosts_name(self) -> str:
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


def _load_known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    try:
        return asyncssh.read_known_hosts(str(path))
    except FileNotFoundError:
        return asyncssh.import_known_hosts("")
    except (OSError, ValueError) as exc:
        raise HostKeyError(f"cannot read known_hosts {path}: {exc}") from None


def _is_known(known: asyncssh.SSHKnownHosts, target: SSHTarget) -> bool:
    port = None if target.port == 22 else target.port
    host_keys = known.match(target.address, target.address, port)[0]
    return bool(host_keys)


def _record_host_key(target: SSHTarget, key: asyncssh.SSHKey) -> None:
    path = target.known_hosts_path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{target.known_hosts_name} {key.export_public_key('openssh').decode().strip()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(line)


def _translate(exc: BaseException, target: SSHTarget) -> Exception:
    """asyncssh / OS errors -> the project's own hierarchy, with an operator-readable text."""
    where = target.label
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthError(f"authentication failed for {where}: {exc.reason or 'permission denied'}")
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return AuthError(f"cannot use identity {target.identity}: {exc}")
    if isinstance(exc, asyncssh.DisconnectError):
        return ConnectError(f"{where}: disconnected: {exc.reason}")
    if isinstance(exc, asyncio.TimeoutError):
        return ConnectError(f"{where}: timed out")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(f"{where}: connection refused")
    if isinstance(exc, OSError):
        return ConnectError(f"{where}: {exc.strerror or exc}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return AgentError(f"{where}: cannot open a session: {exc.reason}")
    return ConnectError(f"{where}: {type(exc).__name__}: {exc}")


async def connect(target: SSHTarget) -> asyncssh.SSHClientConnection:
    """Open a connection (through its jump chain), applying the host-key policy."""
    tunnel: Any = None
    if isinstance(target.jump, SSHTarget):
        tunnel = await connect(target.jump)
    elif isinstance(target.jump, str):
        tunnel = target.jump
    known = _load_known_hosts(target.known_hosts_path)
    options: dict[str, Any] = {
        "port": target.port,
        "tunnel": tunnel,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "keepalive_interval": KEEPALIVE_INTERVAL_S,
        "keepalive_count_max": KEEPALIVE_COUNT_MAX,
    }
    if target.user:
        options["username"] = target.user
    if target.identity:
        options["client_keys"] = [str(Path(target.identity).expanduser())]
    try:
        try:
            return await asyncssh.connect(target.address, known_hosts=known, **options)
        except asyncssh.HostKeyNotVerifiable:
            if _is_known(known, target):
                raise HostKeyError(
                    f"host key for {target.known_hosts_name} differs from the one in "
                    f"{target.known_hosts_path}: refusing to connect (possible "
                    "man-in-the-middle; if the host was reinstalled, remove the old entry "
                    "with ssh-keygen -R)"
                ) from None
            if not target.accept_new_hosts:
                raise HostKeyError(
                    f"host key for {target.known_hosts_name} is not in "
                    f"{target.known_hosts_path}: refusing to connect (verify it and add it, "
                    "or run with --accept-new-hosts)"
                ) from None
        # accept-new: the key is unknown (not changed), so take it and remember it.
        conn = await asyncssh.connect(target.address, known_hosts=None, **options)
        key = conn.get_server_host_key()
        if key is not None:
            _record_host_key(target, key)
        return conn
    except HostKeyError:
        raise
    except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
        raise _translate(exc, target) from None


class SSHAgentStream(AgentStream):
    def __init__(self, process: asyncssh.SSHClientProcess[bytes], label: str) -> None:
        self._process = process
        self._label = label
        self._tail = StderrTail()
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            while chunk := await self._process.stderr.read(4096):
                self._tail.add(chunk)

    async def readline(self) -> bytes:
        try:
            return await self._process.stdout.readline()
        except (asyncssh.Error, OSError):
            return b""

    async def close(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.stdin.write_eof()
        # The agent exits on EOF; waiting briefly lets its exit status arrive for the reason.
        with contextlib.suppress(asyncssh.Error, OSError, asyncio.TimeoutError, TimeoutError):
            await self._process.wait(check=False, timeout=2)
        self._process.close()
        # Let the stderr tail arrive: it is the only explanation of a failed start.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stderr_task, timeout=1)

    def exit_reason(self) -> str:
        status = self._process.exit_status
        signal = self._process.exit_signal
        if signal:
            return f"agent killed by signal {signal[0]}"
        if status is None or status < 0:
            return f"connection to {self._label} lost"
        return describe_exit(status, self._tail)


class SSHTransport(Transport):
    def __init__(self, target: SSHTarget, python: str = "python3") -> None:
        self.target = target
        self._python = python
        self._conn: asyncssh.SSHClientConnection | None = None

    async def start_agent(self, interval: float) -> AgentStream:
        if self._conn is None:
            self._conn = await connect(self.target)
        source = agent_source()
        command = agent_shell_command(self._python, interval, len(source))
        try:
            process = await self._conn.create_process(command, encoding=None)
            process.stdin.write(source)
        except (asyncssh.Error, OSError) as exc:
            await self.close()
            raise _translate(exc, self.target) from None
        return SSHAgentStream(process, self.target.label)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), timeout=5)
