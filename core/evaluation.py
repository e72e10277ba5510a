"""The seed experiment, simulated: every policy places the same stream of deployment requests
on the same simulated fleet, and the performance model says what really happens. Pure and
seeded (no I/O, no wall clock except the decision-time measurement).

The experiment (docs/eval.md has the full account):

- Fleet: device profiles (default two A100, one V100, three AGX Xavier). Each device holds
  placements; its state as the scheduler sees it is `perfmodel.device_features` of them.
- Requests: a model (the four MLPerf workloads resnet50, bert-large = bert-99, ssd-resnet34 and
  dlrm; GPT-2 and YOLOv5 as unseen models, never in training), a batch (1, 8, 32), a p99 bound
  (tight / the MLPerf Server bound / loose) and an offered rate. Arrivals are Poisson, lifetimes
  exponential. The rate of a request is a "demand" share of the fleet's fastest device for
  that (model, batch), log-uniform, so requests range from a trickle a Jetson serves to a
  stream that needs most of an A100, but never more input than half a 1 Gb/s edge LAN carries
  (the performance model does not saturate links; a camera stream is tens of frames/s).
- Load: concurrent deployments (arrival rate x mean lifetime) as a share of what the fleet can
  hold (its devices' capacity in fastest-device units over the mean demand): light 0.3,
  medium 0.6, high 0.9, overload 1.3.
- Success: the request is placed and its true p99 (perfmodel.evaluate of the device with all
  its placements) stays under the SLO for its whole life: whenever a deployment lands on a
  device, the deployments already there are re-evaluated, and one pushed past its SLO fails.
  A placement that does not fit in memory fails (the worker is OOM-killed).
- Feasible: a request that meets its SLO on at least one device of the fleet when that device
  is idle. `success` counts successes among feasible requests (turning down a request nothing
  could serve is not a failure); `success_raw` among all requests.
- Metrics per policy and load, over requests arriving after a warm-up of two lifetimes:
  success, success on unseen models, p50/p99 latency (geometric means over placed
  deployments of their true p50 and their worst true p99 over their life), SLO ratio (geometric
  mean of worst p99 / SLO), goodput (samples/s of deployments that met their SLO), regret
  (1 - success / the oracle's success on the same stream), decision time per decide() call,
  and the share of placed deployments that missed their SLO (violated: a rejection and a
  violation count alike in success; an operator may not see them alike).
  Mean and 95% confidence half-width (Student t) over seeds.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgetop.core.perfmodel import (
    EDGE_LAN,
    DeviceCondition,
    Placement,
    device_features,
    evaluate,
    service_ms,
    wire_bytes,
)
from edgetop.core.placement import Deployment, DeviceSlot, Fleet, Policy, Request, with_corunners
from edgetop.core.profiles import DeviceProfile, get_profile
from edgetop.models.workload import WorkloadFeatures

__all__ = [
    "DEFAULT_FLEET",
    "MLPERF_SERVER_BOUND_MS",
    "EvalConfig",
    "EvalResult",
    "make_stream",
    "parse_fleet",
    "run_evaluation",
    "simulate",
]

# MLPerf Inference Server-scenario latency bounds (p99), from the MLPerf Inference rules
# (inference_policies, "Benchmarks": ResNet-50 v1.5 15 ms, BERT-large 99% 130 ms,
# SSD-ResNet34 100 ms, DLRM 30 ms; rounds v0.7 to v3.1).
MLPERF_SERVER_BOUND_MS: Mapping[str, float] = {
    "resnet50": 15.0,
    "bert-large": 130.0,
    "bert-base": 130.0,  # not an MLPerf model: BERT's bound
    "ssd-resnet34": 100.0,
    "dlrm": 30.0,
    # Unseen models have no MLPerf bound; their analogues': a language model like BERT, a
    # one-stage detector like SSD.
    "gpt2": 130.0,
    "gpt2-medium": 130.0,
    "yolov5s": 100.0,
    "yolov5m": 100.0,
}
THRESHOLDS: Mapping[str, float] = {"tight": 0.5, "server": 1.0, "loose": 3.0}
SEEN_MODELS = ("resnet50", "bert-large", "ssd-resnet34", "dlrm")
UNSEEN_MODELS = ("gpt2", "yolov5s", "yolov5m")
BATCHES = (1, 8, 32)
LOADS: tuple[tuple[str, float], ...] = (
    ("light", 0.3),
    ("medium", 0.6),
    ("high", 0.9),
    ("overload", 1.3),
)
DEFAULT_FLEET = (
    "a100-40gb",
    "a100-40gb",
    "v100-16gb",
    "jetson-agx-xavier",
    "jetson-agx-xavier",
    "jetson-agx-xavier",
)
METRICS = (
    "success",
    "success_raw",
    "success_seen",
    "success_unseen",
    "p50_ms",
    "p99_ms",
    "slo_ratio",
    "throughput",
    "regret",
    "decision_ms",
    "placed",
    "violated",
    "feasible",
)


def parse_fleet(spec: str) -> tuple[str, ...]:
    """ "a100-40gb*2,v100-16gb,jetson-agx-xavier*3" -> profile names (ValueError when bad)."""
    out: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, count = part.partition("*")
        name = name.strip()
        try:
            n = int(count) if count else 1
        except ValueError:
            raise ValueError(f"{part!r}: the count after '*' must be a whole number") from None
        if not 1 <= n <= 10_000:
            raise ValueError(f"{part!r}: the count must be 1 to 10000")
        get_profile(name)  # raises UnknownProfileError naming the valid ones
        out.extend([name] * n)
    if not out:
        raise ValueError("the fleet is empty")
    return tuple(out)


@dataclass(frozen=True)
class EvalConfig:
    fleet: tuple[str, ...] = DEFAULT_FLEET
    requests: int = 1000  # per seed and load level
    seeds: int = 5
    first_seed: int = 0  # seeds first_seed .. first_seed + seeds - 1 (a fresh set: any other)
    loads: tuple[tuple[str, float], ...] = LOADS
    seen_models: tuple[str, ...] = SEEN_MODELS
    unseen_models: tuple[str, ...] = UNSEEN_MODELS
    unseen_share: float = 0.3
    batches: tuple[int, ...] = BATCHES
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(THRESHOLDS))
    demand: tuple[float, float] = (0.01, 0.3)  # share of the fastest device, log-uniform
    # A request's input stream is at most this share of a 1 Gb/s edge LAN (the performance
    # model does not saturate links, so the stream must not ask more than a link carries).
    link_share: float = 0.5
    mean_lifetime_s: float = 60.0
    warmup_lifetimes: float = 2.0
    origin: str = "edge"


@dataclass(frozen=True)
class Arrival:
    id: int
    t: float
    lifetime: float
    model: str
    batch: int
    threshold: str
    slo_ms: float
    qps: float
    unseen: bool
    feasible: bool


@dataclass
class _Live:
    """A deployment in the simulation (mutable: its worst latency and fate evolve)."""

    arrival: Arrival
    placement: Placement
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    worst_p99_ms: float = 0.0
    failed: bool = False


@dataclass(frozen=True)
class Outcome:
    arrival: Arrival
    placed: bool
    success: bool
    p50_ms: float | None
    worst_p99_ms: float | None
    decision_ms: float


def _t_value(n: int) -> float:
    """Student t, two-sided 95%, n - 1 degrees of freedom (1.96 beyond the table)."""
    table = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
             2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086)  # fmt: skip
    return table[n - 2] if 2 <= n <= len(table) + 1 else 1.96


@dataclass(frozen=True)
class Summary:
    mean: float
    ci: float  # 95% half-width; 0 with one seed
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        vals = tuple(float(v) for v in values if v is not None and math.isfinite(v))
        if not vals:
            return cls(math.nan, math.nan, ())
        mean = sum(vals) / len(vals)
        if len(vals) < 2:
            return cls(mean, 0.0, vals)
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
        return cls(mean, _t_value(len(vals)) * sd / math.sqrt(len(vals)), vals)


# -- the request stream ---------------------------------------------------------------------


class _Fleetwide:
    """Service times and idle feasibility per (model, batch) over the fleet's distinct profiles,
    cached: the stream generator and the feasibility check ask the same questions often."""

    def __init__(self, profiles: Sequence[DeviceProfile], catalog: Mapping[str, WorkloadFeatures],
                 origin: str) -> None:  # fmt: skip
        self.distinct = {p.name: p for p in profiles}
        self.counts = {name: sum(1 for p in profiles if p.name == name) for name in self.distinct}
        self.catalog = catalog
        self.condition = DeviceCondition(origin=origin)
        self._service: dict[tuple[str, int, str], float] = {}

    def service(self, model: str, batch: int, profile: str) -> float:
        key = (model, batch, profile)
        if key not in self._service:
            self._service[key] = service_ms(self.catalog[model], batch, self.distinct[profile])
        return self._service[key]

    def fastest(self, model: str, batch: int) -> float:
        return min(self.service(model, batch, p) for p in self.distinct)

    def capacity_units(self, model: str, batch: int) -> float:
        """The fleet's capacity for this workload in fastest-device units."""
        best = self.fastest(model, batch)
        return sum(n * best / self.service(model, batch, p) for p, n in self.counts.items())

    def feasible(self, model: str, batch: int, qps: float, slo_ms: float) -> bool:
        placement = Placement(self.catalog[model], batch, "server", qps)
        for profile in self.distinct.values():
            outcome = evaluate(profile, [placement], self.condition)
            if outcome.fits and outcome.performances[0].p99_ms <= slo_ms:
                return True
        return False


