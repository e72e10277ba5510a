"""The neighbour check: would a newcomer on a device push one of its residents past its SLO?

Each resident (a deployment with a workload and an SLO) gets two feature rows: the device as it
sees it now (its own load, slot and memory taken out, the others as co-runners, the way the
network was trained) and the same with the newcomer added (its offered utilisation, memory and
place among the co-runners). One prediction covers the residents of several devices. A
resident whose p99 is measured is judged by that p99 times the predicted slowdown (after /
before), so the network's error on it cancels; one without a measurement by the network's p99
after, corrected per (model, device, batch). `recommend` runs it on its shortlisted devices,
`plan_rebalance` on each move's target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgetop.core.corrections import Corrections
from edgetop.core.decision_settings import DecisionSettings
from edgetop.core.placement import (
    COL_COLOCATED,
    COL_MEM_FREE_FRACTION,
    COL_UTIL,
    DEFAULT_ORIGIN,
    Deployment,
    Predictor,
    Request,
    corunner,
    fmt_ms,
    memory_need,
    offered_util,
    set_mix,
)
from edgetop.models.schedfeatures import CoRunner, DeviceFeatures, feature_matrix

__all__ = [
    "ResidentRows",
    "adjusted_rows",
    "corunners_besides",
    "harm_reasons",
    "newcomer_corunner",
    "resident_rows",
    "without_itself",
    "would_harm",
]


def adjusted_rows(
    base: np.ndarray,
    d_util: np.ndarray | float,
    d_colocated: np.ndarray | float,
    d_free_bytes: np.ndarray | float,
    mem_total: np.ndarray | float,
) -> np.ndarray:
    """Device rows (a device_matrix) with their live state shifted: what a device would look
    like with a deployment added (positive deltas) or taken away (negative)."""
    rows = np.array(base, dtype=np.float64, copy=True)
    rows[:, COL_UTIL] = np.clip(rows[:, COL_UTIL] + d_util, 0.0, 1.0)
    rows[:, COL_COLOCATED] = np.maximum(rows[:, COL_COLOCATED] + d_colocated, 0.0)
    free = rows[:, COL_MEM_FREE_FRACTION] + np.asarray(d_free_bytes) / np.maximum(mem_total, 1.0)
    rows[:, COL_MEM_FREE_FRACTION] = np.clip(free, 0.0, 1.0)
    return rows


def newcomer_corunner(
    request: Request,
    p50_ms: float,
    device: DeviceFeatures,
    origin: str,
    busy: float | None = None,
) -> CoRunner:
    """The request as a co-runner of a device's residents, at its predicted p50 there (the
    figure its worker would report once it runs) and, where estimated, its busy share."""
    planned = Deployment(
        id="(new)",
        model=request.model,
        batch=request.batch,
        workload=request.workload,
        scenario=request.scenario,
        qps=request.qps,
        p50_ms=p50_ms if np.isfinite(p50_ms) else None,
        busy=None if busy is None else min(max(busy, 0.0), 1.0),
    )
    return corunner(planned, device, origin)


def _own_util(dep: Deployment) -> float:
    if dep.p50_ms is None:
        return 0.0
    return float(offered_util(dep.scenario, dep.qps, dep.batch, np.array([dep.p50_ms]))[0])


def corunners_besides(
    residents: Sequence[Deployment], dep: Deployment, device: DeviceFeatures, origin: str
) -> list[CoRunner]:
    """The other residents of `dep`'s device, as its co-runners there."""
    return [corunner(r, device, origin) for r in residents if r is not dep]


def without_itself(
    dep: Deployment, device_row: np.ndarray, mem_total: float, kind: str
) -> np.ndarray:
    """The device row `dep` sees of its device: its own load, slot and memory taken out, the
    way the network was trained (a row describes the device before the workload joins)."""
    own = memory_need(dep.workload, dep.batch, kind) if dep.workload is not None else 0.0
    return adjusted_rows(device_row[None, :], -_own_util(dep), -1.0, own, mem_total)


@dataclass(frozen=True)
class ResidentRows:
    """Each checked resident's feature row before a newcomer joins (as it runs now) and after."""

    before: list[np.ndarray]
    after: list[np.ndarray]
    residents: list[Deployment]


