"""The scheduler's advice on the live fleet: what the interface, `--auto` and `edgetop deploy`
ask before they act.

`recommend` and `plan_rebalance` (core/recommend.py, core/rebalance.py) are pure and work on a
`Fleet` of scheduler deployments, named by their workers. This module builds that fleet from
the monitor's snapshot, loads the shipped predictor, corrects it with the latencies the fleet
already observes, and speaks the lifecycle's language back: deployment ids and `Where`s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgetop.core.config import FleetConfig
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.lifecycle import Deployment, Where
from edgetop.core.live import fleet_from_snapshot
from edgetop.core.placement import Fleet, Predictor, Recommendation, Request
from edgetop.core.rebalance import plan_rebalance
from edgetop.core.recommend import DEFAULT_SETTINGS, DecisionSettings, observed_corrections
from edgetop.core.recommend import recommend as recommend_on
from edgetop.core.reconciler import owner_of
from edgetop.models.catalog import load_catalog
from edgetop.models.errors import ModelError
from edgetop.models.predictor import load_default
from edgetop.models.workload import WorkloadFeatures

__all__ = ["PlannedMove", "live_fleet", "live_rebalance", "live_recommendation", "parse_where"]


@dataclass(frozen=True)
class PlannedMove:
    """One move of a rebalance plan, in the lifecycle's terms."""

    deployment_id: str
    model: str
    source: Where
    target: Where
    gain: float  # in objective units (latency: ms of p99)
    before_p99_ms: float
    after_p99_ms: float
    fixes_violation: bool
    reason: str


def parse_where(key: str) -> Where:
    """`host/device` (a Fleet slot key) as a Where; host names never contain '/'."""
    host, _, device = key.partition("/")
    return Where(host, device)


def live_fleet(
    snapshot: FleetSnapshot,
    config: FleetConfig | None,
    extra: Mapping[str, WorkloadFeatures] | None = None,
    now: float | None = None,
) -> Fleet:
    catalog = {**load_catalog(), **(extra or {})}
    return fleet_from_snapshot(snapshot, config, catalog, now=time.time() if now is None else now)


def _predictor() -> tuple[Predictor | None, str | None]:
    try:
        return load_default(), None
    except ModelError as exc:
        return None, str(exc)


def live_recommendation(
    request: Request,
    snapshot: FleetSnapshot,
    config: FleetConfig | None,
    now: float | None = None,
    settings: DecisionSettings = DEFAULT_SETTINGS,
) -> tuple[Recommendation | None, str | None]:
    """The scheduler's recommendation for `request` now, or None and why there is none (no
    usable weights)."""
    predictor, why_none = _predictor()
    if predictor is None:
        return None, why_none
    fleet = live_fleet(snapshot, config, {request.model: request.workload}, now)
    return recommend_on(
        request, fleet, predictor, observed_corrections(fleet, predictor), settings
    ), None


def live_rebalance(
    deployments: Sequence[Deployment],
    snapshot: FleetSnapshot,
    config: FleetConfig | None,
    *,
    objective: str = "latency",
    max_moves: int = 5,
    now: float | None = None,
) -> tuple[tuple[PlannedMove, ...], str | None]:
    """The rebalance plan for the fleet's running workers, as moves of `deployments` (the
    state's). Workers edgetop does not own, or whose deployment is not active where the worker
    runs, are planned around but never moved. Returns no moves and why when there are no
    usable weights."""
    predictor, why_none = _predictor()
    if predictor is None:
        return (), why_none
    fleet = live_fleet(snapshot, config, now=now)
    running = [dep for slot in fleet.slots for dep in slot.deployments]
    plan = plan_rebalance(
        running,
        fleet,
        predictor,
        corrections=observed_corrections(fleet, predictor),
        objective=objective,
        max_moves=max_moves,
    )
    ours = {d.id: d for d in deployments if d.status.active and d.where is not None}
    moves: list[PlannedMove] = []
    for m in plan.moves:
        d = ours.get(owner_of(m.deployment) or "")
        source = parse_where(m.source)
        if d is None or d.where != source or d.worker != m.deployment:
            continue
        moves.append(
            PlannedMove(
                d.id,
                m.model,
                source,
                parse_where(m.target),
                m.gain,
                m.before_p99_ms,
                m.after_p99_ms,
                m.fixes_violation,
                m.reason,
            )
        )
    return tuple(moves), None
