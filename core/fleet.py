"""Fleet state: one immutable snapshot of every host, folded from link events.

`apply(snapshot, event)` is pure, so the whole state machine (online, stale with last-good
values, offline with a reason, garbage lines counted) is tested with plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from edgetop.remote.link import HostStatus, LinkEvent
from edgetop.remote.protocol import DeploymentReading, DeviceReading, Hello

HISTORY_LEN = 120  # samples kept per device, enough for a two-minute sparkline at 1 Hz


@dataclass(frozen=True)
class HostView:
    name: str
    transport: str
    kind: str
    interval: float
    status: HostStatus = HostStatus.CONNECTING
    reason: str | None = None
    since: float | None = None
    hello: Hello | None = None
    devices: tuple[DeviceReading, ...] = ()
    deployments: tuple[DeploymentReading, ...] = ()  # workers the host's agent reports
    sample_at: float | None = None
    seq: int | None = None
    samples: int = 0
    bad_lines: int = 0
    last_bad_line: str | None = None
    errors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # device id -> recent utilisation values, oldest first
    history: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def age(self, now: float) -> float | None:
        """Seconds since the last good sample (shown beside stale values)."""
        return None if self.sample_at is None else max(0.0, now - self.sample_at)

    @property
    def cpu_quota(self) -> float | None:
        return self.hello.cpu_quota if self.hello else None

    @property
    def mem_limit(self) -> int | None:
        return self.hello.mem_limit if self.hello else None

    @property
    def answered(self) -> bool:
        """Reached and reporting: what `edgetop snapshot` calls success."""
        return self.status is HostStatus.ONLINE and self.samples > 0

    @property
    def settled(self) -> bool:
        """Has the first attempt to reach this host come to an outcome?"""
        return self.answered or self.status.is_failure

    def accelerators(self) -> tuple[DeviceReading, ...]:
        return tuple(d for d in self.devices if d.kind != "cpu")


@dataclass(frozen=True)
class FleetSnapshot:
    hosts: tuple[HostView, ...]
    at: float = 0.0
    # name -> position in `hosts`; host names never change, so every snapshot shares it.
    index: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if len(self.index) != len(self.hosts):
            positions = {h.name: i for i, h in enumerate(self.hosts)}
            object.__setattr__(self, "index", MappingProxyType(positions))

    def host(self, name: str) -> HostView:
        return self.hosts[self.index[name]]

    def count(self, *statuses: HostStatus) -> int:
        return sum(1 for h in self.hosts if h.status in statuses)

    @property
    def all_answered(self) -> bool:
        return all(h.answered for h in self.hosts)

    @property
    def all_settled(self) -> bool:
        return all(h.settled for h in self.hosts)


def empty_fleet(hosts: Iterable[HostView]) -> FleetSnapshot:
    return FleetSnapshot(tuple(hosts))


def _with_history(
    history: Mapping[str, tuple[float, ...]], devices: Iterable[DeviceReading]
) -> Mapping[str, tuple[float, ...]]:
    updated = dict(history)
    for device in devices:
        if device.util is not None:
            updated[device.id] = (*updated.get(device.id, ()), device.util)[-HISTORY_LEN:]
    return MappingProxyType(updated)


def apply_event(host: HostView, event: LinkEvent) -> HostView:
    changes: dict[str, object] = {}
    if event.status is not host.status:
        changes["status"] = event.status
        changes["since"] = event.at
    if event.bad_line is not None:
        changes["bad_lines"] = host.bad_lines + 1
        changes["last_bad_line"] = event.bad_line
    elif event.hello is not None:
        changes["hello"] = event.hello
        changes["reason"] = None
    elif event.sample is not None:
        sample = event.sample
        changes.update(
            devices=sample.devices,
            deployments=sample.deployments,
            sample_at=event.at,
            seq=sample.seq,
            samples=host.samples + 1,
            errors=MappingProxyType(dict(sample.errors)),
            history=_with_history(host.history, sample.devices),
            reason=None,
        )
    elif event.reason is not None or event.status is HostStatus.CONNECTING:
        # Connecting keeps the last failure's reason visible until the host is back.
        changes["reason"] = event.reason if event.reason is not None else host.reason
    # Offline and stale hosts keep their last-good devices: the UI greys them with their age.
    return replace(host, **changes) if changes else host


def apply(snapshot: FleetSnapshot, event: LinkEvent) -> FleetSnapshot:
    # Found by index, not by scanning: at 200 hosts x 1 Hz a scan per event is O(N^2)/s.
    i = snapshot.index.get(event.host)
    if i is None:
        return snapshot
    old = snapshot.hosts[i]
    new = apply_event(old, event)
    hosts = snapshot.hosts if new is old else (*snapshot.hosts[:i], new, *snapshot.hosts[i + 1 :])
    return FleetSnapshot(hosts, at=event.at, index=snapshot.index)
