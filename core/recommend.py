"""The learned placement decision: predicted latency on every device, checked, ranked, explained.

For one request over a fleet of n devices (all vectorised; n = 1,000 in a couple of ms):

1. the network predicts p50/p99 of the request on every device in its current state; the
   corrections from observed latencies scale them (per model and device, and per batch where
   that batch ran on the device: core/corrections.py);
2. a device is rejected when it is offline, when the deployment does not fit in its free
   memory, when it would be too busy afterwards (its utilisation plus the request's own busy
   share above `util_cap`: qps / batch x the device time of a batch, which is the request's
   predicted p50 alone on that device less the input transfer, so that neither queueing nor
   the co-runners' contention inflates it), or when the predicted p99 with headroom misses
   the SLO. The headroom grows as the ensemble's confidence falls:
   `p99 * (1 + margin + (1 - confidence) * uncertainty) <= slo`;
3. the rest are ranked by the objective (lowest p99; highest samples/s; lowest joules per
   sample; lowest utilisation afterwards);
4. walking down the ranking, a device is kept only if the deployments already on it are
   predicted to keep their own SLOs with the newcomer there (contention is what the network
   learned from the utilisation, co-location and co-runner columns: each resident's row has
   the others and the newcomer, at its predicted p50 and busy share, as co-runners), until
   `top` are kept. A resident with a measured p99 is judged by it times the slowdown the
   network predicts (its row with the newcomer over its row as it runs now):
   core/neighbours.py;
5. when none is kept, devices turned down only on the predicted p99 are offered as trials
   (`Candidate.trial`), ranked and neighbour-checked the same way: those predicted within the
   SLO but short of the headroom, and, where the ensemble is unsure, those whose p99 one
   ensemble spread lower would meet it. A refusal learns nothing; a trial's first latencies
   feed the corrections.

On a large fleet the network scores at most `max_scored` devices (256): those that pass the
hard checks and look best by a cheap proxy (transfer plus roofline time stretched by the
device's utilisation), as cluster schedulers score a sample of their nodes; the rest are
reported as not scored. Reason strings are built for the kept candidates and, lazily, for
rejected devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgetop.core.corrections import Corrections
from edgetop.core.decision_settings import DEFAULT_SETTINGS, DecisionSettings
from edgetop.core.neighbours import (
    corunners_besides,
    harm_reasons,
    newcomer_corunner,
    resident_rows,
    without_itself,
)
from edgetop.core.placement import (
    Candidate,
    Fleet,
    LazyRejections,
    Predictor,
    Recommendation,
    Request,
    admission_reason,
    device_ms,
    fmt_gib,
    fmt_ms,
    offered_util,
    offers_load,
    set_mix,
)
from edgetop.models.schedfeatures import feature_matrix, roofline_log_ms
from edgetop.models.workload import WorkloadFeatures

__all__ = [
    "DEFAULT_SETTINGS",
    "DecisionSettings",
    "LearnedPolicy",
    "alone_rows",
    "objective_score",
    "observed_corrections",
    "recommend",
]

# Rejection codes: predicted misses, hard limits found before predicting, unavailability.
_OK, _SLO, _BUSY, _UNSCORED, _BOUND_BUSY, _BOUND_SLO, _MEMORY, _OFFLINE = range(8)
ROOFLINE_SLACK = 2.0


def roofline_bound(workload: WorkloadFeatures, batch: int, devices: np.ndarray) -> np.ndarray:
    """A lower bound on any batch's time on each of `devices` (a device_matrix): the compute
    roofline at the device's peak, with ROOFLINE_SLACK for peak figures that understate it."""
    log_compute_ms, _ = roofline_log_ms(workload, batch, devices[:, 0], devices[:, 1])
    return np.exp(log_compute_ms) / ROOFLINE_SLACK


