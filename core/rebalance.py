"""Rebalancing: the few moves of running deployments that improve the objective most. Pure.

Greedy by gain per migration (every move is one migration), at most `max_moves`:

1. deployments over their SLO first (observed p99, else predicted), worst overshoot first, each
   to the best device predicted to meet its SLO with headroom;
2. then the move with the largest predicted gain, if it clears the hysteresis bar (at least
   `min_gain_fraction` of the deployment's current value and, for latency, `min_gain_ms`), so
   a plan never shuffles deployments for noise.

A target must be online, have the memory, stay under the utilisation cap and not push the
deployments already there past their SLOs (the same checks as `recommend`). After a move both
devices' rows change: utilisation, co-location, free memory and the co-runner columns (the
moved deployment joins the target's co-runners at its predicted p50 there, and its busy share
from its device time alone there, as `recommend` estimates a newcomer's). Predictions are
made once per distinct (workload, batch) over all devices, and after each move only for the
two devices it changed: 500 deployments over 200 devices is a few thousand rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgetop.core.corrections import Corrections
from edgetop.core.neighbours import adjusted_rows, would_harm
from edgetop.core.placement import (
    OBJECTIVES,
    Deployment,
    Fleet,
    Predictor,
    corunner,
    device_ms,
    fmt_ms,
    memory_need,
    offered_util,
    set_mix,
)
from edgetop.core.recommend import (
    DEFAULT_SETTINGS,
    DecisionSettings,
    alone_rows,
    objective_score,
    roofline_bound,
)
from edgetop.models.schedfeatures import feature_matrix

__all__ = ["Move", "Plan", "plan_rebalance"]


@dataclass(frozen=True)
class Move:
    deployment: str
    model: str
    source: str  # "host/device"
    target: str
    gain: float  # predicted improvement in objective units (latency: ms of p99)
    before_p99_ms: float
    after_p99_ms: float
    fixes_violation: bool
    reason: str


@dataclass(frozen=True)
class Plan:
    objective: str
    moves: tuple[Move, ...]
    considered: int  # deployments the planner could reason about
    violations: tuple[str, ...]  # deployments over their SLO before the plan
    unresolved: tuple[str, ...]  # of those, the ones no move fixes

    @property
    def gain(self) -> float:
        return sum(m.gain for m in self.moves)


@dataclass
class _State:
    """Working copy of the fleet's live columns, updated as moves are planned."""

    matrix: np.ndarray
    util: np.ndarray
    mem_free: np.ndarray
    residents: list[list[int]]  # deployment positions per device
    deps: list[Deployment]  # the planned deployments, p50 as last known or predicted
    fixed: list[list[Deployment]]  # per device: deployments the plan does not move

    def on(self, j: int) -> list[Deployment]:
        """Everything running on device j now."""
        return [*(self.deps[r] for r in self.residents[j]), *self.fixed[j]]


