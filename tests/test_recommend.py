"""The learned decision with a scripted predictor: ranking per objective, rejections and their
reasons, confidence headroom, neighbours, corrections."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from edgetop.core.corrections import Corrections
from edgetop.core.placement import (
    Deployment,
    DeviceSlot,
    Fleet,
    Request,
    corunner,
    memory_need,
    offered_util,
    with_corunners,
)
from edgetop.core.recommend import (
    DecisionSettings,
    LearnedPolicy,
    observed_corrections,
    recommend,
)
from edgetop.models.catalog import load_catalog
from edgetop.models.schedfeatures import (
    DEVICE_COLUMNS,
    FEATURE_NAMES,
    CoRunner,
    DeviceFeatures,
    roofline_ms,
)

GIB = 1 << 30
CATALOG = load_catalog()
RESNET = CATALOG["resnet50"]
BERT = CATALOG["bert-large"]

COL_PEAK = FEATURE_NAMES.index("log_peak_tflops")
COL_UTIL = FEATURE_NAMES.index("util")
COL_GFLOPS = FEATURE_NAMES.index("log_gflops")


@dataclass(frozen=True)
class Pred:
    p50_ms: np.ndarray
    p99_ms: np.ndarray
    confidence: np.ndarray


class Scripted:
    """Latency looked up by a device's peak (its identity in these tests), scaled by the
    workload's GFLOPs relative to ResNet-50 and slowed by utilisation: p * (1 + 4 * util)."""

    def __init__(self, table: dict[float, tuple[float, float, float]]) -> None:
        self.table = table
        self.calls = 0
        self.rows = 0

    def predict(self, x: np.ndarray) -> Pred:
        self.calls += 1
        self.rows += len(x)
        p50, p99, conf = [], [], []
        for row in x:
            peak = round(math.exp(row[COL_PEAK]), 3)
            a, b, c = self.table[peak]
            scale = math.exp(row[COL_GFLOPS]) / RESNET.gflops * (1 + 4 * row[COL_UTIL])
            p50.append(a * scale)
            p99.append(b * scale)
            conf.append(c)
        return Pred(np.array(p50), np.array(p99), np.array(conf))


def device(peak: float, free_gib: float = 30.0, util: float = 0.0, kind: str = "gpu-server"):
    return DeviceFeatures(
        kind=kind,
        peak_tflops=peak,
        mem_bw_gbs=1000.0,
        mem_total_bytes=40 * GIB,
        mem_free_bytes=int(free_gib * GIB),
        util=util,
    )


def slot(name: str, peak: float, **kw) -> DeviceSlot:
    extra = {k: kw.pop(k) for k in ("deployments", "online", "reason", "busy_power_w") if k in kw}
    return DeviceSlot(name, "gpu0", device(peak, **kw), **extra)


def request(slo: float = 15.0, objective: str = "latency", **kw) -> Request:
    return Request("resnet50", RESNET, kw.pop("batch", 1), slo, objective=objective, **kw)


# Utilisation tests: no input transfer to subtract from the scripted latencies.
LOCAL = DecisionSettings(origin="local")

# Three devices told apart by their peak: fast with a long tail, steady, slow.
TABLE = {100.0: (2.0, 10.0, 0.9), 50.0: (3.0, 4.0, 0.9), 10.0: (8.0, 12.0, 0.9)}


def three(**kw) -> Fleet:
    return Fleet.build(
        [
            slot("tail", 100.0, busy_power_w=300.0),
            slot("steady", 50.0, busy_power_w=250.0),
            slot("slow", 10.0, busy_power_w=15.0),
        ]
    )


def hosts(rec) -> list[str]:
    return [c.host for c in rec.candidates]


def test_latency_ranks_by_predicted_p99() -> None:
    rec = recommend(request(), three(), Scripted(TABLE))
    assert hosts(rec) == ["steady", "tail", "slow"]
    assert rec.chosen is not None and rec.chosen.host == "steady"
    assert rec.chosen.p50_ms == pytest.approx(3.0)
    assert rec.chosen.p99_ms == pytest.approx(4.0)
    assert rec.chosen.confidence == pytest.approx(0.9)
    assert rec.chosen.reason.startswith("p99 4 ms predicted (SLO 15 ms), 0% busy")