def objective_score(
    objective: str,
    batch: int,
    p50_ms: np.ndarray,
    p99_ms: np.ndarray,
    util_after: np.ndarray,
    busy_power_w: np.ndarray,
) -> np.ndarray:
    """Lower is better: p99 ms; minus samples/s; joules per sample; utilisation afterwards."""
    if objective == "latency":
        return p99_ms
    if objective == "throughput":
        return -batch * 1000.0 / p50_ms
    if objective == "energy":
        # The device at its busy power for the time one sample occupies it.
        return busy_power_w * (p50_ms / 1000.0) / batch
    if objective == "balance":
        return util_after
    raise ValueError(f"unknown objective {objective!r}")


def _objective_phrase(
    objective: str, batch: int, p50: float, util_after: float, power: float
) -> str:
    if objective == "throughput":
        return f"~{batch * 1000.0 / p50:,.0f} samples/s, "
    if objective == "energy":
        mj = power * p50 / batch
        return f"~{mj / 1000:.3g} J/sample, " if mj >= 1000 else f"~{mj:.3g} mJ/sample, "
    if objective == "balance":
        return f"{util_after:.0%} busy after, "
    return ""


@dataclass(frozen=True)
class _Scored:
    """Per-device arrays of one decision (NaN where a device was ruled out unpredicted)."""

    p50: np.ndarray
    p99: np.ndarray
    confidence: np.ndarray
    factor: np.ndarray
    need: np.ndarray
    util_after: np.ndarray
    bound_ms: np.ndarray  # lower bound on one batch's time: the work at the device's peak
    code: np.ndarray
    score: np.ndarray


def _corrections(
    model: str, batch: int, fleet: Fleet, corrections: Corrections | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p99 factor, p50 factor, observed) per device."""
    n = len(fleet)
    if corrections is None:
        return np.ones(n), np.ones(n), np.zeros(n, dtype=bool)
    g = fleet.groups
    return (
        corrections.factors(model, fleet.index, n, "p99", g, batch),
        corrections.factors(model, fleet.index, n, "p50", g, batch),
        corrections.observed(model, fleet.index, n, g),
    )


def _score(
    request: Request,
    fleet: Fleet,
    predictor: Predictor,
    corrections: Corrections | None,
    settings: DecisionSettings,
) -> _Scored:
    n = len(fleet)
    need = fleet.need(request.workload, request.batch)
    # Hard limits first, so the network only scores devices that could take the request:
    # offline, no memory, or hopeless even at the device's peak compute (a lower bound on
    # any batch's time, with ROOFLINE_SLACK for peak figures that understate a device).
    bound = roofline_bound(request.workload, request.batch, fleet.matrix)
    code = np.zeros(n, dtype=np.int8)
    code[fleet.util + offered_util(request.scenario, request.qps, request.batch, bound)
         > settings.util_cap] = _BOUND_BUSY  # fmt: skip
    code[bound > request.slo_ms] = _BOUND_SLO
    code[need > fleet.mem_free] = _MEMORY
    code[~fleet.online] = _OFFLINE
    live = np.flatnonzero(code == _OK)
    transfer = fleet.transfer_ms(request.workload, request.batch, settings.origin)
    if settings.max_scored is not None and live.size > settings.max_scored:
        # A large fleet: score only the most promising devices by a cheap proxy (transfer
        # plus the roofline time stretched by how busy the device is), as a cluster
        # scheduler scores a sample of its nodes. The others are reported as not scored.
        stretch = bound * ROOFLINE_SLACK / np.maximum(1.0 - fleet.util, 0.05)
        proxy = objective_score(
            request.objective, request.batch, transfer + stretch, transfer + stretch,
            fleet.util, fleet.busy_power_w,
        )  # fmt: skip
        keep = live[np.argsort(proxy[live], kind="stable")[: settings.max_scored]]
        code[live] = _UNSCORED
        code[keep] = _OK
        live = np.sort(keep)
    p50 = np.full(n, np.nan)
    p99 = np.full(n, np.nan)
    confidence = np.zeros(n)
    factor, factor50, observed = _corrections(request.model, request.batch, fleet, corrections)
    service = bound.copy()
    # An open stream (a rate) keeps a device busy for a share of its time: its batches' device
    # time. A closed loop takes what the others leave and offers no load (offered_util).
    opens = offers_load(request.scenario, request.qps)
    if live.size:
        # Features of the scored devices only (at most max_scored of a large fleet). Besides
        # the request as it would run there, the request alone on each device, one query at a
        # time: its p50 less the transfer is the device time of one batch without queueing or
        # contention, the basis of its busy share (the p50 there carries both, and over-states
        # it most where the device is shared). Devices alike share an alone row.
        rows = feature_matrix(request.workload, request.batch, fleet.matrix[live], request.qps)
        n_live = live.size
        if opens:
            alone, same = alone_rows(request.workload, request.batch, fleet, live)
            rows = np.vstack([rows, alone])
        pred = predictor.predict(rows)
        if opens:
            alone_p50 = np.asarray(pred.p50_ms[n_live:])[same] * factor50[live]
            service[live] = device_ms(alone_p50, transfer[live], bound[live])
        p50[live] = pred.p50_ms[:n_live] * factor50[live]
        p99[live] = np.maximum(pred.p99_ms[:n_live] * factor[live], p50[live])
        # Seeing the model run there (or on a device of the same profile) is evidence the
        # ensemble's spread knows nothing about.
        confidence[live] = np.where(
            observed[live], np.maximum(pred.confidence[:n_live], settings.observed_confidence),
            pred.confidence[:n_live],
        )  # fmt: skip
    util_after = fleet.util + offered_util(request.scenario, request.qps, request.batch, service)
    verdict = np.zeros(live.size, dtype=np.int8)
    lp99, lconf = p99[live], confidence[live]
    verdict[lp99 * (1.0 + settings.headroom(lconf)) > request.slo_ms] = _SLO
    verdict[util_after[live] > settings.util_cap] = _BUSY
    code[live] = verdict
    score = objective_score(
        request.objective, request.batch, p50, p99, util_after, fleet.busy_power_w
    )
    return _Scored(p50, p99, confidence, factor, need, util_after, bound, code, score)


def alone_rows(
    workload: WorkloadFeatures, batch: int, fleet: Fleet, devices: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of `workload` alone on each of `devices` (indices into `fleet`; default
    all), one query at a time: (the distinct rows, the index of each device's row among
    them). Their p50 less the input transfer is a batch's device time, without queueing or
    the co-runners' contention."""
    which = fleet.idle_index if devices is None else fleet.idle_index[devices]
    used, same = np.unique(which, return_inverse=True)
    return feature_matrix(workload, batch, fleet.idle_matrix[used]), same.reshape(-1)