def make_stream(
    config: EvalConfig,
    catalog: Mapping[str, WorkloadFeatures],
    seed: int,
    load: float,
    fleetwide: _Fleetwide | None = None,
) -> tuple[Arrival, ...]:
    """The requests of one run: the same for every policy given (seed, load)."""
    profiles = [get_profile(p) for p in config.fleet]
    fw = fleetwide or _Fleetwide(profiles, catalog, config.origin)
    rng = random.Random(f"edgetop-eval:{seed}:{load}")
    lo, hi = config.demand
    mean_demand = (hi - lo) / math.log(hi / lo)
    kinds = [(m, b) for m in (*config.seen_models, *config.unseen_models) for b in config.batches]
    capacity = float(np.mean([fw.capacity_units(m, b) for m, b in kinds]))
    concurrent = load * capacity / mean_demand
    rate = concurrent / config.mean_lifetime_s
    t = 0.0
    out = []
    for i in range(config.requests):
        t += rng.expovariate(rate)
        unseen = rng.random() < config.unseen_share
        model = rng.choice(config.unseen_models if unseen else config.seen_models)
        batch = rng.choice(config.batches)
        threshold = rng.choice(sorted(config.thresholds))
        slo = MLPERF_SERVER_BOUND_MS[model] * config.thresholds[threshold]
        demand = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        qps = min(
            demand * batch * 1000.0 / fw.fastest(model, batch),
            config.link_share * EDGE_LAN.gbit_s * 1e9 / 8 / wire_bytes(catalog[model]),
        )
        out.append(
            Arrival(
                id=i,
                t=t,
                lifetime=rng.expovariate(1.0 / config.mean_lifetime_s),
                model=model,
                batch=batch,
                threshold=threshold,
                slo_ms=slo,
                qps=qps,
                unseen=unseen,
                feasible=fw.feasible(model, batch, qps, slo),
            )
        )
    return tuple(out)