def test_throughput_ranks_by_samples_per_second() -> None:
    rec = recommend(request(objective="throughput", batch=8), three(), Scripted(TABLE))
    # batch 8 scales the scripted latency by 8x, not the order: p50 2 < 3 < 8.
    assert hosts(rec)[0] == "tail"
    assert "samples/s" in rec.chosen.reason


def test_energy_ranks_by_joules_per_sample() -> None:
    rec = recommend(request(objective="energy"), three(), Scripted(TABLE))
    # 15 W x 8 ms = 0.12 J beats 300 W x 2 ms = 0.6 J and 250 W x 3 ms = 0.75 J.
    assert hosts(rec) == ["slow", "tail", "steady"]
    assert "mJ/sample" in rec.chosen.reason


def test_balance_ranks_by_utilisation_after_placement() -> None:
    fleet = Fleet.build(
        [slot("busy", 100.0, util=0.5), slot("idle", 50.0), slot("mid", 10.0, util=0.2)]
    )
    rec = recommend(request(objective="balance", qps=100.0), fleet, Scripted(TABLE), settings=LOCAL)
    # offered load: 100 qps x p50: idle 0.3 (3 ms), mid 0.2 + 100 x 14.4 ms = 1.64 -> too busy.
    assert hosts(rec) == ["idle"]
    assert {r.host for r in rec.rejected} == {"busy", "mid"}


def test_rejections_say_why() -> None:
    fleet = Fleet.build(
        [
            slot("full", 100.0, free_gib=0.2),
            slot("slow", 10.0),
            slot("gone", 50.0, online=False, reason="offline: connection refused"),
            slot("ok", 50.0),
        ]
    )
    rec = recommend(request(slo=10.0), fleet, Scripted(TABLE))
    assert hosts(rec) == ["ok"]
    why = {r.host: r.reason for r in rec.rejected}
    need = memory_need(RESNET, 1, "gpu-server") / GIB
    assert why["full"] == f"needs {need:.1f} GiB, 0.2 GiB free"
    assert why["slow"] == "predicted p99 12 ms > SLO 10 ms"
    assert why["gone"] == "offline: connection refused"


def test_hopeless_devices_are_ruled_out_before_predicting() -> None:
    fleet = Fleet.build([slot("slow", 10.0), slot("steady", 50.0)])
    predictor = Scripted(TABLE)
    rec = recommend(Request("bert-large", BERT, 32, 100.0), fleet, predictor)
    assert rec.chosen is None
    why = {r.host: r.reason for r in rec.rejected}
    # 246 GFLOPs x 32 at 10 TFLOPS is 788 ms, still 394 ms at twice the stated peak.
    assert why["slow"] == "needs over 394 ms per batch even at 2x its peak compute > SLO 100 ms"
    assert why["steady"] == "predicted p99 121 ms > SLO 100 ms"
    # Only "steady" was worth asking the network about (a closed loop: one row, no device time
    # to estimate).
    assert predictor.rows == 1


def test_a_large_fleet_scores_only_a_shortlist() -> None:
    fleet = three()
    predictor = Scripted(TABLE)
    rec = recommend(request(), fleet, predictor, settings=DecisionSettings(max_scored=2))
    assert predictor.rows == 2
    # The proxy (roofline time) prefers the higher peaks; the slow device is not scored.
    assert hosts(rec) == ["steady", "tail"]
    assert [(r.host, r.reason) for r in rec.rejected] == [
        ("slow", "not scored: 2 devices looked more promising")
    ]


def test_no_candidate_when_nothing_fits() -> None:
    fleet = Fleet.build([slot("slow", 10.0)])
    rec = recommend(request(slo=5.0), fleet, Scripted(TABLE))
    assert rec.chosen is None and rec.candidates == ()
    assert [r.reason for r in rec.rejected] == ["predicted p99 12 ms > SLO 5 ms"]


