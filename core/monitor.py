"""FleetMonitor: runs one HostLink per configured host and keeps the fleet snapshot current.

It is the reusable device API (no UI): the Textual app, `edgetop snapshot`, `hosts check` and
`--auto` all read the same snapshots from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import TracebackType

from edgetop.core.config import FleetConfig, HostConfig
from edgetop.core.fleet import FleetSnapshot, HostView, apply, empty_fleet
from edgetop.core.profiles import get_profile
from edgetop.core.simphysics import PerfModelPhysics
from edgetop.remote.link import Backoff, HostLink, LinkEvent
from edgetop.remote.local import LocalTransport
from edgetop.remote.sim import SimDevice, SimTransport
from edgetop.remote.ssh import SSHTarget, SSHTransport
from edgetop.remote.transport import Transport

Listener = Callable[[FleetSnapshot, LinkEvent], None]


def ssh_target(config: FleetConfig, host: HostConfig, accept_new_hosts: bool) -> SSHTarget:
    """Resolve a host's SSH settings, following `jump` through other [[host]] entries."""
    jump: SSHTarget | str | None = host.jump
    if host.jump is not None and any(h.name == host.jump for h in config.hosts):
        jump = ssh_target(config, config.host(host.jump), accept_new_hosts)
    assert host.address is not None  # the config parser requires it for ssh
    return SSHTarget(
        address=host.address,
        port=host.port,
        user=host.user,
        identity=host.identity,
        known_hosts=host.known_hosts,
        jump=jump,
        accept_new_hosts=accept_new_hosts,
    )


def make_transport(config: FleetConfig, host: HostConfig, accept_new_hosts: bool) -> Transport:
    if host.transport == "sim":
        assert host.device is not None  # the config parser requires it for sim
        profile = get_profile(host.device)
        return SimTransport(host.name, profile, physics=PerfModelPhysics(profile))
    if host.transport == "local":
        return LocalTransport(None if host.python == "python3" else host.python)
    return SSHTransport(ssh_target(config, host, accept_new_hosts), host.python)


class FleetMonitor:
    def __init__(
        self,
        config: FleetConfig,
        *,
        accept_new_hosts: bool = False,
        backoff: Backoff | None = None,
        transports: dict[str, Transport] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._snapshot = empty_fleet(
            HostView(h.name, h.transport, h.kind, h.interval) for h in config.hosts
        )
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        transports = transports or {}
        self.links = [
            HostLink(
                h.name,
                transports.get(h.name) or make_transport(config, h, accept_new_hosts),
                h.interval,
                self._on_event,
                backoff=backoff,
                clock=clock,
            )
            for h in config.hosts
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def sim_device(self, host: str) -> SimDevice | None:
        """The simulated device behind `host` (for placing deployments and demo controls),
        or None when the host is not simulated."""
        for link in self.links:
            if link.name == host and isinstance(link.transport, SimTransport):
                return link.transport.device
        return None

    @property
    def snapshot(self) -> FleetSnapshot:
        return self._snapshot

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _on_event(self, event: LinkEvent) -> None:
        self._snapshot = apply(self._snapshot, event)
        self._changed.set()
        for listener in self._listeners:
            listener(self._snapshot, event)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(link.run(), name=f"link:{link.name}") for link in self.links
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def wait_for(self, predicate: Callable[[FleetSnapshot], bool], timeout: float) -> bool:
        """Wait until `predicate(snapshot)` holds; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()  # before the check, so no change slips in between
            if predicate(self._snapshot):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=left)

    async def __aenter__(self) -> FleetMonitor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
