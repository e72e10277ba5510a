"""Baseline placement policies, with the learned policy's interface (`decide(request, fleet)`).

Every baseline makes the two checks any real scheduler makes (the device is online and the
deployment fits in its free memory); none predicts latency, so their candidates carry no
p50/p99 and the reason names what they ranked by. Random and round-robin carry state (a
seeded generator, a cursor): the algorithms are defined by it.

- random: uniformly among admissible devices (seeded).
- round-robin: the next admissible device after the last one chosen, in fleet order.
- least-loaded: lowest utilisation, then fewest deployments.
- weighted-score: AMP4EC's task scheduler (Zhang et al., AMP4EC, 2025), exactly its formula
      score = 0.2 * resources + 0.2 * (1 - load) + 0.1 / (1 + avg_time) + 0.5 / (1 + 2 * tasks)
  with resources = the device's free memory share (free / total), load = its utilisation
  (0..1), avg_time = the mean observed p50 latency of the deployments on it in SECONDS (0 when
  none is known), tasks = deployments on it; devices above 0.8 load are skipped; highest wins.
- oracle: the performance model's true latencies (simulation only): the device with every
  placement already there plus the new one is evaluated; among devices where the newcomer truly
  meets its SLO and no resident that met its SLO stops meeting it, the best by the objective.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from edgetop.core.perfmodel import DeviceCondition, Placement, evaluate
from edgetop.core.placement import (
    Candidate,
    Fleet,
    LazyRejections,
    Recommendation,
    Request,
    admission_reason,
    fmt_ms,
)
from edgetop.core.profiles import PROFILES
from edgetop.core.recommend import objective_score
from edgetop.core.taskscheduler import AMP4EC_LOAD_LIMIT, amp4ec_score

__all__ = [
    "AMP4EC_LOAD_LIMIT",
    "BASELINES",
    "LeastLoadedPolicy",
    "OraclePolicy",
    "RandomPolicy",
    "RoundRobinPolicy",
    "WeightedScorePolicy",
    "amp4ec_score",
]

TOP = 5


def _answer(
    name: str,
    request: Request,
    fleet: Fleet,
    ranked: list[int],
    reason: Callable[[int], str],
    score: np.ndarray | None,
    rejected: list[int],
    why_rejected: Callable[[int], str],
) -> Recommendation:
    candidates = tuple(
        Candidate(
            host=fleet.slots[i].host,
            device=fleet.slots[i].device,
            index=i,
            p50_ms=None,
            p99_ms=None,
            confidence=None,
            reason=reason(i),
            score=None if score is None else float(score[i]),
        )
        for i in ranked[:TOP]
    )
    return Recommendation(
        name, request, candidates, LazyRejections(fleet.slots, rejected, why_rejected)
    )


def _admissible(
    request: Request, fleet: Fleet
) -> tuple[np.ndarray, np.ndarray, Callable[[int], str]]:
    """(mask of admissible devices, bytes needed per device, why device i is not)."""
    online, fits = fleet.admissible(request.workload, request.batch)
    need = fleet.need(request.workload, request.batch)

    def why(i: int) -> str:
        return admission_reason(fleet, i, float(need[i])) or "not admissible"

    return online & fits, need, why


def _load(fleet: Fleet, i: int) -> str:
    return f"{fleet.util[i]:.0%} busy, {int(fleet.colocated[i])} deployed"


class RandomPolicy:
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def decide(self, request: Request, fleet: Fleet) -> Recommendation:
        ok, _, why = _admissible(request, fleet)
        pool = np.flatnonzero(ok).tolist()
        self._rng.shuffle(pool)
        return _answer(
            self.name, request, fleet, pool, lambda i: f"drawn at random; {_load(fleet, i)}",
            None, np.flatnonzero(~ok).tolist(), why,
        )  # fmt: skip


class RoundRobinPolicy:
    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def decide(self, request: Request, fleet: Fleet) -> Recommendation:
        ok, _, why = _admissible(request, fleet)
        n = len(fleet)
        ranked = [(self._next + k) % n for k in range(n) if ok[(self._next + k) % n]]
        if ranked:
            self._next = (ranked[0] + 1) % n
        return _answer(
            self.name, request, fleet, ranked, lambda i: f"next in turn; {_load(fleet, i)}",
            None, np.flatnonzero(~ok).tolist(), why,
        )  # fmt: skip


class LeastLoadedPolicy:
    name = "least-loaded"

    def decide(self, request: Request, fleet: Fleet) -> Recommendation:
        ok, _, why = _admissible(request, fleet)
        pool = np.flatnonzero(ok)
        ranked = pool[np.lexsort((fleet.colocated[pool], fleet.util[pool]))].tolist()
        return _answer(
            self.name, request, fleet, ranked, lambda i: f"least loaded: {_load(fleet, i)}",
            fleet.util, np.flatnonzero(~ok).tolist(), why,
        )  # fmt: skip


def _avg_time_s(fleet: Fleet) -> np.ndarray:
    out = np.zeros(len(fleet))
    for i, slot in enumerate(fleet.slots):
        seen = [d.p50_ms for d in slot.deployments if d.p50_ms is not None]
        if seen:
            out[i] = sum(seen) / len(seen) / 1000.0
    return out


class WeightedScorePolicy:
    name = "weighted-score"

    def decide(self, request: Request, fleet: Fleet) -> Recommendation:
        ok, _, why = _admissible(request, fleet)
        resources = fleet.mem_free / np.maximum(fleet.mem_total, 1.0)
        avg_time = _avg_time_s(fleet)
        score = amp4ec_score(resources, fleet.util, avg_time, fleet.colocated)  # element-wise
        overloaded = fleet.util > AMP4EC_LOAD_LIMIT
        pool = np.flatnonzero(ok & ~overloaded)
        ranked = pool[np.argsort(-score[pool], kind="stable")].tolist()

        def reason(i: int) -> str:
            return (
                f"score {score[i]:.3f}: {resources[i]:.0%} memory free, {fleet.util[i]:.0%} load, "
                f"avg {avg_time[i] * 1000:.1f} ms, {int(fleet.colocated[i])} tasks"
            )

        def rejected_why(i: int) -> str:
            if not ok[i]:
                return why(i)
            return f"load {fleet.util[i]:.0%} above {AMP4EC_LOAD_LIMIT:.0%} (AMP4EC skips it)"

        rejected = np.flatnonzero(~ok | overloaded).tolist()
        return _answer(self.name, request, fleet, ranked, reason, score, rejected, rejected_why)


class OraclePolicy:
    """Knows the performance model's true latencies: the upper bound in simulation."""

    name = "oracle"

    def __init__(self, origin: str = "edge") -> None:
        self.origin = origin

    def truth(
        self, request: Request, fleet: Fleet, i: int
    ) -> tuple[float, float, float, str | None]:
        """(p50, p99, device util) of the request placed on device i, and why not, if not."""
        slot = fleet.slots[i]
        profile = PROFILES.get(slot.profile or "")
        if profile is None:
            return (
                np.inf,
                np.inf,
                np.inf,
                "no device profile: the oracle knows simulated devices only",
            )
        residents = [d for d in slot.deployments if d.workload is not None]
        placements = [Placement(d.workload, d.batch, d.scenario, d.qps) for d in residents]  # type: ignore[arg-type]
        new = Placement(request.workload, request.batch, request.scenario, request.qps)
        condition = DeviceCondition(power_mode=slot.power_mode, origin=self.origin)
        after = evaluate(profile, [*placements, new], condition)
        mine = after.performances[-1]
        if not after.fits:
            return (mine.p50_ms, mine.p99_ms, after.util, "does not fit in memory")
        if mine.p99_ms > request.slo_ms:
            return (
                mine.p50_ms, mine.p99_ms, after.util,
                f"true p99 {fmt_ms(mine.p99_ms)} ms > SLO {fmt_ms(request.slo_ms)} ms",
            )  # fmt: skip
        broken = [
            k for k, d in enumerate(residents)
            if d.slo_ms is not None and after.performances[k].p99_ms > d.slo_ms
        ]  # fmt: skip
        if broken:
            before = evaluate(profile, placements, condition)
            harmed = [k for k in broken if before.performances[k].p99_ms <= residents[k].slo_ms]  # type: ignore[operator]
            if harmed:
                d = residents[harmed[0]]
                return (
                    mine.p50_ms, mine.p99_ms, after.util,
                    f"would push {d.id} ({d.model}) past its SLO",
                )  # fmt: skip
        return (mine.p50_ms, mine.p99_ms, after.util, None)

    def decide(self, request: Request, fleet: Fleet) -> Recommendation:
        ok, _, why = _admissible(request, fleet)
        n = len(fleet)
        p50 = np.full(n, np.inf)
        p99 = np.full(n, np.inf)
        util = np.full(n, np.inf)
        why_not: dict[int, str] = {}
        for i in np.flatnonzero(ok).tolist():
            p50[i], p99[i], util[i], reason = self.truth(request, fleet, i)
            if reason is not None:
                why_not[i] = reason
        good = np.array([ok[i] and i not in why_not for i in range(n)], dtype=bool)
        score = objective_score(
            request.objective, request.batch, p50, p99, util, fleet.busy_power_w
        )
        pool = np.flatnonzero(good)
        ranked = pool[np.argsort(score[pool], kind="stable")].tolist()
        candidates = tuple(
            Candidate(
                host=fleet.slots[i].host,
                device=fleet.slots[i].device,
                index=i,
                p50_ms=float(p50[i]),
                p99_ms=float(p99[i]),
                confidence=1.0,
                reason=f"true p99 {fmt_ms(p99[i])} ms (SLO {fmt_ms(request.slo_ms)} ms), "
                f"{util[i]:.0%} busy after",
                score=float(score[i]),
            )
            for i in ranked[:TOP]
        )
        rejected = np.flatnonzero(~good).tolist()
        return Recommendation(
            self.name,
            request,
            candidates,
            LazyRejections(fleet.slots, rejected, lambda i: why_not.get(i) or why(i)),
        )


BASELINES: dict[str, Callable[[int], object]] = {
    "random": lambda seed: RandomPolicy(seed),
    "round-robin": lambda seed: RoundRobinPolicy(),
    "least-loaded": lambda seed: LeastLoadedPolicy(),
    "weighted-score": lambda seed: WeightedScorePolicy(),
    "oracle": lambda seed: OraclePolicy(),
}