def test_low_confidence_needs_more_headroom() -> None:
    table = {100.0: (3.0, 9.0, 0.95), 50.0: (3.0, 9.0, 0.1)}
    fleet = Fleet.build([slot("sure", 100.0), slot("unsure", 50.0)])
    settings = DecisionSettings(margin=0.1, uncertainty=0.5)
    rec = recommend(request(slo=11.0), fleet, Scripted(table), settings=settings)
    # 9 x (1 + 0.1 + 0.05 x 0.5) = 10.1 <= 11; 9 x (1 + 0.1 + 0.9 x 0.5) = 14 > 11.
    assert hosts(rec) == ["sure"]
    (rejected,) = rec.rejected
    assert rejected.reason == (
        "predicted p99 9 ms too close to SLO 11 ms (55% headroom needed at confidence 0.10)"
    )
    # Once the model was seen running there, the observation stands for confidence.
    seen = Corrections().observe("resnet50", "unsure/gpu0", 9.0, 9.0)
    rec = recommend(request(slo=11.0), fleet, Scripted(table), seen, settings)
    assert hosts(rec) == ["sure", "unsure"]
    assert rec.candidates[1].confidence == pytest.approx(0.8)


def test_busy_device_rejected_by_offered_load() -> None:
    fleet = Fleet.build([slot("busy", 100.0, util=0.7), slot("free", 10.0)])
    # 200 qps at batch 1: busy gets 0.7 + 200 x 2 ms (its time alone there) -> over the cap.
    rec = recommend(request(slo=100.0, qps=200.0), fleet, Scripted(TABLE), settings=LOCAL)
    assert hosts(rec) == []
    why = {r.host: r.reason for r in rec.rejected}
    assert why["busy"].startswith("would be ") and "(cap 85%; 70% now)" in why["busy"]


def test_neighbour_that_would_miss_its_slo_rejects_the_device() -> None:
    table = {100.0: (2.0, 3.0, 0.9), 10.0: (8.0, 12.0, 0.9)}
    resident = Deployment(
        "d1", "bert-large", 1, BERT, qps=1.0, slo_ms=190.0, p50_ms=100.0, host="shared",
        device="gpu0",
    )  # fmt: skip
    fleet = Fleet.build(
        [slot("shared", 100.0, util=0.2, deployments=(resident,)), slot("alone", 10.0)]
    )
    # The newcomer is fastest on "shared" (p99 5.4 ms against 12) but adds 100 qps x 2 ms (its
    # p50 there alone) = 0.2 utilisation to d1's view of the device (0.2 less its own 0.1); BERT
    # (30x ResNet's GFLOPs) is then predicted at 3 x 30.1 x (1 + 4 x 0.3) = 199 ms.
    rec = recommend(request(slo=50.0, qps=100.0), fleet, Scripted(table), settings=LOCAL)
    assert hosts(rec) == ["alone"]
    (rejected,) = rec.rejected
    assert rejected.reason == "would push d1 (bert-large) to p99 199 ms > its SLO 190 ms"
    # Without the neighbour check the fast device wins.
    off = DecisionSettings(check_neighbours=False, origin="local")
    loose = recommend(request(slo=50.0, qps=100.0), fleet, Scripted(table), settings=off)
    assert hosts(loose) == ["shared", "alone"]


def test_a_shared_device_is_judged_by_the_requests_own_device_time() -> None:
    # "shared" runs at 60%: the request's p50 there is 2 ms x (1 + 4 x 0.6) = 6.8 ms, queueing
    # and contention included; alone it is 2 ms. Its busy share is 100 qps x 2 ms = 0.2, so the
    # device ends at 80% (under the 85% cap), not 0.6 + 0.68.
    fleet = Fleet.build([slot("shared", 100.0, util=0.6)])
    rec = recommend(request(slo=100.0, qps=100.0, objective="balance"), fleet,
                    Scripted(TABLE), settings=LOCAL)  # fmt: skip
    assert hosts(rec) == ["shared"]
    assert rec.candidates[0].reason.startswith("80% busy after, ")


