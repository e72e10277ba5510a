"""`edgetop eval --hosts`: the scheduler judged against real measured latencies. Pure.

The I/O side (tui/eval_command.py) profiles seen and unseen models on real hosts, trains the
predictor on the seen models' rows, and takes one snapshot of the fleet. This module does the
rest on plain data:

- `measurements`: the profile CSV (plus the runs a host refused for memory) as one outcome per
  (host, model, batch).
- `seen_rows`: the measured training rows of the seen models only: a model named unseen never
  trains the predictor, whatever its name (core.measured already drops GPT-2 and YOLOv5).
- `unseen_rows` / `score_predictions`: the unseen models' rows featurised exactly as core.measured
  featurises training rows, the predictor's p50/p99 beside the measured ones, and the scores
  (within 10%, MAPE, Spearman over host x batch; few rows, so n is always reported).
- `make_requests` / `compare_policies`: a request per unseen (model, batch) at a tight SLO (only
  the fastest host meets it) and a loose one (every host that fits does), decided by each policy
  on the snapshot's fleet and judged by what was measured on the host it chose (success =
  measured p99 <= SLO). The oracle is the best measured host. Requests are independent: each is
  judged on the fleet as profiled, one model alone on a host, because that is what was measured.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgetop.core.measured import parse_measured
from edgetop.core.placement import Fleet, Policy, Predictor, Recommendation, Request
from edgetop.core.training import Accuracy, accuracy
from edgetop.core.trainingdata import TrainingSet
from edgetop.models.schedfeatures import feature_matrix
from edgetop.models.workload import WorkloadFeatures

__all__ = [
    "LEVELS",
    "Choice",
    "HostRequest",
    "Measurement",
    "PolicyScore",
    "PredictedRow",
    "compare_policies",
    "idle",
    "make_requests",
    "measurements",
    "oracle_host",
    "predict_on_fleet",
    "score_predictions",
    "seen_rows",
    "unseen_rows",
]

# SLO levels, as multiples of a measured p99: tight = the best host's, loose = the worst
# fitting host's. The 15% is room for run-to-run noise on a shared machine.
SLO_SLACK = 1.15
LEVELS = ("tight", "loose")
SCENARIO = "singlestream"  # what `edgetop profile` measures by default; the requests use it too
UNSEEN_ALIAS = "unseen:"  # prefix that gets a held-out model's rows past core.measured's filter

Key = tuple[str, str, int]  # (host, model, batch)


@dataclass(frozen=True)
class Measurement:
    """What one (host, model, batch) did when profiled alone: latencies, or why it could not run."""

    host: str
    model: str
    batch: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None  # samples/s
    refused: str | None = None  # the worker's reason (it does not fit)

    @property
    def key(self) -> Key:
        return (self.host, self.model, self.batch)

    @property
    def ran(self) -> bool:
        return self.p99_ms is not None


def _float(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def measurements(
    csv_text: str, refused: Iterable[tuple[str, str, int, str]] = ()
) -> dict[Key, Measurement]:
    """Outcomes from a profile CSV's singlestream rows and (host, model, batch, reason) refusals.
    A run measured after an earlier refusal wins; rows whose latencies do not parse are left
    out (core.measured reports those with the line when the data is trained on)."""
    out: dict[Key, Measurement] = {}
    for host, model, batch, reason in refused:
        out[(host, model, batch)] = Measurement(host, model, batch, refused=reason)
    for row in csv.DictReader(io.StringIO(csv_text)):
        if (row.get("scenario") or "") != SCENARIO or (row.get("options") or ""):
            continue
        p50, p99 = _float(row.get("p50_ms")), _float(row.get("p99_ms"))
        batch_text = (row.get("batch") or "").strip()
        if p50 is None or p99 is None or not batch_text.isdigit():
            continue
        m = Measurement(
            row["host"], row["model"], int(batch_text), p50, max(p99, p50),
            _float(row.get("throughput")),
        )  # fmt: skip
        out[m.key] = m
    return out


def seen_rows(rows: TrainingSet, unseen: Collection[str]) -> TrainingSet:
    """Measured training rows less those of the models held out for this evaluation."""
    return rows.subset(np.array([m not in unseen for m in rows.models], dtype=bool))


@dataclass(frozen=True)
class PredictedRow:
    host: str
    model: str
    batch: int
    p50_ms: float  # measured
    p99_ms: float
    predicted_p50_ms: float
    predicted_p99_ms: float
    confidence: float


def unseen_rows(
    csv_text: str,
    models: Collection[str],
    catalog: Mapping[str, WorkloadFeatures],
    source: str = "<csv>",
) -> tuple[list[Measurement], np.ndarray]:
    """The unseen models' measured rows and their feature rows, built by core.measured (the
    code that builds the training rows) one CSV row at a time. Its training filter drops
    GPT-2 and YOLOv5 by name, so each row goes in under an alias that the catalog maps to the
    same features: the scored rows get exactly the features a training row would."""
    reader = csv.DictReader(io.StringIO(csv_text))
    fields = list(reader.fieldnames or ())
    kept: list[Measurement] = []
    xs: list[np.ndarray] = []
    for row in reader:
        model = row.get("model") or ""
        if model not in models:
            continue
        alias = UNSEEN_ALIAS + model
        one = io.StringIO()
        writer = csv.DictWriter(one, fieldnames=fields)
        writer.writeheader()
        writer.writerow({**row, "model": alias})
        aliased = {**catalog, alias: catalog[model]} if model in catalog else catalog
        parsed = parse_measured(one.getvalue(), source, aliased).rows
        if len(parsed) != 1:
            continue  # a row training would skip too (server scenario, unknown device)
        p50, p99 = float(np.exp(parsed.y[0, 0])), float(np.exp(parsed.y[0, 1]))
        kept.append(Measurement(row["host"], model, int(float(row["batch"])), p50, p99))
        xs.append(parsed.x[0])
    return kept, (np.stack(xs) if xs else np.zeros((0, 0)))


def score_predictions(
    rows: Sequence[Measurement], p50_ms: np.ndarray, p99_ms: np.ndarray, confidence: np.ndarray
) -> tuple[list[PredictedRow], dict[str, dict[str, Accuracy]]]:
    """Predictions paired with measurements, and their scores per model and over all rows:
    {"all" | model: {"p50": Accuracy, "p99": Accuracy}}."""
    paired = [
        PredictedRow(m.host, m.model, m.batch, m.p50_ms or 0.0, m.p99_ms or 0.0,
                     float(p50_ms[k]), float(p99_ms[k]), float(confidence[k]))
        for k, m in enumerate(rows)
    ]  # fmt: skip
    groups: dict[str, list[PredictedRow]] = {"all": paired}
    for r in paired:
        groups.setdefault(r.model, []).append(r)
    scores = {
        name: {
            "p50": accuracy(
                np.array([r.predicted_p50_ms for r in group]), np.array([r.p50_ms for r in group])
            ),
            "p99": accuracy(
                np.array([r.predicted_p99_ms for r in group]), np.array([r.p99_ms for r in group])
            ),
        }
        for name, group in groups.items()
    }
    return paired, scores


def predict_on_fleet(
    rows: Sequence[Measurement],
    fleet: Fleet,
    predictor: Predictor,
    workloads: Mapping[str, WorkloadFeatures],
) -> tuple[np.ndarray, np.ndarray]:
    """(p50, p99) of each row's model and batch on its host's first device in `fleet`, as the
    learned policy predicts them when it decides (NaN where the host is not in the fleet)."""
    first: dict[str, int] = {}
    for i, slot in enumerate(fleet.slots):
        first.setdefault(slot.host, i)
    p50, p99 = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for k, m in enumerate(rows):
        at = first.get(m.host)
        if at is None:
            continue
        x = feature_matrix(workloads[m.model], m.batch, fleet.matrix[at : at + 1])
        prediction = predictor.predict(x)
        p50[k], p99[k] = float(prediction.p50_ms[0]), float(prediction.p99_ms[0])
    return p50, p99


@dataclass(frozen=True)
class HostRequest:
    model: str
    batch: int
    slo_ms: float
    level: str  # one of LEVELS


def make_requests(
    outcomes: Mapping[Key, Measurement],
    models: Sequence[str],
    batches: Sequence[int],
    hosts: Sequence[str],
) -> list[HostRequest]:
    """A tight and a loose request per (model, batch) that ran on at least one host. Where one
    host alone ran it, both levels bound the same host (tight still has to find it)."""
    requests: list[HostRequest] = []
    for model in models:
        for batch in batches:
            p99s = sorted(
                m.p99_ms
                for h in hosts
                if (m := outcomes.get((h, model, batch))) is not None and m.p99_ms is not None
            )
            if not p99s:
                continue
            requests.append(HostRequest(model, batch, p99s[0] * SLO_SLACK, "tight"))
            requests.append(HostRequest(model, batch, p99s[-1] * SLO_SLACK, "loose"))
    return requests


def oracle_host(
    request: HostRequest, outcomes: Mapping[Key, Measurement], hosts: Sequence[str]
) -> str | None:
    """The host with the lowest measured p99 among those that meet the SLO; None if none does."""
    best: tuple[float, str] | None = None
    for h in hosts:
        m = outcomes.get((h, request.model, request.batch))
        if (
            m is not None
            and m.p99_ms is not None
            and m.p99_ms <= request.slo_ms
            and (best is None or m.p99_ms < best[0])
        ):
            best = (m.p99_ms, h)
    return None if best is None else best[1]


@dataclass(frozen=True)
class Choice:
    """One policy's answer to one request, judged by the measurement on the host it chose."""

    policy: str
    request: HostRequest
    host: str | None  # None: the policy placed it nowhere
    measured_p50_ms: float | None
    measured_p99_ms: float | None
    throughput: float | None
    predicted_p99_ms: float | None
    success: bool
    outcome: str  # "met", "missed", "refused", "not measured", "not placed"
    decision_ms: float
    seed: int = 0
    why: str | None = None  # why not placed (the policy's rejections)


