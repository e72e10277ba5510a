"""Desired deployments against what the fleet reports: the actions that bring them together.

Pure and synchronous: `reconcile(desired, snapshot, memory, now)` returns a `Plan` (actions
plus the next `ReconcileMemory`, which the caller carries to the next round). The orchestrator
(core/orchestrator.py) performs the actions; tests drive this with plain FleetSnapshot values.

Workers are named after their deployment: `<deployment id>.<launch>` (`resnet50-1.1`; a move
starts `resnet50-1.2`). Deployment ids never contain a dot, so a worker's owner is read off its
id, which is how a restarted edgetop tells its own workers (adopt them, or stop leftovers)
from anything else on a host (left alone).

Rules, per deployment the state wants active (starting, running, degraded, moving):
- its host answers and reports the worker running: adopt it if the state does not know it yet
  (status starting or failed, e.g. after a restart); never start a second one;
- the worker reports failed/dead/stopped: mark the deployment failed with the worker's reason;
- the worker is not reported: on a simulated host start it (a sim host runs what the desired
  state says: a new edgetop process places its deployments again); on a real host a worker
  that vanished marks the deployment failed, and one still `starting` after `start_grace_s`
  (the controller died between recording and launching) is started;
- its host does not answer for `offline_grace_s`: failed (a shorter outage is waited out);
- SLO: a window violates when p99 > slo or compliance < `min_compliance`. `degrade_after`
  consecutive violating windows mark it degraded; it is running again only after
  `recover_after` consecutive windows with p99 <= `recover_fraction` x slo (hysteresis);
- moving: the replacement running with metrics finishes the move (stop the old worker,
  switch `where`); the replacement failed, gone, or its host lost aborts it (old keeps serving).
A live worker whose owner the state has stopped, or which is not the worker the state wants
(a leftover of a finished move, a duplicate), is stopped. Deployments with an operation in
flight in this process (`busy`) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.remote.protocol import DeploymentReading

__all__ = [
    "FINISHED",
    "AbortMove",
    "Action",
    "Adopt",
    "FinishMove",
    "MarkDegraded",
    "MarkFailed",
    "MarkRunning",
    "Plan",
    "ReconcileMemory",
    "ReconcileSettings",
    "SloWindows",
    "Start",
    "Stop",
    "healthy",
    "next_worker",
    "owner_of",
    "reading_for",
    "reconcile",
    "worker_id",
]

_WORKER_RE = re.compile(r"^(?P<owner>[a-z0-9][a-z0-9-]*)\.(?P<launch>[0-9]+)$")
FINISHED = ("failed", "dead", "stopped")


def worker_id(deployment_id: str, launch: int = 1) -> str:
    return f"{deployment_id}.{launch}"


def owner_of(worker: str) -> str | None:
    """The deployment a worker belongs to, or None for workers edgetop did not name."""
    m = _WORKER_RE.match(worker)
    return m["owner"] if m else None


def next_worker(d: Deployment) -> str:
    """The id of the deployment's next launch (a move's replacement)."""
    m = _WORKER_RE.match(d.worker or "")
    return worker_id(d.id, int(m["launch"]) + 1 if m else 1)


def reading_for(snapshot: FleetSnapshot, host: str, worker: str) -> DeploymentReading | None:
    if host not in snapshot.index:
        return None
    return next((r for r in snapshot.host(host).deployments if r.id == worker), None)


@dataclass(frozen=True)
class ReconcileSettings:
    degrade_after: int = 3  # consecutive violating windows before degraded
    recover_after: int = 3  # consecutive good windows before running again
    recover_fraction: float = 0.9  # a good window: p99 <= this x slo
    min_compliance: float = 0.95  # share of queries within the SLO below which a window violates
    offline_grace_s: float = 30.0  # a host silent this long fails its deployments
    start_grace_s: float = 240.0  # a real-host `starting` deployment not seen this long restarts


@dataclass(frozen=True)
class SloWindows:
    """A deployment's run of consecutive violating (`bad`) or good windows."""

    last_t: float | None = None  # the statistics' time last counted (a window is counted once)
    bad: int = 0
    good: int = 0


@dataclass(frozen=True)
class ReconcileMemory:
    """What one round hands the next: SLO window counters and when hosts went silent."""

    windows: Mapping[str, SloWindows] = field(default_factory=lambda: MappingProxyType({}))
    down_since: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Start (or, on a sim host, place again) the deployment's worker."""

    deployment: Deployment
    where: Where
    worker: str


@dataclass(frozen=True)
class Stop:
    """Stop a worker the state does not want."""

    host: str
    worker: str
    deployment: str | None
    reason: str