def test_a_measured_neighbour_is_judged_from_its_measured_p99() -> None:
    table = {100.0: (2.0, 3.0, 0.9), 10.0: (8.0, 12.0, 0.9)}

    def fleet_with(p99_ms: float) -> Fleet:
        resident = Deployment(
            "d1", "bert-large", 1, BERT, qps=1.0, slo_ms=190.0, p50_ms=100.0, p99_ms=p99_ms,
            host="shared", device="gpu0",
        )  # fmt: skip
        return Fleet.build(
            [slot("shared", 100.0, util=0.2, deployments=(resident,)), slot("alone", 10.0)]
        )

    # The network puts d1 at 3 x 30.1 x (1 + 4 x 0.1) = 127 ms as it runs now (0.2 less its own
    # 0.1) and at 199 ms beside the newcomer (+0.2): 1.57x slower. Unanchored, 199 ms misses
    # the 190 ms SLO; from a measured 100 ms, d1 goes to 157 ms and keeps it.
    rec = recommend(request(slo=50.0, qps=100.0), fleet_with(100.0), Scripted(table),
                    settings=LOCAL)  # fmt: skip
    assert hosts(rec) == ["shared", "alone"]
    # From a measured 130 ms it would go to 204 ms.
    rec = recommend(request(slo=50.0, qps=100.0), fleet_with(130.0), Scripted(table),
                    settings=LOCAL)  # fmt: skip
    assert hosts(rec) == ["alone"]
    (rejected,) = rec.rejected
    assert rejected.reason == (
        "would push d1 (bert-large) from p99 130 ms to p99 204 ms > its SLO 190 ms"
    )


def test_corrections_shift_predictions_and_ranking() -> None:
    fleet = three()
    corrections = Corrections().observe("resnet50", "steady/gpu0", 4.0, 16.0)
    rec = recommend(request(slo=100.0), fleet, Scripted(TABLE), corrections)
    assert hosts(rec) == ["tail", "slow", "steady"]
    steady = rec.candidates[2]
    assert steady.p99_ms == pytest.approx(16.0)
    assert "x4.00 from observed latency" in steady.reason
    # Another model is untouched.
    other = Request("bert-large", BERT, 1, 1e6)
    assert recommend(other, fleet, Scripted(TABLE), corrections).candidates[0].host == "steady"


def test_corrections_ewma_in_log_space_and_bounded() -> None:
    c = Corrections(alpha=0.5)
    c1 = c.observe("m", "h/gpu0", 10.0, 20.0)
    assert c.factor("m", "h/gpu0") == 1.0  # pure: the old value is unchanged
    assert c1.factor("m", "h/gpu0") == pytest.approx(2.0)
    c2 = c1.observe("m", "h/gpu0", 10.0, 10.0)
    assert c2.factor("m", "h/gpu0") == pytest.approx(math.sqrt(2.0))  # geometric mean
    assert c2.factor("m", "h/gpu0", "p50") == 1.0  # the median is corrected apart
    c3 = c2.observe("m", "h/gpu0", 10.0, 5.0, "p50")
    assert c3.factor("m", "h/gpu0", "p50") == pytest.approx(0.5)
    assert c3.factor("m", "h/gpu0") == pytest.approx(math.sqrt(2.0))
    # A device never observed borrows from observed devices of its group (its profile).
    keys = {"a/gpu0": 0, "b/gpu0": 1, "c/gpu0": 2}
    groups = ("a100-40gb", "a100-40gb", "jetson-agx-xavier")
    seen = Corrections().observe("m", "a/gpu0", 10.0, 20.0)
    assert seen.factors("m", keys, 3, "p99", groups).tolist() == pytest.approx([2.0, 2.0, 1.0])
    assert seen.factors("m", keys, 3, "p99").tolist() == pytest.approx([2.0, 1.0, 1.0])
    assert seen.observed("m", keys, 3, groups).tolist() == [True, True, False]
    wild = Corrections().observe("m", "h/gpu0", 1.0, 1e6)
    assert wild.factor("m", "h/gpu0") == pytest.approx(4.0)
    assert Corrections().observe("m", "h/gpu0", 0.0, 5.0) == Corrections()


