"""The simulated experiment: fleet specs, reproducible streams and runs, the success rules
(neighbours re-checked, memory, feasibility), and the oracle as an upper bound."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from test_recommend_command import tiny_predictor

from edgetop.core.evaluation import (
    MLPERF_SERVER_BOUND_MS,
    Arrival,
    EvalConfig,
    Outcome,
    Summary,
    _Live,
    _SimFleet,
    make_stream,
    parse_fleet,
    run_evaluation,
    run_metrics,
    simulate,
)
from edgetop.core.perfmodel import DeviceCondition, Placement
from edgetop.core.policies import BASELINES, RandomPolicy
from edgetop.core.profiles import UnknownProfileError, get_profile
from edgetop.core.recommend import LearnedPolicy
from edgetop.models.catalog import load_catalog

CATALOG = load_catalog()
SMALL = EvalConfig(
    fleet=("a100-40gb", "v100-16gb", "jetson-agx-xavier", "jetson-agx-xavier"),
    requests=120,
    seeds=1,
    loads=(("light", 0.3), ("high", 0.9)),
)


def test_parse_fleet() -> None:
    assert parse_fleet("a100-40gb*2, v100-16gb,jetson-agx-xavier*3") == (
        "a100-40gb", "a100-40gb", "v100-16gb",
        "jetson-agx-xavier", "jetson-agx-xavier", "jetson-agx-xavier",
    )  # fmt: skip
    with pytest.raises(ValueError, match="whole number"):
        parse_fleet("a100-40gb*two")
    with pytest.raises(UnknownProfileError):
        parse_fleet("h100")
    with pytest.raises(ValueError, match="empty"):
        parse_fleet(" , ")


def test_stream_is_seeded_and_follows_the_design() -> None:
    a = make_stream(SMALL, CATALOG, seed=1, load=0.6)
    assert a == make_stream(SMALL, CATALOG, seed=1, load=0.6)
    assert a != make_stream(SMALL, CATALOG, seed=2, load=0.6)
    assert len(a) == SMALL.requests
    assert all(x.t < y.t for x, y in itertools.pairwise(a))
    for r in a:
        factor = SMALL.thresholds[r.threshold]
        assert r.slo_ms == pytest.approx(MLPERF_SERVER_BOUND_MS[r.model] * factor)
        assert r.unseen == (r.model in SMALL.unseen_models)
        assert r.batch in SMALL.batches and r.qps > 0
    assert {r.model for r in a if r.unseen} <= {"gpt2", "yolov5s", "yolov5m"}
    # More load: the same number of requests arrives faster.
    heavy = make_stream(SMALL, CATALOG, seed=1, load=1.2)
    assert heavy[-1].t < a[-1].t


def arrival(i: int, model: str, qps: float, slo: float, **kw) -> Arrival:
    fields = dict(t=float(i), lifetime=100.0, batch=1, threshold="server", unseen=False,
                  feasible=True)  # fmt: skip
    fields.update(kw)
    return Arrival(id=i, model=model, qps=qps, slo_ms=slo, **fields)  # type: ignore[arg-type]


def live(a: Arrival) -> _Live:
    return _Live(a, Placement(CATALOG[a.model], a.batch, "server", a.qps))


def test_a_newcomer_that_breaks_a_resident_fails_the_resident() -> None:
    sim = _SimFleet([get_profile("jetson-agx-xavier")], CATALOG, DeviceCondition())
    first = live(arrival(0, "bert-large", 1.0, 1e9))
    assert sim.add(0, first) and not first.failed
    alone = first.p99_ms
    # The resident's SLO sits just above its latency alone; a heavy newcomer breaks it.
    first.arrival = replace(first.arrival, slo_ms=alone * 1.01)
    heavy = live(arrival(1, "resnet50", 300.0, 1e9, batch=8))
    assert sim.add(0, heavy)
    assert first.failed and first.worst_p99_ms > alone
    assert not heavy.failed
    view = sim.fleet.slots[0]
    assert [d.id for d in view.deployments] == ["r0", "r1"]
    assert view.features.colocated == 2
    # Leaving never makes anyone slower; the fleet view follows.
    sim.remove(0, heavy)
    assert first.p99_ms == pytest.approx(alone)
    assert [d.id for d in sim.fleet.slots[0].deployments] == ["r0"]


def test_a_placement_that_does_not_fit_fails_and_is_not_added() -> None:
    sim = _SimFleet([get_profile("jetson-orin-nano")], CATALOG, DeviceCondition())
    huge = live(arrival(0, "gpt2-medium", 1.0, 1e9, batch=32))
    assert not sim.add(0, huge) and huge.failed
    assert sim.live[0] == [] and sim.fleet.slots[0].deployments == ()


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.001
        return self.t


def test_simulation_is_reproducible_per_seed() -> None:
    profiles = [get_profile(p) for p in SMALL.fleet]
    stream = make_stream(SMALL, CATALOG, seed=0, load=0.6)

    def run(seed: int) -> tuple[Outcome, ...]:
        return simulate(RandomPolicy(seed), stream, profiles, CATALOG, clock=FakeClock())

    assert run(0) == run(0)
    assert run(0) != run(1)
    assert all(o.decision_ms == pytest.approx(1.0) for o in run(0))


def test_metrics_count_success_among_feasible() -> None:
    def outcome(i: int, success: bool, feasible: bool = True, unseen: bool = False) -> Outcome:
        a = arrival(i, "gpt2" if unseen else "resnet50", 10.0, 20.0, feasible=feasible,
                    unseen=unseen)  # fmt: skip
        return Outcome(a, success, success, 5.0 if success else None,
                       10.0 if success else None, 0.5)  # fmt: skip

    outcomes = [
        outcome(0, True),
        outcome(1, False),
        outcome(2, False, feasible=False),  # nothing could serve it: not held against anyone
        outcome(3, True, unseen=True),
    ]
    m = run_metrics(outcomes, warmup_s=0.0)
    assert m["success"] == pytest.approx(2 / 3)
    assert m["success_raw"] == pytest.approx(2 / 4)
    assert m["success_unseen"] == 1.0 and m["success_seen"] == 0.5
    assert m["p99_ms"] == pytest.approx(10.0) and m["slo_ratio"] == pytest.approx(0.5)
    assert m["throughput"] == pytest.approx(2 * 10.0 * 100.0 / 3.0)
    assert m["decision_ms"] == 0.5


def test_summary_confidence_interval() -> None:
    s = Summary.of([0.8, 0.9, 1.0])
    assert s.mean == pytest.approx(0.9)
    assert s.ci == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert Summary.of([0.5]).ci == 0.0


def test_oracle_is_never_beaten_on_success() -> None:
    predictor = tiny_predictor()
    policies = {**BASELINES, "learned": lambda seed: LearnedPolicy(predictor)}
    result = run_evaluation(SMALL, policies, CATALOG)  # type: ignore[arg-type]
    for load, _ in SMALL.loads:
        best = result.results["oracle"][load]["success"].mean
        assert result.results["oracle"][load]["regret"].mean == 0.0
        for name in policies:
            assert result.results[name][load]["success"].mean <= best, (name, load)
    data = result.to_dict()
    assert set(data["policies"]) == set(policies)
    assert data["policies"]["random"]["by_load"]["light"]["success"] is not None