def judge(
    policy: str,
    request: HostRequest,
    host: str | None,
    outcomes: Mapping[Key, Measurement],
    predicted_p99_ms: float | None = None,
    decision_ms: float = 0.0,
    seed: int = 0,
    why: str | None = None,
) -> Choice:
    m = outcomes.get((host, request.model, request.batch)) if host is not None else None
    if host is None:
        outcome = "not placed"
    elif m is None:
        outcome = "not measured"
    elif m.p99_ms is None:
        outcome = "refused"
    else:
        outcome = "met" if m.p99_ms <= request.slo_ms else "missed"
    return Choice(
        policy, request, host,
        m.p50_ms if m else None, m.p99_ms if m else None, m.throughput if m else None,
        predicted_p99_ms, outcome == "met", outcome, decision_ms, seed,
        why if host is None else None,
    )  # fmt: skip


@dataclass(frozen=True)
class PolicyScore:
    success: float  # share of feasible requests placed on a host that met the SLO
    by_level: Mapping[str, float]  # the same per SLO level
    placed: float  # share of feasible requests placed at all
    p50_ms: float  # geometric mean of the measured latencies where it placed
    p99_ms: float
    p99_over_best: float  # geometric mean of measured p99 / the best host's p99
    throughput: float  # mean measured samples/s where it placed
    regret: float  # 1 - success / oracle success
    decision_ms: float  # mean time per decision
    requests: int  # feasible requests (each decided once per seed)

    def to_dict(self) -> dict[str, object]:
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else round(x, 6)

        return {
            "success": num(self.success),
            # every request here is of a model the predictor never trained on
            "success_unseen": num(self.success),
            **{f"success_{level}": num(v) for level, v in self.by_level.items()},
            "placed": num(self.placed),
            "p50_ms": num(self.p50_ms),
            "p99_ms": num(self.p99_ms),
            "p99_over_best": num(self.p99_over_best),
            "throughput": num(self.throughput),
            "regret": num(self.regret),
            "decision_ms": num(self.decision_ms),
            "requests": self.requests,
        }


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _share(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else math.nan


def summarise(
    choices: Sequence[Choice],
    outcomes: Mapping[Key, Measurement],
    hosts: Sequence[str],
    oracle_success: float | None = None,
) -> PolicyScore:
    """A policy's choices (over every seed) as scores; requests no host could meet (the
    oracle's failures) are infeasible and left out of the shares."""
    feasible = [c for c in choices if oracle_host(c.request, outcomes, hosts) is not None]
    placed = [c for c in feasible if c.measured_p99_ms is not None]
    best = {
        c.request: outcomes[(h, c.request.model, c.request.batch)].p99_ms
        for c in feasible
        if (h := oracle_host(c.request, outcomes, hosts)) is not None
    }
    success = _share([c.success for c in feasible])
    reference = success if oracle_success is None else oracle_success
    return PolicyScore(
        success=success,
        by_level={
            level: _share([c.success for c in feasible if c.request.level == level])
            for level in LEVELS
        },
        placed=_share([c.host is not None for c in feasible]),
        p50_ms=_geomean([c.measured_p50_ms for c in placed if c.measured_p50_ms]),
        p99_ms=_geomean([c.measured_p99_ms for c in placed if c.measured_p99_ms]),
        p99_over_best=_geomean(
            [c.measured_p99_ms / b for c in placed if c.measured_p99_ms and (b := best[c.request])]
        ),
        throughput=_mean([c.throughput for c in placed if c.throughput is not None]),
        regret=1.0 - success / reference if reference and reference > 0 else math.nan,
        decision_ms=_mean([c.decision_ms for c in choices]),
        requests=len({c.request for c in feasible}),
    )


def idle(fleet: Fleet) -> Fleet:
    """The fleet with no load but its own: utilisation 0 where nothing is deployed.

    Every request is judged by a measurement of its model alone on an idle host, so the
    policies decide on the hosts as they were measured, not on whatever the profiling left
    running when the snapshot was taken."""
    return Fleet.build(
        [
            replace(s, features=replace(s.features, util=0.0)) if not s.deployments else s
            for s in fleet.slots
        ]
    )


def _why_not(rec: Recommendation) -> str:
    """Why a policy placed a request nowhere: each device's reason."""
    reasons = [f"{r.host}: {r.reason}" for r in rec.rejected]
    return "; ".join(reasons) or "no device"


def compare_policies(
    requests: Sequence[HostRequest],
    fleet: Fleet,
    factories: Mapping[str, Callable[[int], Policy]],
    workloads: Mapping[str, WorkloadFeatures],
    outcomes: Mapping[Key, Measurement],
    hosts: Sequence[str],
    seeds: int = 1,
) -> tuple[dict[str, PolicyScore], list[Choice]]:
    """Each policy (fresh per seed) decides every request on `fleet`; every choice is judged by
    measurement. The measured oracle is added as "oracle" and is the reference for regret (the
    simulation's oracle, core.policies.OraclePolicy, knows only simulated devices)."""
    if "oracle" in factories:
        raise ValueError("the oracle here is the best measured host; pass no 'oracle' policy")
    choices: list[Choice] = []
    for name, factory in factories.items():
        for seed in range(seeds):
            policy = factory(seed)
            for r in requests:
                request = Request(r.model, workloads[r.model], r.batch, r.slo_ms, SCENARIO)
                started = time.perf_counter()
                rec = policy.decide(request, fleet)
                elapsed = (time.perf_counter() - started) * 1000.0
                chosen = rec.chosen
                choices.append(
                    judge(
                        name,
                        r,
                        chosen.host if chosen else None,
                        outcomes,
                        chosen.p99_ms if chosen else None,
                        elapsed,
                        seed,
                        None if chosen else _why_not(rec),
                    )
                )
    for r in requests:
        choices.append(judge("oracle", r, oracle_host(r, outcomes, hosts), outcomes))
    oracle = summarise([c for c in choices if c.policy == "oracle"], outcomes, hosts)
    names = [*factories, "oracle"]
    scores = {
        name: summarise([c for c in choices if c.policy == name], outcomes, hosts, oracle.success)
        for name in names
    }
    return scores, choices