def test_corrections_per_batch_override_the_models_on_the_device() -> None:
    keys = {"a/gpu0": 0, "b/gpu0": 1, "c/gpu0": 2}
    groups = ("a100-40gb", "a100-40gb", "jetson-agx-xavier")
    c = Corrections().observe("m", "a/gpu0", 10.0, 20.0, batch=1)
    # a's batch-1 observation is also the model's: its group borrows that.
    assert c.factors("m", keys, 3, "p99", groups, batch=32).tolist() == pytest.approx(
        [2.0, 2.0, 1.0]
    )
    c = c.observe("m", "b/gpu0", 10.0, 40.0, batch=32)
    # At batch 32 b takes its own; a (never run at 32) the model's; c nothing.
    assert c.factors("m", keys, 3, "p99", groups, batch=32).tolist() == pytest.approx(
        [2.0, 4.0, 1.0]
    )
    assert c.factor("m", "b/gpu0", batch=32) == pytest.approx(4.0)
    # Over all batches b is the geometric mean of its one observation: the model's own.
    assert c.factor("m", "b/gpu0") == pytest.approx(4.0)
    c = c.observe("m", "b/gpu0", 10.0, 10.0, batch=1)
    assert c.factor("m", "b/gpu0", batch=1) == pytest.approx(1.0)
    assert c.factor("m", "b/gpu0", batch=32) == pytest.approx(4.0)
    assert c.factor("m", "b/gpu0", batch=8) == pytest.approx(4.0**0.7)  # EWMA, alpha 0.3
    assert c.observed("m", keys, 3, groups).tolist() == [True, True, False]


def test_an_unsure_miss_is_offered_as_a_trial_when_nothing_else_fits() -> None:
    # Predicted 12 ms against an SLO of 11: refused when sure; offered as a trial at
    # confidence 0.2 (spread 0.16: 10.2 ms one spread lower), marked as such.
    fleet = Fleet.build([slot("unsure", 50.0), slot("slow", 10.0)])
    table = {50.0: (10.0, 12.0, 0.2), 10.0: (30.0, 40.0, 0.2)}
    rec = recommend(request(slo=11.0), fleet, Scripted(table))
    assert hosts(rec) == ["unsure"]
    (trial,) = rec.candidates
    assert trial.trial and trial.p99_ms == pytest.approx(12.0)
    assert trial.reason.startswith("trial: p99 12 ms predicted > SLO 11 ms")
    assert "(confidence 0.20; 1 ensemble spread lower: 10 ms)" in trial.reason
    assert rec.to_dict()["candidates"][0]["trial"] is True
    assert [r.host for r in rec.rejected] == ["slow"]  # 40 ms is out of reach even so
    # Predicted within the SLO but short of the headroom: a trial at any confidence.
    close = {50.0: (90.0, 98.0, 0.9), 10.0: (300.0, 400.0, 0.9)}
    (trial,) = recommend(request(slo=100.0), fleet, Scripted(close)).candidates
    assert trial.trial and trial.reason.startswith(
        "trial: p99 98 ms predicted, within the SLO 100 ms but not with the 4% headroom asked "
        "at confidence 0.90; no device clears it"
    )
    # Sure of the miss, or trials turned off: refused.
    sure = {50.0: (10.0, 12.0, 0.9), 10.0: (30.0, 40.0, 0.9)}
    assert recommend(request(slo=11.0), fleet, Scripted(sure)).candidates == ()
    off = DecisionSettings(trial_sigmas=None)
    assert recommend(request(slo=11.0), fleet, Scripted(table), settings=off).candidates == ()
    # A device predicted to meet the SLO takes it; no trial beside it.
    both = Fleet.build([slot("unsure", 50.0), slot("fits", 100.0)])
    table[100.0] = (2.0, 5.0, 0.9)
    rec = recommend(request(slo=11.0), both, Scripted(table))
    assert hosts(rec) == ["fits"] and not rec.candidates[0].trial


def test_learned_policy_observes() -> None:
    policy = LearnedPolicy(Scripted(TABLE))
    policy.observe("resnet50", "steady/gpu0", 4.0, 40.0)
    assert policy.decide(request(), three()).chosen.host == "tail"


