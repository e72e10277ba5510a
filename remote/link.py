"""HostLink: one coroutine per host that keeps an agent running and reports what it sees.

A link never raises: every failure becomes a status event, then it waits (exponential backoff
with jitter, capped) and tries again. One host failing therefore never stalls another.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgetop.remote.errors import AgentLineError, AuthError, HostKeyError, TransportError
from edgetop.remote.protocol import AgentFailure, Hello, Sample, parse_line
from edgetop.remote.transport import AgentStream, Transport

STALE_AFTER_INTERVALS = 3
HELLO_TIMEOUT_S = 30.0


class HostStatus(str, enum.Enum):
    CONNECTING = "connecting"
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    AUTH_FAILED = "auth-failed"
    HOST_KEY_REJECTED = "host-key-rejected"

    @property
    def is_failure(self) -> bool:
        return self in (HostStatus.OFFLINE, HostStatus.AUTH_FAILED, HostStatus.HOST_KEY_REJECTED)


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt n: exponential, capped, with jitter in [delay/2, delay]."""

    base_s: float = 1.0
    cap_s: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * self.factor ** min(attempt, 32))
        # Jitter keeps a hundred Jetsons that lost the same switch from reconnecting in lockstep.
        return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class LinkEvent:
    """Something a link observed. Exactly one of hello / sample / bad_line may be set."""

    host: str
    status: HostStatus
    at: float
    reason: str | None = None
    hello: Hello | None = None
    sample: Sample | None = None
    bad_line: str | None = None


class _LineReader:
    """Wraps a stream so a read can be waited on with a timeout without being cancelled.

    Cancelling a pending readline could drop half a line; instead the pending read is kept
    and waited on again after a stale timeout.
    """

    def __init__(self, stream: AgentStream) -> None:
        self._stream = stream
        self._pending: asyncio.Future[bytes] | None = None

    async def next(self, timeout: float) -> bytes | None:
        """The next line, b"" at end of stream, None when nothing came within `timeout`."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._stream.readline())
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            return None
        line, self._pending = self._pending.result(), None
        return line

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()


class HostLink:
    def __init__(
        self,
        name: str,
        transport: Transport,
        interval: float,
        on_event: Callable[[LinkEvent], None],
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.transport = transport
        self.interval = interval
        self._on_event = on_event
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._clock = clock

    def _emit(self, status: HostStatus, **fields: object) -> None:
        self._on_event(LinkEvent(self.name, status, self._clock(), **fields))  # type: ignore[arg-type]

    async def run(self) -> None:
        """Keep the host's agent streaming until cancelled."""
        attempt = 0
        while True:
            self._emit(HostStatus.CONNECTING)
            status, reason, reached = await self._session()
            self._emit(status, reason=reason)
            attempt = 0 if reached else attempt + 1
            await asyncio.sleep(self._backoff.delay(attempt, self._rng))

    async def _session(self) -> tuple[HostStatus, str, bool]:
        """One connection's life; returns how it ended and whether the agent ever said hello."""
        stream: AgentStream | None = None
        reached = False
        try:
            stream = await self.transport.start_agent(self.interval)
            reader = _LineReader(stream)
            try:
                reached = await self._await_hello(reader)
                if reached:
                    await self._pump(reader)
            finally:
                reader.cancel()
            return HostStatus.OFFLINE, stream.exit_reason(), reached
        except AuthError as exc:
            return HostStatus.AUTH_FAILED, str(exc), reached
        except HostKeyError as exc:
            return HostStatus.HOST_KEY_REJECTED, str(exc), reached
        except TransportError as exc:
            return HostStatus.OFFLINE, str(exc), reached
        finally:
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.close()
            # Always reconnect from scratch: a half-dead connection is worse than a new one.
            with contextlib.suppress(Exception):
                await self.transport.close()

    async def _await_hello(self, reader: _LineReader) -> bool:
        deadline = time.monotonic() + HELLO_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            line = await reader.next(left)
            if not line:
                return False
            message = self._parse(line, HostStatus.CONNECTING)
            if isinstance(message, Hello):
                self._emit(HostStatus.ONLINE, hello=message)
                return True
        raise TransportError(f"agent sent no hello within {HELLO_TIMEOUT_S:.0f} s")

    async def _pump(self, reader: _LineReader) -> None:
        stale_after = STALE_AFTER_INTERVALS * self.interval
        status = HostStatus.ONLINE
        while True:
            line = await reader.next(stale_after)
            if line is None:
                if status is not HostStatus.STALE:
                    status = HostStatus.STALE
                    self._emit(status, reason=f"no sample for {stale_after:g} s")
                continue
            if not line:
                return
            message = self._parse(line, status)
            if isinstance(message, Sample):
                status = HostStatus.ONLINE
                self._emit(status, sample=message)
            elif isinstance(message, AgentFailure):
                raise TransportError(f"agent failed: {message.message}")

    def _parse(self, line: bytes, status: HostStatus) -> Hello | Sample | AgentFailure | None:
        try:
            return parse_line(line)
        except AgentLineError as exc:
            self._emit(status, bad_line=str(exc))
            return None
