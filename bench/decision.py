"""Decision-time benchmark: one placement over 1,000 devices; a rebalance of 500 deployments.

    python bench/decision.py [--devices 1000] [--requests 300] [--rebalance 500x200]
                             [--repeats 10] [--json FILE]

The fleet is a seeded mix of every device profile, each device in a random live state (0-4
co-located deployments of zoo workloads at random batch and rate, evaluated by the performance
model, so utilisation, free memory and temperature are consistent). The predictor is the one
`edgetop recommend` uses (`load_default()`: shipped or trained weights); with no weights file
it falls back to random weights of the shipped architecture (same cost, and the run says so).

Measured with time.perf_counter on this process, after a warm-up:
- `Fleet.build`: the per-snapshot cost (device matrix and columns), paid once per fleet state;
- `recommend()`: one request (random zoo model, batch, SLO, rate, objective) over the fleet:
  features, prediction, checks, ranking, neighbour checks of the shortlisted devices, reasons of
  the top 5 (rejection reasons are formatted lazily, only when read);
- `plan_rebalance()`: 500 deployments (observed latencies on half of them) over 200 devices,
  at most 10 moves.
Prints a markdown table (median, p90, max) against the targets: median decision under 2 ms,
rebalance under 1 s. Run it with `OPENBLAS_NUM_THREADS=1` as well: on a machine whose cores
other work keeps busy, OpenBLAS's threads make the small matrix products of a decision 50x
slower (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgetop.core.evaluation import MLPERF_SERVER_BOUND_MS
from edgetop.core.perfmodel import DeviceCondition, Placement, device_features, evaluate
from edgetop.core.placement import (
    OBJECTIVES,
    Deployment,
    DeviceSlot,
    Fleet,
    Request,
    with_corunners,
)
from edgetop.core.profiles import PROFILES
from edgetop.core.rebalance import plan_rebalance
from edgetop.core.recommend import DecisionSettings, recommend
from edgetop.models.catalog import load_catalog
from edgetop.models.predictor import (
    DEFAULT_HIDDEN,
    LatencyPredictor,
    PredictorError,
    load_default,
)
from edgetop.models.schedfeatures import FEATURE_NAMES

DECISION_TARGET_MS = 2.0
REBALANCE_TARGET_MS = 1000.0
# The evaluation's p99 bounds, plus the zoo models it does not request (MLPerf Server bounds of
# the classifier and the small detector).
BOUNDS = {**MLPERF_SERVER_BOUND_MS, "mobilenetv2": 15.0, "ssd-mobilenet": 50.0}


def predictor() -> tuple[Any, str]:
    try:
        p = load_default()
        return p, f"weights {p.version}"
    except PredictorError as exc:
        rng = np.random.default_rng(0)
        d, members = len(FEATURE_NAMES), 5
        sizes = [d, *DEFAULT_HIDDEN, 2]
        weights = tuple(
            rng.normal(0, 0.1, (members, a, b)).astype(np.float32)
            for a, b in itertools.pairwise(sizes)
        )
        biases = tuple(np.zeros((members, b), np.float32) for b in sizes[1:])
        p = LatencyPredictor(
            weights=weights,
            biases=biases,
            shortcut=rng.normal(0, 0.1, (members, d, 2)).astype(np.float32),
            x_mean=np.zeros(d),
            x_std=np.ones(d),
            y_mean=np.array([2.0, 2.5]),
            y_std=np.ones(2),
            version="random",
        )
        return p, f"RANDOM weights of the shipped shape ({exc})"


def make_fleet(n: int, seed: int, with_observed: bool = False) -> tuple[Fleet, list[Deployment]]:
    rng = random.Random(seed)
    catalog = load_catalog()
    names = sorted(catalog)
    profiles = list(PROFILES.values())
    slots: list[DeviceSlot] = []
    deployments: list[Deployment] = []
    for i in range(n):
        profile = rng.choice(profiles)
        host = f"{profile.name}-{i}"
        deps: list[Deployment] = []
        placements: list[Placement] = []
        for k in range(rng.randrange(0, 5)):
            model = rng.choice(names)
            batch = rng.choice((1, 8, 32))
            qps = rng.uniform(1, 50) * batch
            placements.append(Placement(catalog[model], batch, "server", qps))
            deps.append(
                Deployment(
                    f"{host}-d{k}",
                    model,
                    batch,
                    catalog[model],
                    "server",
                    qps,
                    BOUNDS[model] * 3,
                    host=host,
                    device="gpu0",
                )
            )
        outcome = evaluate(profile, placements, DeviceCondition())
        if with_observed:
            deps = [
                Deployment(**{**d.__dict__, "p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "busy": p.util})
                if rng.random() < 0.5
                else d
                for d, p in zip(deps, outcome.performances, strict=True)
            ]
        deployments += deps
        slots.append(
            DeviceSlot(
                host,
                "gpu0",
                with_corunners(device_features(profile, outcome), deps),
                profile=profile.name,
                deployments=tuple(deps),
                busy_power_w=profile.tdp_w,
            )
        )
    return Fleet.build(slots), deployments


def requests(count: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    catalog = load_catalog()
    names = sorted(catalog)
    out = []
    for _ in range(count):
        model = rng.choice(names)
        out.append(
            Request(
                model,
                catalog[model],
                rng.choice((1, 8, 32)),
                BOUNDS[model] * rng.choice((0.5, 1.0, 3.0)),
                "server",
                rng.uniform(1, 100),
                rng.choice(OBJECTIVES),
            )
        )
    return out


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def stats(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {
        "median_ms": statistics.median(ms),
        "p90_ms": ms[int(0.9 * (len(ms) - 1))],
        "max_ms": ms[-1],
        "runs": len(ms),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rebalance", default="500x200", metavar="DEPLOYMENTSxDEVICES")
    parser.add_argument("--repeats", type=int, default=10, help="rebalance and build runs")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    model, note = predictor()
    fleet, _ = make_fleet(args.devices, seed=1)
    build = stats(timed(lambda: Fleet.build(fleet.slots), args.repeats))
    reqs = requests(args.requests, seed=2)
    decisions = []
    for r in [reqs[0], *reqs]:  # the first is a warm-up
        t = time.perf_counter()
        rec = recommend(r, fleet, model)
        decisions.append((time.perf_counter() - t) * 1000.0)
        assert len(rec.candidates) <= 5
    decide = stats(decisions[1:])
    every = DecisionSettings(max_scored=None)
    full = []
    same = 0
    gaps: list[float] = []  # where they differ: objective gap between the two choices
    for k, r in enumerate([reqs[0], *reqs]):
        t = time.perf_counter()
        rec_all = recommend(r, fleet, model, settings=every)
        full.append((time.perf_counter() - t) * 1000.0)
        if k:  # not the warm-up
            short, best = recommend(r, fleet, model).chosen, rec_all.chosen
            if (short and short.key) == (best and best.key):
                same += 1
            elif short and best and short.score is not None and best.score is not None:
                gaps.append(abs(short.score - best.score) / max(abs(best.score), 1e-9))
    decide_all = stats(full[1:])
    agreement = same / len(reqs)

    want_deps, devices = (int(x) for x in args.rebalance.lower().split("x"))
    rb_fleet, deps = make_fleet(devices, seed=3, with_observed=True)
    while len(deps) < want_deps:  # top up to exactly the asked count on random devices
        _rb_fleet2, more = make_fleet(devices, seed=3 + len(deps), with_observed=True)
        deps += [Deployment(**{**d.__dict__, "id": f"x{len(deps)}-{d.id}"}) for d in more]
    deps = deps[:want_deps]
    plan = plan_rebalance(deps, rb_fleet, model, max_moves=10)
    rebalance = stats(timed(lambda: plan_rebalance(deps, rb_fleet, model, max_moves=10),
                            args.repeats))  # fmt: skip

    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"OPENBLAS_NUM_THREADS={blas}"
    )
    print(f"machine: {machine}; numpy {np.__version__}; predictor: {note}")
    gap = statistics.median(gaps) if gaps else 0.0
    print(
        f"shortlist picks the same device as scoring every device: {agreement:.1%} "
        f"(elsewhere the two choices' objective values differ by {gap:.1%}, median)"
    )
    print()
    print("| measurement | median ms | p90 ms | max ms | runs | target | met |")
    print("|---|---|---|---|---|---|---|")
    rows = [
        (f"Fleet.build, {args.devices} devices (once per fleet state)", build, None),
        (
            f"recommend(), 1 request over {args.devices} devices (default: network scores "
            f"<= {DecisionSettings().max_scored})",
            decide,
            DECISION_TARGET_MS,
        ),
        (
            f"recommend(), 1 request, every admissible device of {args.devices} scored",
            decide_all,
            None,
        ),
        (
            f"plan_rebalance(), {want_deps} deployments over {devices} devices "
            f"({len(plan.moves)} moves)",
            rebalance,
            REBALANCE_TARGET_MS,
        ),
    ]
    for label, s, target in rows:
        met = "-" if target is None else ("yes" if s["median_ms"] < target else "NO")
        print(
            f"| {label} | {s['median_ms']:.2f} | {s['p90_ms']:.2f} | {s['max_ms']:.2f} "
            f"| {s['runs']} | {'-' if target is None else f'< {target:g} ms'} | {met} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "predictor": note, "build": build,
                       "decision": decide, "decision_all_scored": decide_all,
                       "same_choice": agreement, "objective_gap_median": gap,
                       "rebalance": rebalance}, handle, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