def test_offered_util_by_scenario() -> None:
    t = np.array([10.0])
    assert offered_util("server", 50.0, 5, t)[0] == pytest.approx(0.1)
    assert offered_util("server", None, 1, t)[0] == 0.0
    assert offered_util("offline", 50.0, 1, t)[0] == 0.0
    assert offered_util("singlestream", None, 1, t)[0] == 0.0


def test_recommendation_json_shape() -> None:
    fleet = Fleet.build([slot("ok", 50.0), slot("slow", 10.0)])
    data = recommend(request(slo=10.0), fleet, Scripted(TABLE)).to_dict()
    json.dumps(data)
    (cand,) = data["candidates"]
    assert set(cand) >= {"host", "device", "p50_ms", "p99_ms", "confidence", "reason"}
    assert data["rejected"] == [
        {"host": "slow", "device": "gpu0", "reason": "predicted p99 12 ms > SLO 10 ms"}
    ]
    assert data["chosen"] == "ok/gpu0"


def test_fleet_replace_rebuilds_only_changed_rows() -> None:
    fleet = three()
    changed = fleet.replace({1: slot("steady", 50.0, util=0.5, free_gib=1.0)})
    assert changed.util.tolist() == [0.0, 0.5, 0.0]
    assert changed.mem_free[1] == GIB
    np.testing.assert_array_equal(changed.matrix[[0, 2]], fleet.matrix[[0, 2]])
    assert Fleet.build(changed.slots).matrix.tolist() == changed.matrix.tolist()
    assert fleet.util.tolist() == [0.0, 0.0, 0.0]  # the old state is untouched
    # Idle, the changed device is the one it was: load and memory in use are not in it.
    assert changed.idle_index.tolist() == fleet.idle_index.tolist()
    np.testing.assert_array_equal(changed.idle_matrix, fleet.idle_matrix)


def test_devices_alike_share_one_idle_row() -> None:
    def hot(name: str) -> DeviceSlot:
        return DeviceSlot(name, "gpu0", dataclasses.replace(device(50.0), temp_c=85.0))

    fleet = Fleet.build([slot("a", 50.0), slot("b", 50.0, util=0.7, free_gib=1.0), hot("c")])
    assert fleet.idle_index[0] == fleet.idle_index[1]
    assert fleet.idle_index[2] != fleet.idle_index[0]  # 40 °C against 90 °C, rounded
    both_hot = fleet.replace({1: hot("b")})
    assert both_hot.idle_index[1] == both_hot.idle_index[2] != both_hot.idle_index[0]
    assert len(both_hot.idle_matrix) == 2


def test_top_limits_candidates_and_empty_fleet() -> None:
    fleet = Fleet.build([slot(f"h{i}", 50.0) for i in range(8)])
    rec = recommend(request(), fleet, Scripted(TABLE), settings=DecisionSettings(top=3))
    assert len(rec.candidates) == 3
    assert recommend(request(), Fleet.build([]), Scripted(TABLE)).chosen is None


# -- the co-runner columns (schema 3) in the rows the decision predicts ----------------------

COL_OPEN = FEATURE_NAMES.index("corunner_open_load")
COL_CLOSED = FEATURE_NAMES.index("corunner_closed")
COL_CLOSED_MS = FEATURE_NAMES.index("log1p_corunner_closed_ms")


class Recording(Scripted):
    """Scripted, keeping every row it was asked about."""

    def __init__(self, table: dict[float, tuple[float, float, float]]) -> None:
        super().__init__(table)
        self.seen: list[np.ndarray] = []

    def predict(self, x: np.ndarray) -> Pred:
        self.seen.extend(x)
        return super().predict(x)