def _neighbour_harm(
    request: Request,
    fleet: Fleet,
    s: _Scored,
    indices: Sequence[int],
    predictor: Predictor,
    corrections: Corrections | None,
    settings: DecisionSettings,
) -> dict[int, str]:
    """For each device in `indices` that has deployments: why the request would break one."""
    groups = []
    for i in indices:
        slot = fleet.slots[i]
        if slot.deployments:
            busy = float(s.util_after[i] - fleet.util[i])
            rows = resident_rows(
                busy,
                float(s.need[i]),
                fleet.matrix[i],
                float(fleet.mem_total[i]),
                slot.features.kind,
                slot.deployments,
                slot.features,
                newcomer_corunner(request, float(s.p50[i]), slot.features, settings.origin, busy),
                settings.origin,
            )
            groups.append((i, slot.key, rows))
    return harm_reasons(groups, predictor, corrections, settings)


def recommend(
    request: Request,
    fleet: Fleet,
    predictor: Predictor,
    corrections: Corrections | None = None,
    settings: DecisionSettings = DEFAULT_SETTINGS,
    *,
    policy: str = "learned",
) -> Recommendation:
    """Ranked devices for `request`, each with predicted p50/p99, confidence and a reason;
    every device looked at and turned down, with why."""
    if len(fleet) == 0:
        return Recommendation(policy, request, (), ())
    s = _score(request, fleet, predictor, corrections, settings)
    harmed: dict[int, str] = {}

    def best(eligible: np.ndarray) -> list[int]:
        """Up to `top` of `eligible` by the objective, skipping devices whose residents the
        request would push past their SLOs (into `harmed`)."""
        order = eligible[np.argsort(s.score[eligible], kind="stable")]
        kept: list[int] = []
        start = 0
        while len(kept) < settings.top and start < len(order):
            chunk = [int(i) for i in order[start : start + settings.top - len(kept)]]
            start += len(chunk)
            if settings.check_neighbours:
                harmed.update(
                    _neighbour_harm(request, fleet, s, chunk, predictor, corrections, settings)
                )
            kept.extend(i for i in chunk if i not in harmed)
        return kept

    kept = best(np.flatnonzero(s.code == _OK))
    trials: list[int] = []
    if not kept and settings.trial_sigmas is not None:
        missed = np.flatnonzero(s.code == _SLO)
        optimistic = settings.optimistic(s.p99[missed], s.confidence[missed])
        unsure = s.confidence[missed] < settings.trial_confidence
        meets = s.p99[missed] <= request.slo_ms
        trials = best(missed[meets | (unsure & (optimistic <= request.slo_ms))])
    candidates = tuple(_candidate(request, fleet, s, i) for i in kept) + tuple(
        _trial(request, fleet, s, i, settings) for i in trials
    )
    rejected_idx = np.flatnonzero(s.code != _OK).tolist()
    if harmed or trials:
        rejected_idx = sorted({*rejected_idx, *harmed} - set(trials))

    def reason(i: int) -> str:
        return harmed.get(i) or _rejection(request, fleet, s, i, settings)

    return Recommendation(
        policy, request, candidates, LazyRejections(fleet.slots, rejected_idx, reason)
    )


