"""Scripted test double of the transport interface (the httpcore way)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from edgetop.remote.errors import TransportError
from edgetop.remote.transport import AgentStream, Transport

# A script step: bytes = a line to emit, float = pause that long, None = end of stream.
Step = bytes | float | None


class ScriptedStream(AgentStream):
    def __init__(self, steps: Sequence[Step], reason: str) -> None:
        self._steps = list(steps)
        self._reason = reason
        self.closed = False

    async def readline(self) -> bytes:
        while self._steps:
            step = self._steps.pop(0)
            if step is None:
                return b""
            if isinstance(step, float):
                await asyncio.sleep(step)
                continue
            return step
        await asyncio.Event().wait()  # script exhausted: a silent but open agent
        return b""

    async def close(self) -> None:
        self.closed = True

    def exit_reason(self) -> str:
        return self._reason


class ScriptedTransport(Transport):
    """Each start_agent call takes the next entry: a script of steps, or an error to raise."""

    def __init__(self, sessions: Sequence[Sequence[Step] | TransportError]) -> None:
        self._sessions = list(sessions)
        self.starts = 0
        self.closes = 0

    async def start_agent(self, interval: float) -> AgentStream:
        self.starts += 1
        if not self._sessions:
            await asyncio.Event().wait()
        session = self._sessions.pop(0)
        if isinstance(session, TransportError):
            raise session
        return ScriptedStream(session, reason=f"script {self.starts} ended")

    async def close(self) -> None:
        self.closes += 1
