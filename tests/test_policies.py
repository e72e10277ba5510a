"""Baselines: AMP4EC's formula on hand-computed values, its 0.8 skip, round-robin, seeded
random, least-loaded, and the oracle's use of the performance model's true latencies."""

from __future__ import annotations

import pytest

from edgetop.core.perfmodel import DeviceCondition, Placement, evaluate
from edgetop.core.placement import Deployment, DeviceSlot, Fleet, Request
from edgetop.core.policies import (
    LeastLoadedPolicy,
    OraclePolicy,
    RandomPolicy,
    RoundRobinPolicy,
    WeightedScorePolicy,
    amp4ec_score,
)
from edgetop.core.profiles import get_profile
from edgetop.models.catalog import load_catalog
from edgetop.models.schedfeatures import DeviceFeatures

GIB = 1 << 30
CATALOG = load_catalog()
RESNET = CATALOG["resnet50"]


def slot(name: str, *, util: float = 0.0, free: float = 30.0, total: float = 40.0, **kw):
    features = DeviceFeatures(
        kind="gpu-server",
        peak_tflops=100.0,
        mem_bw_gbs=1000.0,
        mem_total_bytes=int(total * GIB),
        mem_free_bytes=int(free * GIB),
        util=util,
    )
    return DeviceSlot(name, "gpu0", features, **kw)


def request(**kw) -> Request:
    return Request("resnet50", RESNET, kw.pop("batch", 1), kw.pop("slo", 15.0), **kw)


def dep(i: int, p50: float | None = None, **kw) -> Deployment:
    return Deployment(f"d{i}", "resnet50", 1, RESNET, p50_ms=p50, **kw)


def test_amp4ec_score_formula_by_hand() -> None:
    # 0.2 * 0.5 + 0.2 * (1 - 0.3) + 0.1 / (1 + 0.02) + 0.5 / (1 + 2 * 2)
    assert amp4ec_score(0.5, 0.3, 0.02, 2) == pytest.approx(0.1 + 0.14 + 0.1 / 1.02 + 0.1)
    assert amp4ec_score(1.0, 0.0, 0.0, 0) == pytest.approx(1.0)


def test_weighted_score_ranks_by_the_formula_and_skips_loaded_nodes() -> None:
    fleet = Fleet.build(
        [
            # resources 0.25, load 0.3, avg 20 ms = 0.02 s, 2 tasks
            slot("a", util=0.3, free=10.0, deployments=(dep(1, 10.0), dep(2, 30.0))),
            # resources 0.75, load 0.1, no tasks
            slot("b", util=0.1, free=30.0),
            # above 0.8 load: skipped whatever its score
            slot("c", util=0.85, free=40.0),
        ]
    )
    rec = WeightedScorePolicy().decide(request(), fleet)
    expected_a = amp4ec_score(0.25, 0.3, 0.02, 2)
    expected_b = amp4ec_score(0.75, 0.1, 0.0, 0)
    assert [c.host for c in rec.candidates] == ["b", "a"]
    assert rec.candidates[0].score == pytest.approx(expected_b)
    assert rec.candidates[1].score == pytest.approx(expected_a)
    assert rec.candidates[1].reason.startswith(f"score {expected_a:.3f}: 25% memory free")
    assert rec.candidates[0].p99_ms is None  # baselines do not predict latency
    (skipped,) = rec.rejected
    assert (skipped.host, skipped.reason) == ("c", "load 85% above 80% (AMP4EC skips it)")


def test_round_robin_cycles_over_admissible_devices() -> None:
    fleet = Fleet.build([slot("a"), slot("full", free=0.01), slot("b"), slot("c")])
    policy = RoundRobinPolicy()
    chosen = [policy.decide(request(), fleet).chosen.host for _ in range(5)]
    assert chosen == ["a", "b", "c", "a", "b"]


