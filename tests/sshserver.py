"""A real asyncssh server on 127.0.0.1 (port 0) that runs commands in real subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest_asyncio


@dataclass
class LoopbackSSH:
    port: int
    server: asyncssh.SSHAcceptor
    host_key: asyncssh.SSHKey
    client_key_path: Path
    known_hosts_path: Path
    workdir: Path
    children: list[asyncio.subprocess.Process] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    @property
    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode().strip()}\n"

    def trust(self) -> None:
        self.known_hosts_path.write_text(self.known_hosts_line)

    def hosts_toml(self, name: str = "ssh-1", python: str | None = None, **extra: object) -> str:
        import sys

        lines = [
            "[[host]]",
            f'name = "{name}"',
            'transport = "ssh"',
            'address = "127.0.0.1"',
            f"port = {self.port}",
            f'identity = "{self.client_key_path}"',
            f'known_hosts = "{self.known_hosts_path}"',
            f'python = "{python or sys.executable}"',
            "interval = 0.2",
        ]
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in extra.items()]
        return "\n".join(lines) + "\n"


async def _start(workdir: Path) -> LoopbackSSH:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key_path = workdir / "id_ed25519"
    client_key.write_private_key(str(client_key_path))
    client_key_path.chmod(0o600)
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    state: dict[str, LoopbackSSH] = {}

    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        state["ssh"].commands.append(process.command or "")
        child = await asyncio.create_subprocess_shell(
            process.command or "true",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        state["ssh"].children.append(child)

        async def pump_in() -> None:
            # The command may exit without reading its stdin (a missing interpreter): ignore.
            with contextlib.suppress(OSError, asyncssh.Error):
                while data := await process.stdin.read(65536):
                    child.stdin.write(data)
                    await child.stdin.drain()
                child.stdin.close()

        async def pump_out(source: asyncio.StreamReader, sink: asyncssh.SSHWriter) -> None:
            with contextlib.suppress(OSError, asyncssh.Error):
                while data := await source.read(65536):
                    sink.write(data)

        feeder = asyncio.ensure_future(pump_in())
        try:
            await asyncio.gather(
                pump_out(child.stdout, process.stdout), pump_out(child.stderr, process.stderr)
            )
            status = await child.wait()
            if status < 0:  # as sshd reports a command killed by a signal
                process.exit_with_signal(signal.Signals(-status).name[3:])
            else:
                process.exit(status)
        finally:
            feeder.cancel()
            if child.returncode is None:
                child.kill()

    server = await asyncssh.create_server(
        None,
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=authorized,
        process_factory=handle,
        encoding=None,
    )
    port = server.sockets[0].getsockname()[1]
    ssh = LoopbackSSH(port, server, host_key, client_key_path, workdir / "known_hosts", workdir)
    state["ssh"] = ssh
    return ssh


@pytest_asyncio.fixture
async def loopback_ssh(tmp_path: Path) -> AsyncIterator[LoopbackSSH]:
    ssh = await _start(tmp_path)
    try:
        yield ssh
    finally:
        ssh.server.close()
        await ssh.server.wait_closed()
        for child in ssh.children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