# -- one policy on one stream ---------------------------------------------------------------


class _SimFleet:
    """The simulated devices and the Fleet view of them, updated one device at a time."""

    def __init__(self, profiles: Sequence[DeviceProfile], catalog: Mapping[str, WorkloadFeatures],
                 condition: DeviceCondition) -> None:  # fmt: skip
        self.profiles = list(profiles)
        self.catalog = catalog
        self.condition = condition
        self.hosts = [f"{p.name}-{k}" for k, p in enumerate(profiles)]
        self.live: list[list[_Live]] = [[] for _ in profiles]
        self.fleet = Fleet.build([self._slot(i) for i in range(len(profiles))])

    def _slot(self, i: int) -> DeviceSlot:
        profile = self.profiles[i]
        outcome = evaluate(profile, [d.placement for d in self.live[i]], self.condition)
        deployments = tuple(
            Deployment(
                id=f"r{d.arrival.id}",
                model=d.arrival.model,
                batch=d.arrival.batch,
                workload=d.placement.workload,
                scenario="server",
                qps=d.arrival.qps,
                slo_ms=d.arrival.slo_ms,
                p50_ms=d.p50_ms,
                p99_ms=d.p99_ms,
                host=self.hosts[i],
                device="gpu0",
                busy=perf.util,  # what its worker reports as its busy share
            )
            for d, perf in zip(self.live[i], outcome.performances, strict=True)
        )
        return DeviceSlot(
            host=self.hosts[i],
            device="gpu0",
            # As the live fleet sees it: telemetry plus the co-runner columns of what runs.
            features=with_corunners(
                device_features(profile, outcome, self.condition),
                deployments,
                self.condition.origin,
            ),
            profile=profile.name,
            deployments=deployments,
            busy_power_w=profile.tdp_w,
        )

    def _refresh(self, i: int) -> None:
        self.fleet = self.fleet.replace({i: self._slot(i)})

    def add(self, i: int, d: _Live) -> bool:
        """Place d on device i; re-evaluate everyone there. False if it does not fit."""
        profile = self.profiles[i]
        residents = [*self.live[i], d]
        outcome = evaluate(profile, [r.placement for r in residents], self.condition)
        if not outcome.fits:
            d.failed = True
            return False
        self.live[i] = residents
        for r, perf in zip(residents, outcome.performances, strict=True):
            r.p50_ms, r.p99_ms = perf.p50_ms, perf.p99_ms
            r.worst_p99_ms = max(r.worst_p99_ms, perf.p99_ms)
            if perf.p99_ms > r.arrival.slo_ms:
                r.failed = True
        self._refresh(i)
        return True

    def remove(self, i: int, d: _Live) -> None:
        self.live[i] = [r for r in self.live[i] if r is not d]
        outcome = evaluate(self.profiles[i], [r.placement for r in self.live[i]], self.condition)
        for r, perf in zip(self.live[i], outcome.performances, strict=True):
            r.p50_ms, r.p99_ms = perf.p50_ms, perf.p99_ms  # leaving never slows anyone
        self._refresh(i)