def _candidate(request: Request, fleet: Fleet, s: _Scored, i: int) -> Candidate:
    slot = fleet.slots[i]
    p50, p99, util_after = float(s.p50[i]), float(s.p99[i]), float(s.util_after[i])
    free_after = float(fleet.mem_free[i] - s.need[i])
    parts = [
        _objective_phrase(
            request.objective, request.batch, p50, util_after, float(fleet.busy_power_w[i])
        ),
        f"p99 {fmt_ms(p99)} ms predicted (SLO {fmt_ms(request.slo_ms)} ms), ",
        f"{float(fleet.util[i]):.0%} busy, {fmt_gib(free_after)} free after",
    ]
    if slot.deployments:
        parts.append(f", shared with {len(slot.deployments)}")
    if s.confidence[i] < 0.5:
        parts.append(f", low confidence ({s.confidence[i]:.2f})")
    if abs(s.factor[i] - 1.0) > 0.05:
        parts.append(f", x{s.factor[i]:.2f} from observed latency")
    return Candidate(
        host=slot.host,
        device=slot.device,
        index=i,
        p50_ms=p50,
        p99_ms=p99,
        confidence=float(s.confidence[i]),
        reason="".join(parts),
        score=float(s.score[i]),
    )


def _trial(
    request: Request, fleet: Fleet, s: _Scored, i: int, settings: DecisionSettings
) -> Candidate:
    """A device offered although its prediction does not clear the SLO with headroom (or at
    all, where the ensemble is unsure), because no device does."""
    c = _candidate(request, fleet, s, i)
    p99, slo, conf = float(s.p99[i]), request.slo_ms, float(s.confidence[i])
    if p99 <= slo:
        headroom = float(settings.headroom(s.confidence[i : i + 1])[0])
        why = (
            f"p99 {fmt_ms(p99)} ms predicted, within the SLO {fmt_ms(slo)} ms but not with "
            f"the {headroom:.0%} headroom asked at confidence {conf:.2f}"
        )
    else:
        low = float(settings.optimistic(s.p99[i : i + 1], s.confidence[i : i + 1])[0])
        why = (
            f"p99 {fmt_ms(p99)} ms predicted > SLO {fmt_ms(slo)} ms, but unsure (confidence "
            f"{conf:.2f}; {settings.trial_sigmas:g} ensemble spread lower: {fmt_ms(low)} ms)"
        )
    reason = f"trial: {why}; no device clears it, and the first run's latency settles it"
    return replace(c, reason=reason, trial=True)