def plan_rebalance(
    deployments: Sequence[Deployment],
    fleet: Fleet,
    predictor: Predictor,
    *,
    corrections: Corrections | None = None,
    objective: str = "latency",
    max_moves: int = 5,
    min_gain_ms: float = 1.0,
    min_gain_fraction: float = 0.2,
    settings: DecisionSettings = DEFAULT_SETTINGS,
) -> Plan:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: one of {', '.join(OBJECTIVES)}")
    deps = [
        d for d in deployments if d.workload is not None and d.key in fleet.index and d.batch >= 1
    ]
    n_dev = len(fleet)
    where = np.array([fleet.index[d.key] for d in deps], dtype=np.int64)
    planned = {d.id for d in deps}
    state = _State(
        matrix=np.array(fleet.matrix, copy=True),
        util=np.array(fleet.util, copy=True),
        mem_free=np.array(fleet.mem_free, copy=True),
        residents=[[] for _ in range(n_dev)],
        deps=list(deps),
        fixed=[[d for d in slot.deployments if d.id not in planned] for slot in fleet.slots],
    )
    for k, j in enumerate(where):
        state.residents[j].append(k)
    if not deps or n_dev < 2:
        return Plan(objective, (), len(deps), (), ())

    # Distinct (workload, batch, rate) groups: predictions are per group x device.
    groups: dict[tuple[str, int, float | None], int] = {}
    group_of = np.array(
        [groups.setdefault((d.workload.name, d.batch, d.qps), len(groups)) for d in deps],  # type: ignore[union-attr]
        dtype=np.int64,
    )
    reps = [deps[int(np.flatnonzero(group_of == g)[0])] for g in range(len(groups))]
    p50 = np.zeros((len(groups), n_dev))
    p99 = np.zeros((len(groups), n_dev))
    conf = np.zeros((len(groups), n_dev))

    def predict_columns(cols: np.ndarray) -> None:
        rows = np.concatenate(
            [feature_matrix(r.workload, r.batch, state.matrix[cols], r.qps) for r in reps]  # type: ignore[arg-type]
        )
        pred = predictor.predict(rows)
        shape = (len(reps), len(cols))
        p50[:, cols] = pred.p50_ms.reshape(shape)
        p99[:, cols] = pred.p99_ms.reshape(shape)
        conf[:, cols] = np.asarray(pred.confidence).reshape(shape)

    predict_columns(np.arange(n_dev))
    # Each group alone on every device: the device time a moved deployment would take there,
    # without queueing or contention (as `recommend` estimates a newcomer's busy share).
    alone = [alone_rows(r.workload, r.batch, fleet) for r in reps]  # type: ignore[arg-type]
    alone_pred = predictor.predict(np.concatenate([rows for rows, _ in alone]))
    starts = np.cumsum([0, *(len(rows) for rows, _ in alone)])
    alone50 = np.stack(
        [np.asarray(alone_pred.p50_ms[starts[g] :])[idx] for g, (_, idx) in enumerate(alone)]
    )
    factor = np.ones((len(deps), n_dev))
    factor50 = np.ones((len(deps), n_dev))
    if corrections is not None:
        by_model: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        for k, d in enumerate(deps):
            key = (d.model, d.batch)
            if key not in by_model:
                g = fleet.groups
                by_model[key] = (
                    corrections.factors(d.model, fleet.index, n_dev, "p99", g, d.batch),
                    corrections.factors(d.model, fleet.index, n_dev, "p50", g, d.batch),
                )
            factor[k], factor50[k] = by_model[key]

    kinds = [s.features.kind for s in fleet.slots]
    mem = np.array(
        [memory_need(d.workload, d.batch, kinds[j]) for d, j in zip(deps, where, strict=True)]
    )  # type: ignore[arg-type]
    slo = np.array([d.slo_ms if d.slo_ms else np.inf for d in deps])
    batch = np.array([d.batch for d in deps], dtype=np.float64)

    # Where each deployment is now: observed latency when the worker reports it, else the
    # prediction for its device without itself (the network's rows never include the target).
    cur_p50, cur_p99 = _current(deps, where, fleet, predictor, corrections, state, settings)
    # Latencies are end to end: the device is busy for them less the input transfer.
    transfer = np.stack(
        [fleet.transfer_ms(r.workload, r.batch, settings.origin) for r in reps]  # type: ignore[arg-type]
    )[group_of]
    floor = np.stack(
        [roofline_bound(r.workload, r.batch, fleet.matrix) for r in reps]  # type: ignore[arg-type]
    )[group_of]
    own_util = np.array(
        [
            offered_util(
                d.scenario,
                d.qps,
                d.batch,
                device_ms(cur_p50[k : k + 1], transfer[k, where[k]], floor[k, where[k]]),
            )[0]
            for k, d in enumerate(deps)
        ]
    )
    cur_util = state.util[where]
    cur_score = _scores(objective, batch, cur_p50, cur_p99, cur_util, fleet.busy_power_w[where])
    violating = cur_p99 > slo
    violations = tuple(deps[k].id for k in np.flatnonzero(violating))

    moved = np.zeros(len(deps), dtype=bool)
    moves: list[Move] = []
    rejected_pairs: set[tuple[int, int]] = set()
    while len(moves) < max_moves:
        t50 = p50[group_of] * factor50
        t99 = p99[group_of] * factor
        headroom = settings.headroom(conf[group_of])
        service = device_ms(alone50[group_of] * factor50, transfer, floor)
        new_util = np.stack(
            [offered_util(d.scenario, d.qps, d.batch, service[k]) for k, d in enumerate(deps)]
        )
        util_after = state.util[None, :] + new_util
        valid = (
            fleet.online[None, :]
            & (mem[:, None] <= state.mem_free[None, :])
            & (util_after <= settings.util_cap)
            & (t99 * (1 + headroom) <= slo[:, None])
        )
        valid[np.arange(len(deps)), where] = False
        valid[moved] = False
        for k, j in rejected_pairs:
            valid[k, j] = False
        score = _scores(
            objective, batch[:, None], t50, t99, util_after, fleet.busy_power_w[None, :]
        )
        score = np.where(valid, score, np.inf)
        best = np.argmin(score, axis=1)
        best_score = score[np.arange(len(deps)), best]
        gain = cur_score - best_score
        has_target = np.isfinite(best_score)
        fix = has_target & violating & ~moved
        if fix.any():
            k = int(np.argmax(np.where(fix, cur_p99 / slo, -np.inf)))
        else:
            bar = np.abs(cur_score) * min_gain_fraction
            if objective == "latency":
                bar = np.maximum(bar, min_gain_ms)
            worthwhile = has_target & ~moved & (gain > bar)
            if not worthwhile.any():
                break
            k = int(np.argmax(np.where(worthwhile, gain, -np.inf)))
        j = int(best[k])
        dep = deps[k]
        # The deployment at j as the residents would see it: its predicted p50 there.
        arriving = replace(
            dep,
            p50_ms=float(t50[k, j]),
            p99_ms=float(t99[k, j]),
            busy=min(float(new_util[k, j]), 1.0),
            **_at(fleet, j),
        )
        harm = would_harm(
            float(new_util[k, j]),
            float(mem[k]),
            state.matrix[j],
            float(fleet.mem_total[j]),
            kinds[j],
            fleet.slots[j].key,
            state.on(j),
            predictor,
            corrections,
            settings,
            device=fleet.slots[j].features,
            newcomer=corunner(arriving, fleet.slots[j].features, settings.origin),
        )
        if harm is not None:
            rejected_pairs.add((k, j))
            continue
        s = int(where[k])
        moves.append(
            Move(
                deployment=dep.id,
                model=dep.model,
                source=fleet.slots[s].key,
                target=fleet.slots[j].key,
                gain=float(gain[k]),
                before_p99_ms=float(cur_p99[k]),
                after_p99_ms=float(t99[k, j]),
                fixes_violation=bool(violating[k]),
                reason=_move_reason(
                    objective,
                    dep,
                    float(cur_p99[k]),
                    float(t99[k, j]),
                    float(slo[k]),
                    bool(violating[k]),
                    float(gain[k]),
                ),
            )
        )
        moved[k] = True
        # The two devices change: the source loses the deployment, the target gains it.
        state.residents[s].remove(k)
        state.residents[j].append(k)
        state.deps[k] = arriving
        _shift(state, fleet, s, -float(own_util[k]), -1.0, float(mem[k]), settings.origin)
        _shift(state, fleet, j, float(new_util[k, j]), 1.0, -float(mem[k]), settings.origin)
        where[k] = j
        predict_columns(np.array([s, j]))
    unresolved = tuple(deps[k].id for k in np.flatnonzero(violating) if not moved[k])
    return Plan(objective, tuple(moves), len(deps), violations, unresolved)


