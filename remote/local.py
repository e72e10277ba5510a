"""`local` transport: the same agent as a subprocess of the controller."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from edgetop.remote.agent import agent_source
from edgetop.remote.errors import AgentError
from edgetop.remote.transport import (
    AgentStream,
    StderrTail,
    Transport,
    agent_argv,
    describe_exit,
)


class ProcessAgentStream(AgentStream):
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._tail = StderrTail()
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(4096):
            self._tail.add(chunk)

    async def readline(self) -> bytes:
        assert self._proc.stdout is not None
        try:
            return await self._proc.stdout.readline()
        except (ValueError, asyncio.LimitOverrunError):
            # A line beyond the stream limit: hand back a marker the protocol rejects.
            return b"<line too long>\n"

    async def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), timeout=5)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stderr_task, timeout=1)

    def exit_reason(self) -> str:
        return describe_exit(self._proc.returncode, self._tail)


class LocalTransport(Transport):
    def __init__(self, python: str | None = None) -> None:
        # The interpreter running edgetop is the one known to exist on this machine.
        self._python = python or sys.executable

    async def start_agent(self, interval: float) -> AgentStream:
        source = agent_source()
        try:
            proc = await asyncio.create_subprocess_exec(
                *agent_argv(self._python, interval, len(source)),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=1 << 21,
            )
        except OSError as exc:
            raise AgentError(f"cannot start {self._python!r}: {exc.strerror or exc}") from None
        assert proc.stdin is not None
        stream = ProcessAgentStream(proc)
        proc.stdin.write(source)
        try:
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            await stream.close()
            raise AgentError(stream.exit_reason()) from None
        return stream