def test_random_is_seeded() -> None:
    fleet = Fleet.build([slot(f"h{i}") for i in range(10)])

    def draws(seed: int) -> list[str]:
        policy = RandomPolicy(seed)
        return [policy.decide(request(), fleet).chosen.host for _ in range(20)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    assert len(set(draws(3))) > 3


def test_least_loaded_and_offline_rejections() -> None:
    fleet = Fleet.build(
        [
            slot("busy", util=0.6),
            slot("gone", online=False, reason="offline: connection refused"),
            slot("idle-but-shared", util=0.1, deployments=(dep(1),)),
            slot("idle", util=0.1),
        ]
    )
    rec = LeastLoadedPolicy().decide(request(), fleet)
    assert [c.host for c in rec.candidates] == ["idle", "idle-but-shared", "busy"]
    assert [(r.host, r.reason) for r in rec.rejected] == [("gone", "offline: connection refused")]


def sim_slot(name: str, profile: str, deployments=()) -> DeviceSlot:
    p = get_profile(profile)
    placements = [Placement(d.workload, d.batch, d.scenario, d.qps) for d in deployments]
    outcome = evaluate(p, placements)
    from edgetop.core.perfmodel import device_features

    return DeviceSlot(
        name, "gpu0", device_features(p, outcome), profile=profile, deployments=tuple(deployments)
    )


def test_oracle_uses_true_latencies() -> None:
    fleet = Fleet.build([sim_slot("xavier", "jetson-agx-xavier"), sim_slot("a100", "a100-40gb")])
    for origin in ("edge", "local"):
        truth = {
            name: evaluate(
                get_profile(profile),
                [Placement(RESNET, 1, "server", 10.0)],
                DeviceCondition(origin=origin),
            ).performances[-1]
            for name, profile in (("xavier", "jetson-agx-xavier"), ("a100", "a100-40gb"))
        }
        rec = OraclePolicy(origin=origin).decide(request(slo=1000.0, qps=10.0), fleet)
        assert [c.host for c in rec.candidates] == sorted(truth, key=lambda h: truth[h].p99_ms)
        for c in rec.candidates:
            assert c.p99_ms == pytest.approx(truth[c.host].p99_ms)
            assert c.confidence == 1.0
    # From the edge the WAN's round trip to the cloud server decides; on the device, the A100.
    assert OraclePolicy(origin="local").decide(request(qps=10.0), fleet).chosen.host == "a100"


def test_oracle_rejects_what_truly_misses_the_slo() -> None:
    local = DeviceCondition(origin="local")
    placement = [Placement(RESNET, 8, "server", 10.0)]
    xavier = evaluate(get_profile("jetson-agx-xavier"), placement, local).performances[0]
    a100 = evaluate(get_profile("a100-40gb"), placement, local).performances[0]
    assert a100.p99_ms < xavier.p99_ms
    slo = (xavier.p99_ms + a100.p99_ms) / 2
    fleet = Fleet.build([sim_slot("xavier", "jetson-agx-xavier"), sim_slot("a100", "a100-40gb")])
    rec = OraclePolicy(origin="local").decide(request(batch=8, slo=slo, qps=10.0), fleet)
    assert [c.host for c in rec.candidates] == ["a100"]
    (rejected,) = rec.rejected
    assert rejected.host == "xavier" and rejected.reason.startswith("true p99 ")


def test_oracle_protects_residents() -> None:
    bert = CATALOG["bert-large"]
    p = get_profile("jetson-agx-xavier")
    alone = evaluate(p, [Placement(bert, 1, "server", 1.0)]).performances[0].p99_ms
    crowd = (
        evaluate(p, [Placement(bert, 1, "server", 1.0), Placement(RESNET, 8, "server", 200.0)])
        .performances[0]
        .p99_ms
    )
    assert crowd > alone
    resident = Deployment(
        "r1", "bert-large", 1, bert, qps=1.0, slo_ms=(alone + crowd) / 2, host="x", device="gpu0"
    )
    fleet = Fleet.build([sim_slot("x", "jetson-agx-xavier", [resident])])
    rec = OraclePolicy().decide(request(batch=8, slo=1e6, qps=200.0), fleet)
    assert rec.chosen is None
    assert rec.rejected[0].reason == "would push r1 (bert-large) past its SLO"