@dataclass(frozen=True)
class Adopt:
    """The worker was found running: record it (the deployment is running), start nothing."""

    deployment: Deployment
    worker: str
    reading: DeploymentReading


@dataclass(frozen=True)
class MarkRunning:
    deployment: Deployment
    reason: str


@dataclass(frozen=True)
class MarkDegraded:
    deployment: Deployment
    reason: str


@dataclass(frozen=True)
class MarkFailed:
    deployment: Deployment
    reason: str


@dataclass(frozen=True)
class FinishMove:
    """The replacement is healthy: switch `where` to it, then stop the old worker."""

    deployment: Deployment
    new: Where
    new_worker: str
    reading: DeploymentReading


@dataclass(frozen=True)
class AbortMove:
    """The replacement failed: the old worker keeps serving; stop the replacement if alive."""

    deployment: Deployment
    reason: str
    new: Where | None  # None: the state recorded no destination
    new_worker: str


Action = Start | Stop | Adopt | MarkRunning | MarkDegraded | MarkFailed | FinishMove | AbortMove


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    memory: ReconcileMemory


# -- the rules -----------------------------------------------------------------------------


def healthy(r: DeploymentReading | None) -> bool:
    """Running and reporting statistics: what a move waits for."""
    return r is not None and r.state == "running" and r.p99_ms is not None


def _violates(r: DeploymentReading, slo_ms: float, s: ReconcileSettings) -> bool:
    if r.p99_ms is not None and r.p99_ms > slo_ms:
        return True
    return r.slo_compliance is not None and r.slo_compliance < s.min_compliance


def _good(r: DeploymentReading, slo_ms: float, s: ReconcileSettings) -> bool:
    return (
        r.p99_ms is not None
        and r.p99_ms <= s.recover_fraction * slo_ms
        and not (r.slo_compliance is not None and r.slo_compliance < s.min_compliance)
    )


def _count_window(
    w: SloWindows, r: DeploymentReading, slo_ms: float, s: ReconcileSettings
) -> SloWindows:
    if r.p99_ms is None or (r.t is not None and r.t == w.last_t):
        return w  # no new statistics since the last round
    if _violates(r, slo_ms, s):
        return SloWindows(r.t, w.bad + 1, 0)
    if _good(r, slo_ms, s):
        return SloWindows(r.t, 0, w.good + 1)
    return SloWindows(r.t, 0, 0)  # between the bounds: neither streak goes on


def _slo_phrase(r: DeploymentReading, slo_ms: float) -> str:
    parts = []
    if r.p99_ms is not None:
        parts.append(f"p99 {r.p99_ms:.1f} ms vs SLO {slo_ms:g} ms")
    if r.slo_compliance is not None:
        parts.append(f"{100 * r.slo_compliance:.1f}% within SLO")
    return ", ".join(parts)


def _scan_failed(host: HostView) -> bool:
    """The agent could not list the host's workers: absence means nothing this round."""
    return "deployments" in host.errors