def simulate(
    policy: Policy,
    stream: Sequence[Arrival],
    profiles: Sequence[DeviceProfile],
    catalog: Mapping[str, WorkloadFeatures],
    origin: str = "edge",
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[Outcome, ...]:
    """Run one policy over one stream. Policies with an `observe(model, device, predicted_ms,
    observed_ms, quantile, batch)` method get the true p50 and p99 of each deployment they place, as
    its worker would report them."""
    sim = _SimFleet(profiles, catalog, DeviceCondition(origin=origin))
    departures: list[tuple[float, int, int]] = []  # (time, arrival id, device)
    live: dict[int, _Live] = {}
    decided: list[tuple[_Live, bool, float]] = []
    observe = getattr(policy, "observe", None)
    for a in stream:
        while departures and departures[0][0] <= a.t:
            _, aid, i = heapq.heappop(departures)
            sim.remove(i, live.pop(aid))
        workload = catalog[a.model]
        request = Request(a.model, workload, a.batch, a.slo_ms, "server", a.qps)
        started = clock()
        rec = policy.decide(request, sim.fleet)
        elapsed_ms = (clock() - started) * 1000.0
        d = _Live(a, Placement(workload, a.batch, "server", a.qps))
        chosen = rec.chosen
        placed = False
        if chosen is not None:
            placed = sim.add(chosen.index, d)
            if placed:
                live[a.id] = d
                heapq.heappush(departures, (a.t + a.lifetime, a.id, chosen.index))
                if observe is not None and chosen.p99_ms is not None:
                    observe(a.model, chosen.key, chosen.p99_ms, d.p99_ms, batch=a.batch)
                    if chosen.p50_ms is not None:
                        observe(a.model, chosen.key, chosen.p50_ms, d.p50_ms, "p50", a.batch)
        decided.append((d, placed, elapsed_ms))
    return tuple(
        Outcome(
            arrival=d.arrival,
            placed=placed,
            success=placed and not d.failed,
            p50_ms=d.p50_ms if placed else None,
            worst_p99_ms=d.worst_p99_ms if placed else None,
            decision_ms=ms,
        )
        for d, placed, ms in decided
    )


# -- metrics --------------------------------------------------------------------------------


def _share(hits: int, total: int) -> float:
    return hits / total if total else math.nan


def _geomean(values: Sequence[float]) -> float:
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else math.nan


def run_metrics(outcomes: Sequence[Outcome], warmup_s: float) -> dict[str, float]:
    counted = [o for o in outcomes if o.arrival.t >= warmup_s] or list(outcomes)
    feasible = [o for o in counted if o.arrival.feasible]
    placed = [o for o in counted if o.placed]
    span = max(counted[-1].arrival.t - counted[0].arrival.t, 1e-9)
    served = sum(o.arrival.qps * o.arrival.lifetime for o in counted if o.success)
    return {
        "success": _share(sum(o.success for o in feasible), len(feasible)),
        "success_raw": _share(sum(o.success for o in counted), len(counted)),
        "success_seen": _share(
            sum(o.success for o in feasible if not o.arrival.unseen),
            sum(1 for o in feasible if not o.arrival.unseen),
        ),
        "success_unseen": _share(
            sum(o.success for o in feasible if o.arrival.unseen),
            sum(1 for o in feasible if o.arrival.unseen),
        ),
        "p50_ms": _geomean([o.p50_ms for o in placed if o.p50_ms is not None]),
        "p99_ms": _geomean([o.worst_p99_ms for o in placed if o.worst_p99_ms is not None]),
        "slo_ratio": _geomean(
            [o.worst_p99_ms / o.arrival.slo_ms for o in placed if o.worst_p99_ms is not None]
        ),
        "throughput": served / span,
        "decision_ms": float(np.mean([o.decision_ms for o in outcomes])) if outcomes else 0.0,
        "placed": _share(len(placed), len(counted)),
        "violated": _share(sum(not o.success for o in placed), len(placed)),
        "feasible": _share(len(feasible), len(counted)),
    }


@dataclass(frozen=True)
class EvalResult:
    config: EvalConfig
    # policy -> load -> metric -> Summary over seeds
    results: Mapping[str, Mapping[str, Mapping[str, Summary]]]
    seconds: float = 0.0

    def overall(self, policy: str, metric: str) -> Summary:
        """A metric over every load level and seed together."""
        values = [v for load in self.results[policy].values() for v in load[metric].values]
        return Summary.of(values)

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else round(x, 6)

        policies: dict[str, Any] = {}
        for name, loads in self.results.items():
            entry: dict[str, Any] = {}
            for metric in METRICS:
                s = self.overall(name, metric)
                entry[metric] = num(s.mean)
                entry[f"{metric}_ci"] = num(s.ci)
            entry["by_load"] = {
                load: {
                    **{m: num(s.mean) for m, s in metrics.items()},
                    **{f"{m}_ci": num(s.ci) for m, s in metrics.items()},
                }
                for load, metrics in loads.items()
            }
            policies[name] = entry
        c = self.config
        return {
            "experiment": {
                "fleet": list(c.fleet),
                "requests_per_run": c.requests,
                "seeds": c.seeds,
                "first_seed": c.first_seed,
                "loads": dict(c.loads),
                "seen_models": list(c.seen_models),
                "unseen_models": list(c.unseen_models),
                "batches": list(c.batches),
                "thresholds": dict(c.thresholds),
                "slo_bounds_ms": {
                    m: MLPERF_SERVER_BOUND_MS[m] for m in (*c.seen_models, *c.unseen_models)
                },
                "demand": list(c.demand),
                "mean_lifetime_s": c.mean_lifetime_s,
                "origin": c.origin,
                "success": "share of feasible requests placed that met their SLO for life",
                "seconds": round(self.seconds, 1),
            },
            "policies": policies,
        }


def run_evaluation(
    config: EvalConfig,
    factories: Mapping[str, Callable[[int], Policy]],
    catalog: Mapping[str, WorkloadFeatures],
    progress: Callable[[int, int], None] | None = None,
    reference: str = "oracle",
) -> EvalResult:
    """Every policy (a factory per seed: fresh state per run) on every (load, seed) stream."""
    started = time.perf_counter()
    profiles = [get_profile(p) for p in config.fleet]
    fw = _Fleetwide(profiles, catalog, config.origin)
    runs = len(config.loads) * config.seeds
    per_run: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {load: [] for load, _ in config.loads} for name in factories
    }
    done = 0
    warmup = config.warmup_lifetimes * config.mean_lifetime_s
    for load_name, load in config.loads:
        for seed in range(config.first_seed, config.first_seed + config.seeds):
            stream = make_stream(config, catalog, seed, load, fw)
            for name, factory in factories.items():
                outcomes = simulate(factory(seed), stream, profiles, catalog, config.origin)
                per_run[name][load_name].append(run_metrics(outcomes, warmup))
            done += 1
            if progress is not None:
                progress(done, runs)
    for load_name, _ in config.loads:
        for k in range(config.seeds):
            ref = per_run.get(reference, {}).get(load_name)
            best = ref[k]["success"] if ref else math.nan
            for name in factories:
                m = per_run[name][load_name][k]
                m["regret"] = 1.0 - m["success"] / best if best and best > 0 else math.nan
    results = {
        name: {
            load: {metric: Summary.of([r[metric] for r in runs_]) for metric in METRICS}
            for load, runs_ in loads.items()
        }
        for name, loads in per_run.items()
    }
    return EvalResult(config, results, time.perf_counter() - started)


def quick(config: EvalConfig) -> EvalConfig:
    """The `--quick` setting: fewer requests and seeds (fits in a minute on 2 cores)."""
    return replace(config, requests=min(config.requests, 250), seeds=min(config.seeds, 2))