def test_residents_rows_have_the_newcomer_and_the_others_as_co_runners() -> None:
    table = {100.0: (2.0, 3.0, 0.9)}
    server = Deployment("d1", "bert-large", 1, BERT, qps=1.0, slo_ms=1e4, p50_ms=100.0,
                        host="shared", device="gpu0")  # fmt: skip
    offline = Deployment("d2", "bert-large", 4, BERT, scenario="offline", slo_ms=1e4,
                         p50_ms=300.0, host="shared", device="gpu0")  # fmt: skip
    features = with_corunners(device(100.0), (server, offline), "local")
    fleet = Fleet.build([DeviceSlot("shared", "gpu0", features, deployments=(server, offline))])
    # The device row as built: 1 qps x 100 ms open, one closed loop of 300 ms.
    assert fleet.matrix[0, DEVICE_COLUMNS.index("corunner_open_load")] == pytest.approx(0.1)
    recorder = Recording(table)
    rec = recommend(request(slo=1e4, qps=50.0), fleet, recorder, settings=LOCAL)
    assert hosts(rec) == ["shared"]
    newcomer_rows, alone, d1_row, d2_row, d1_now, d2_now = recorder.seen
    # The request sees both residents.
    assert newcomer_rows[COL_OPEN] == pytest.approx(0.1)
    assert newcomer_rows[COL_CLOSED] == 1
    # Its predicted p50 on that device: 2 ms x (1 + 4 x util 0) (scripted, no transfer).
    new_load = 50.0 * 2.0 / 1000.0
    # d1 sees the offline loop and the newcomer, not itself ...
    assert d1_row[COL_OPEN] == pytest.approx(new_load)
    assert d1_row[COL_CLOSED] == 1 and d1_row[COL_CLOSED_MS] == pytest.approx(math.log1p(300.0))
    # ... d2 sees d1 and the newcomer, and no closed loop.
    assert d2_row[COL_OPEN] == pytest.approx(0.1 + new_load)
    assert d2_row[COL_CLOSED] == 0 and d2_row[COL_CLOSED_MS] == 0.0
    # As they run now (what a measured p99 anchors to), each sees only the other.
    assert (d1_now[COL_OPEN], d1_now[COL_CLOSED]) == (0.0, 1)
    assert (d2_now[COL_OPEN], d2_now[COL_CLOSED]) == (pytest.approx(0.1), 0)
    # The request alone (its device time): an idle device, no co-runners.
    assert (alone[COL_UTIL], alone[COL_OPEN], alone[COL_CLOSED]) == (0.0, 0.0, 0)


def test_observed_corrections_take_the_deployment_out_of_its_co_runners() -> None:
    table = {100.0: (2.0, 3.0, 0.9)}
    a = Deployment("a", "resnet50", 1, RESNET, qps=10.0, slo_ms=50.0, p50_ms=20.0, p99_ms=30.0,
                   host="h", device="gpu0")  # fmt: skip
    b = Deployment("b", "resnet50", 1, RESNET, scenario="offline", p50_ms=40.0, p99_ms=60.0,
                   host="h", device="gpu0")  # fmt: skip
    slot_ = DeviceSlot("h", "gpu0", with_corunners(device(100.0), (a, b), "local"),
                       deployments=(a, b))  # fmt: skip
    recorder = Recording(table)
    observed_corrections(Fleet.build([slot_]), recorder, origin="local")
    row_a, row_b = recorder.seen
    assert (row_a[COL_OPEN], row_a[COL_CLOSED]) == (0.0, 1)
    assert row_b[COL_OPEN] == pytest.approx(10.0 * 20.0 / 1000.0) and row_b[COL_CLOSED] == 0


def test_a_co_runner_without_measurements_is_estimated_by_its_roofline() -> None:
    fresh = Deployment("f", "resnet50", 8, RESNET, qps=100.0)
    (roofline,) = [roofline_ms(RESNET, 8, device(100.0))]
    assert corunner(fresh, device(100.0)).batch_ms == pytest.approx(roofline)
    measured = Deployment("m", "resnet50", 8, RESNET, qps=100.0, p50_ms=50.0)
    assert corunner(measured, device(100.0), "local").batch_ms == 50.0
    # A measured p50 below the input transfer never makes the batch faster than its roofline.
    assert corunner(
        Deployment("w", "resnet50", 8, RESNET, qps=100.0, p50_ms=1.0), device(100.0)
    ).batch_ms == pytest.approx(roofline)
    unknown = Deployment("u", "mystery", 1, None, scenario="offline", p50_ms=7.0)
    assert corunner(unknown, device(100.0)) == CoRunner("offline", 1, None, 7.0)