def resident_rows(
    newcomer_util: float,
    newcomer_need: float,
    device_row: np.ndarray,
    mem_total: float,
    kind: str,
    residents: Sequence[Deployment],
    device: DeviceFeatures | None = None,
    newcomer: CoRunner | None = None,
    origin: str = DEFAULT_ORIGIN,
) -> ResidentRows:
    """Feature rows of each resident (with a workload and an SLO) on a device in state
    `device_row`, as it runs now and once a newcomer (its offered utilisation and memory)
    joins: the device's state without the resident itself, then plus the newcomer. With
    `device` (the slot's features) the co-runner columns are rebuilt too: the other residents,
    then also the `newcomer`."""
    out = ResidentRows([], [], [])
    runners = [corunner(r, device, origin) for r in residents] if device is not None else []
    for k, dep in enumerate(residents):
        if dep.workload is None or dep.slo_ms is None:
            continue
        alone = without_itself(dep, device_row, mem_total, kind)
        joined = adjusted_rows(alone, newcomer_util, 1.0, -newcomer_need, mem_total)
        both = np.vstack([alone, joined])  # one feature_matrix call for the pair
        if device is not None:
            mates = runners[:k] + runners[k + 1 :]
            both = set_mix(both, [mates, [*mates, newcomer] if newcomer is not None else mates])
        before, after = feature_matrix(dep.workload, dep.batch, both, dep.qps)
        out.before.append(before)
        out.after.append(after)
        out.residents.append(dep)
    return out


def harm_reasons(
    groups: Sequence[tuple[int, str, ResidentRows]],
    predictor: Predictor,
    corrections: Corrections | None,
    settings: DecisionSettings,
) -> dict[int, str]:
    """One prediction for the residents of several devices: device -> the first resident it
    would push past its SLO (devices where none would be are absent).

    A resident whose p99 is measured is anchored to it: its p99 after is the measured one
    times the slowdown the network predicts from the newcomer (after / before, at least 1), so
    the network's error on that resident in that state cancels out. One without a measurement
    yet takes the network's p99 after, corrected per (model, device, batch)."""
    after = [r for _, _, g in groups for r in g.after]
    if not after:
        return {}
    before = [r for _, _, g in groups for r in g.before]
    pred = predictor.predict(np.stack([*after, *before]))
    n = len(after)
    p99_after, p99_before = pred.p99_ms[:n], pred.p99_ms[n:]
    headroom = settings.headroom(np.asarray(pred.confidence[:n], dtype=np.float64))
    harm: dict[int, str] = {}
    k = 0
    for i, key, g in groups:
        for dep in g.residents:
            assert dep.slo_ms is not None
            if dep.p99_ms:
                now = f"from p99 {fmt_ms(dep.p99_ms)} ms "
                p99 = dep.p99_ms * max(float(p99_after[k] / p99_before[k]), 1.0)
            else:
                now = ""
                f = corrections.factor(dep.model, key, batch=dep.batch) if corrections else 1.0
                p99 = float(p99_after[k]) * f
            if i not in harm and p99 * (1.0 + float(headroom[k])) > dep.slo_ms:
                harm[i] = (
                    f"would push {dep.id} ({dep.model}) {now}to p99 {fmt_ms(p99)} ms "
                    f"> its SLO {fmt_ms(dep.slo_ms)} ms"
                )
            k += 1
    return harm


def would_harm(
    newcomer_util: float,
    newcomer_need: float,
    device_row: np.ndarray,
    mem_total: float,
    kind: str,
    key: str,
    residents: Sequence[Deployment],
    predictor: Predictor,
    corrections: Corrections | None,
    settings: DecisionSettings,
    *,
    device: DeviceFeatures | None = None,
    newcomer: CoRunner | None = None,
) -> str | None:
    """Why adding a deployment to a device in state `device_row` would push one of its
    `residents` past its SLO, or None if none would be predicted to. `device` (the slot's
    features) and `newcomer` (the deployment as a co-runner) rebuild the residents' co-runner
    columns; without them those columns stay as `device_row` has them."""
    rows = resident_rows(
        newcomer_util,
        newcomer_need,
        device_row,
        mem_total,
        kind,
        residents,
        device,
        newcomer,
        settings.origin,
    )
    return harm_reasons([(0, key, rows)], predictor, corrections, settings).get(0)