class _Round:
    def __init__(
        self,
        snapshot: FleetSnapshot,
        memory: ReconcileMemory,
        now: float,
        settings: ReconcileSettings,
    ) -> None:
        self.snapshot = snapshot
        self.now = now
        self.s = settings
        self.actions: list[Action] = []
        self.windows = dict(memory.windows)
        self.down_since = {
            h.name: memory.down_since.get(h.name, now) for h in snapshot.hosts if not h.answered
        }

    def host(self, name: str) -> HostView | None:
        return self.snapshot.host(name) if name in self.snapshot.index else None

    def lost(self, name: str) -> str | None:
        """Why `name` counts as lost (silent past the grace period, or not configured)."""
        host = self.host(name)
        if host is None:
            return f"host {name} is not in the fleet file"
        if host.answered:
            return None
        down = self.now - self.down_since[name]
        if down < self.s.offline_grace_s:
            return None
        why = host.reason or host.status.value
        return f"host {name} unreachable for {down:.0f} s ({why})"

    def visit(self, d: Deployment) -> None:
        if d.where is None:
            return
        if d.status is Status.MOVING:
            self.moving(d)
            return
        lost = self.lost(d.where.host)
        if lost is not None:
            if d.status is not Status.FAILED:
                self.actions.append(MarkFailed(d, lost))
            return
        host = self.host(d.where.host)
        if host is None or not host.answered:
            return  # silent, within the grace period: wait
        worker = d.worker or worker_id(d.id)
        r = next((x for x in host.deployments if x.id == worker), None)
        if d.status is Status.FAILED:
            if r is not None and r.state == "running":
                self.actions.append(Adopt(d, worker, r))  # e.g. its host came back
            return
        if r is None:
            self.absent(d, host, worker)
        elif r.state in FINISHED:
            why = r.reason or f"the worker is {r.state}"
            self.actions.append(MarkFailed(d, f"{worker} on {host.name}: {why}"))
        elif r.state == "running":
            if d.status is Status.STARTING or d.worker != worker:
                self.actions.append(Adopt(d, worker, r))
            else:
                self.slo(d, r)

    def absent(self, d: Deployment, host: HostView, worker: str) -> None:
        assert d.where is not None
        if host.transport == "sim":
            self.actions.append(Start(d, d.where, worker))
        elif _scan_failed(host):
            return
        elif d.status is Status.STARTING:
            if self.now - d.updated >= self.s.start_grace_s:
                self.actions.append(Start(d, d.where, worker))
        else:
            self.actions.append(MarkFailed(d, f"{worker} is no longer on {host.name}"))

    def slo(self, d: Deployment, r: DeploymentReading) -> None:
        w = _count_window(self.windows.get(d.id, SloWindows()), r, d.slo_ms, self.s)
        self.windows[d.id] = w
        if d.status is Status.RUNNING and w.bad >= self.s.degrade_after:
            reason = f"SLO violated for {w.bad} windows: {_slo_phrase(r, d.slo_ms)}"
            self.actions.append(MarkDegraded(d, reason))
            self.windows[d.id] = replace(w, bad=0)
        elif d.status is Status.DEGRADED and w.good >= self.s.recover_after:
            reason = f"SLO met for {w.good} windows: {_slo_phrase(r, d.slo_ms)}"
            self.actions.append(MarkRunning(d, reason))
            self.windows[d.id] = replace(w, good=0)

    def moving(self, d: Deployment) -> None:
        new = d.moving_to
        if new is None:  # malformed by hand: nothing to wait for
            self.actions.append(AbortMove(d, "no destination recorded", None, next_worker(d)))
            return
        worker = next_worker(d)
        lost = self.lost(new.host)
        if lost is not None:
            self.actions.append(AbortMove(d, lost, new, worker))
            return
        host = self.host(new.host)
        if host is None or not host.answered:
            return
        r = next((x for x in host.deployments if x.id == worker), None)
        if healthy(r):
            assert r is not None
            self.actions.append(FinishMove(d, new, worker, r))
        elif r is not None and r.state in FINISHED:
            why = r.reason or f"the replacement is {r.state}"
            self.actions.append(AbortMove(d, f"{worker} on {new.host}: {why}", new, worker))
        elif r is None and not _scan_failed(host):
            # Not in flight here (busy would have skipped it): its starter is gone.
            self.actions.append(AbortMove(d, f"replacement {worker} not found", new, worker))

    def leftovers(self, by_id: Mapping[str, Deployment]) -> None:
        for host in self.snapshot.hosts:
            if not host.answered:
                continue
            for r in host.deployments:
                owner = owner_of(r.id)
                d = by_id.get(owner) if owner else None
                if d is None or r.state in FINISHED or _wanted(d, host.name, r.id):
                    continue
                why = (
                    f"deployment {d.id} is stopped"
                    if d.status is Status.STOPPED
                    else f"not the worker deployment {d.id} wants"
                )
                self.actions.append(Stop(host.name, r.id, d.id, why))


def _wanted(d: Deployment, host: str, worker: str) -> bool:
    if d.status is Status.STOPPED:
        return False
    if d.where is not None and d.where.host == host and worker == (d.worker or worker_id(d.id)):
        return True
    moving = d.moving_to
    return (
        d.status is Status.MOVING
        and moving is not None
        and moving.host == host
        and (worker == next_worker(d))
    )


def reconcile(
    desired: Iterable[Deployment],
    snapshot: FleetSnapshot,
    memory: ReconcileMemory = ReconcileMemory(),
    now: float = 0.0,
    *,
    busy: frozenset[str] = frozenset(),
    settings: ReconcileSettings = ReconcileSettings(),
) -> Plan:
    """The actions that bring `snapshot` towards `desired`, and the memory for next round."""
    desired = tuple(desired)
    by_id = {d.id: d for d in desired}
    rnd = _Round(snapshot, memory, now, settings)
    for d in desired:
        if d.id in busy or d.status in (Status.STOPPED, Status.PENDING, Status.RECOMMENDED):
            continue
        rnd.visit(d)
    rnd.leftovers({k: v for k, v in by_id.items() if k not in busy})
    live = {d.id for d in desired if d.status is not Status.STOPPED}
    windows = {k: v for k, v in rnd.windows.items() if k in live}
    memory = ReconcileMemory(MappingProxyType(windows), MappingProxyType(rnd.down_since))
    return Plan(tuple(rnd.actions), memory)