def _scores(
    objective: str,
    batch: np.ndarray,
    p50: np.ndarray,
    p99: np.ndarray,
    util_after: np.ndarray,
    power: np.ndarray,
) -> np.ndarray:
    if objective == "throughput":
        return -batch * 1000.0 / p50
    if objective == "energy":
        return power * (p50 / 1000.0) / batch
    return objective_score(objective, 1, p50, p99, util_after, power)


def _current(
    deps: Sequence[Deployment],
    where: np.ndarray,
    fleet: Fleet,
    predictor: Predictor,
    corrections: Corrections | None,
    state: _State,
    settings: DecisionSettings,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(deps)
    p50 = np.array([d.p50_ms if d.p50_ms else np.nan for d in deps])
    p99 = np.array([d.p99_ms if d.p99_ms else np.nan for d in deps])
    missing = np.flatnonzero(np.isnan(p99) | np.isnan(p50))
    if len(missing):
        rows = []
        for k in missing:
            d, j = deps[k], int(where[k])
            kind = fleet.slots[j].features.kind
            own = memory_need(d.workload, d.batch, kind)  # type: ignore[arg-type]
            device = adjusted_rows(state.matrix[j : j + 1], 0.0, -1.0, own, fleet.mem_total[j])
            features = fleet.slots[j].features
            mates = [corunner(o, features, settings.origin) for o in state.on(j) if o is not d]
            device = set_mix(device, [mates])
            rows.append(feature_matrix(d.workload, d.batch, device, d.qps)[0])  # type: ignore[arg-type]
        pred = predictor.predict(np.stack(rows))
        for m, k in enumerate(missing):
            d = deps[k]
            f50 = corrections.factor(d.model, d.key, "p50", d.batch) if corrections else 1.0
            f99 = corrections.factor(d.model, d.key, "p99", d.batch) if corrections else 1.0
            if np.isnan(p50[k]):
                p50[k] = float(pred.p50_ms[m]) * f50
            if np.isnan(p99[k]):
                p99[k] = float(pred.p99_ms[m]) * f99
    assert p50.shape == (n,)
    return p50, p99


def _at(fleet: Fleet, j: int) -> dict[str, str]:
    return {"host": fleet.slots[j].host, "device": fleet.slots[j].device}


def _shift(
    state: _State,
    fleet: Fleet,
    j: int,
    d_util: float,
    d_colocated: float,
    d_free: float,
    origin: str,
) -> None:
    """Device j's row after a move: live state shifted, co-runner columns rebuilt from what
    runs there now (state.residents already updated)."""
    features = fleet.slots[j].features
    row = adjusted_rows(state.matrix[j : j + 1], d_util, d_colocated, d_free, fleet.mem_total[j])
    state.matrix[j] = set_mix(row, [[corunner(d, features, origin) for d in state.on(j)]])[0]
    state.util[j] = min(max(state.util[j] + d_util, 0.0), 1.0)
    state.mem_free[j] += d_free


def _move_reason(
    objective: str,
    dep: Deployment,
    before: float,
    after: float,
    slo: float,
    fixes: bool,
    gain: float,
) -> str:
    if fixes:
        return (
            f"{dep.id} ({dep.model}) is at p99 {fmt_ms(before)} ms over its SLO "
            f"{fmt_ms(slo)} ms; predicted {fmt_ms(after)} ms there"
        )
    if objective == "latency":
        return f"p99 {fmt_ms(before)} -> {fmt_ms(after)} ms predicted ({fmt_ms(gain)} ms better)"
    return (
        f"{objective} improves by {gain:.3g}; p99 {fmt_ms(before)} -> {fmt_ms(after)} ms predicted"
    )