def _rejection(
    request: Request, fleet: Fleet, s: _Scored, i: int, settings: DecisionSettings
) -> str:
    admission = admission_reason(fleet, i, float(s.need[i]))
    if admission is not None:
        return admission
    code = int(s.code[i])
    if code == _BOUND_SLO:
        return (
            f"needs over {fmt_ms(float(s.bound_ms[i]))} ms per batch even at "
            f"{ROOFLINE_SLACK:g}x its peak compute > SLO {fmt_ms(request.slo_ms)} ms"
        )
    if code == _UNSCORED:
        return f"not scored: {settings.max_scored} devices looked more promising"
    if code in (_BUSY, _BOUND_BUSY):
        least = "at least " if code == _BOUND_BUSY else ""
        return (
            f"would be {least}{s.util_after[i]:.0%} busy (cap {settings.util_cap:.0%}; "
            f"{fleet.util[i]:.0%} now)"
        )
    p99 = float(s.p99[i])
    if p99 > request.slo_ms:
        return f"predicted p99 {fmt_ms(p99)} ms > SLO {fmt_ms(request.slo_ms)} ms"
    headroom = float(settings.headroom(s.confidence[i : i + 1])[0])
    return (
        f"predicted p99 {fmt_ms(p99)} ms too close to SLO {fmt_ms(request.slo_ms)} ms "
        f"({headroom:.0%} headroom needed at confidence {s.confidence[i]:.2f})"
    )


def observed_corrections(
    fleet: Fleet,
    predictor: Predictor,
    base: Corrections | None = None,
    origin: str = DEFAULT_SETTINGS.origin,
) -> Corrections:
    """Corrections from the deployments the fleet already runs: each one's observed p99
    against what the network predicts for it on its device (without itself, as trained: its
    load, memory and place among the co-runners taken out)."""
    out = base or Corrections()
    rows: list[np.ndarray] = []
    seen: list[tuple[str, str, float | None, float]] = []
    for i, slot in enumerate(fleet.slots):
        if not slot.online:
            continue
        for dep in slot.deployments:
            if dep.workload is None or not dep.p99_ms:
                continue
            device = without_itself(
                dep, fleet.matrix[i], float(fleet.mem_total[i]), slot.features.kind
            )
            device = set_mix(
                device, [corunners_besides(slot.deployments, dep, slot.features, origin)]
            )
            rows.append(feature_matrix(dep.workload, dep.batch, device, dep.qps)[0])
            seen.append((dep.model, dep.batch, slot.key, dep.p50_ms, dep.p99_ms))
    if not rows:
        return out
    pred = predictor.predict(np.stack(rows))
    for k, (model, batch, key, p50, p99) in enumerate(seen):
        out = out.observe(model, key, float(pred.p99_ms[k]), p99, batch=batch)
        if p50:
            out = out.observe(model, key, float(pred.p50_ms[k]), p50, "p50", batch)
    return out


class LearnedPolicy:
    """`recommend` with the network, as a Policy. Corrections are updated from outside
    (`observe`), as latencies come back from the deployments it placed."""

    name = "learned"

    def __init__(
        self,
        predictor: Predictor,
        corrections: Corrections | None = None,
        settings: DecisionSettings = DEFAULT_SETTINGS,
    ) -> None:
        self.predictor = predictor
        self.corrections = corrections or Corrections()
        self.settings = settings

    def decide(self, request: Request, fleet: Fleet) -> Recommendation:
        return recommend(request, fleet, self.predictor, self.corrections, self.settings)

    def observe(
        self,
        model: str,
        device: str,
        predicted_ms: float,
        observed_ms: float,
        quantile: str = "p99",
        batch: int | None = None,
    ) -> None:
        """A deployment it placed (at `batch`) reports `observed_ms` where it predicted
        `predicted_ms` (its candidate's figure, with the correction of the time applied)."""
        raw = predicted_ms / self.corrections.factor(model, device, quantile, batch)
        self.corrections = self.corrections.observe(
            model, device, raw, observed_ms, quantile, batch
        )
