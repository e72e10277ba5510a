"""Pipelines as the fleet reports them: the hosts' stage readings grouped into one view each.

A pipeline (core/pipeline.py) is one process per stage, each on its own host, each reported
by that host's agent as a deployment reading naming its pipeline, stage index and blocks
(docs/agent-protocol.md). Pure: a snapshot in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.remote.link import HostStatus
from edgetop.remote.protocol import DeploymentReading

RUNNING, STARTING, DEGRADED, FAILED = "running", "starting", "degraded", "failed"
BROKEN_STATES = ("failed", "dead", "stopped")  # a stage in one of these answers nothing


@dataclass(frozen=True)
class StageView:
    """One stage: where it runs, what it runs, how it is doing (its own window)."""

    hosts: tuple[str, ...]  # more than one only where several fleet names reach one machine
    index: int
    blocks: str | None
    state: str  # the stage's own, or its host's status when the host no longer answers
    p50_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    reason: str | None = None

    @property
    def host(self) -> str:
        return "|".join(self.hosts)


@dataclass(frozen=True)
class PipelineView:
    """A pipeline as one deployment: its stages in order, end-to-end figures from the head
    (stage 0 measures requests from arrival to their result leaving it, i.e. through every
    stage behind it)."""

    label: str
    model: str | None
    stages: tuple[StageView, ...]
    status: str  # running | starting | degraded | failed
    reason: str | None = None

    @property
    def head(self) -> StageView | None:
        return self.stages[0] if self.stages and self.stages[0].index == 0 else None

    @property
    def p50_ms(self) -> float | None:
        return None if self.head is None else self.head.p50_ms

    @property
    def p99_ms(self) -> float | None:
        return None if self.head is None else self.head.p99_ms

    @property
    def throughput(self) -> float | None:
        return None if self.head is None else self.head.throughput

    @property
    def route(self) -> str:
        """The hosts of the stages in order: "tb1 → tb2"."""
        return " → ".join(s.host for s in self.stages)


def is_stage(reading: DeploymentReading) -> bool:
    return reading.pipeline is not None and reading.stage is not None


def pipelines(snapshot: FleetSnapshot) -> tuple[PipelineView, ...]:
    """Every pipeline with a stage reported anywhere in the fleet, by label."""
    found: dict[str, dict[int, list[tuple[HostView, DeploymentReading]]]] = {}
    for host in snapshot.hosts:
        for r in host.deployments:
            if is_stage(r):
                assert r.pipeline is not None and r.stage is not None
                found.setdefault(r.pipeline, {}).setdefault(r.stage, []).append((host, r))
    return tuple(_pipeline(label, found[label]) for label in sorted(found))


def _pipeline(
    label: str, by_index: dict[int, list[tuple[HostView, DeploymentReading]]]
) -> PipelineView:
    stages = tuple(_stage(index, by_index[index]) for index in sorted(by_index))
    readings = [r for index in sorted(by_index) for _, r in by_index[index]]
    model = next((r.model for r in readings if r.model), None)
    status, reason = _health(stages)
    return PipelineView(label, model, stages, status, reason)


def _stage(index: int, seen: list[tuple[HostView, DeploymentReading]]) -> StageView:
    """Several hosts report the same stage only when they are one machine (two `local` hosts
    share a filesystem): one stage, named by all of them, read from one that answers."""
    host, r = next(((h, r) for h, r in seen if h.answered), seen[0])
    state = r.state or "unknown"
    reason = r.reason
    if not host.answered:
        state = host.status.value if host.status is not HostStatus.ONLINE else "unknown"
        reason = host.reason or f"{host.name} is {host.status.value}"
    return StageView(
        hosts=tuple(dict.fromkeys(h.name for h, _ in seen)),
        index=index,
        blocks=r.blocks,
        state=state,
        p50_ms=r.p50_ms,
        p99_ms=r.p99_ms,
        throughput=r.throughput,
        reason=reason,
    )


def _health(stages: Iterable[StageView]) -> tuple[str, str | None]:
    """Every request crosses every stage: one broken or missing stage fails the pipeline; one
    whose host stopped answering leaves it unknown (degraded) rather than failed."""
    stages = tuple(stages)
    missing = sorted(set(range(max(s.index for s in stages) + 1)) - {s.index for s in stages})
    if missing:
        return FAILED, f"stage {', '.join(map(str, missing))} not reported by any host"
    broken = next((s for s in stages if s.state in BROKEN_STATES), None)
    if broken is not None:
        why = f"stage {broken.index} on {broken.host} is {broken.state}"
        return FAILED, why + (f": {broken.reason}" if broken.reason else "")
    if all(s.state == RUNNING for s in stages):
        return RUNNING, None
    if all(s.state in (RUNNING, STARTING) for s in stages):
        return STARTING, None
    odd = next(s for s in stages if s.state not in (RUNNING, STARTING))
    why = f"stage {odd.index} on {odd.host} is {odd.state}"
    return DEGRADED, why + (f": {odd.reason}" if odd.reason else "")
