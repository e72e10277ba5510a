"""The performance model's behaviour: contention, tails, power modes, heat, batches, overload,
memory, transfer; on every profile."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetop.core.perfmodel import (
    DEVICE_CLASSES,
    DeviceCondition,
    DeviceOutcome,
    Placement,
    device_features,
    evaluate,
    power_mode,
    service_ms,
    serving_precision,
    transfer_ms,
)
from edgetop.core.profiles import PROFILES, DeviceProfile
from edgetop.models.catalog import load_catalog

CATALOG = load_catalog()
RESNET, BERT, SSD, DLRM = (CATALOG[n] for n in ("resnet50", "bert-large", "ssd-resnet34", "dlrm"))
A100, XAVIER, NX, CPU = (
    PROFILES[n] for n in ("a100-40gb", "jetson-agx-xavier", "jetson-xavier-nx", "cpu-8c")
)
LOCAL = DeviceCondition(origin="local")
JETSONS = [p for p in PROFILES.values() if p.kind == "jetson"]


def alone(profile: DeviceProfile, placement: Placement, condition: DeviceCondition = LOCAL):
    return evaluate(profile, [placement], condition).performances[0]


def capacity(profile: DeviceProfile, workload, batch: int, mode: str | None = None) -> float:
    return batch * 1000.0 / service_ms(workload, batch, profile, mode)


# --- one placement -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_every_profile_serves_every_workload(profile: DeviceProfile) -> None:
    for workload in CATALOG.values():
        perf = alone(profile, Placement(workload, 1, "singlestream"))
        assert 0 < perf.p50_ms < perf.p90_ms < perf.p99_ms < math.inf
        assert perf.throughput > 0


def test_idle_singlestream_is_one_batch_back_to_back() -> None:
    perf = alone(A100, Placement(RESNET, 1, "singlestream"))
    assert perf.p50_ms == pytest.approx(perf.service_ms)
    assert perf.p90_ms == pytest.approx(perf.service_ms * DEVICE_CLASSES["gpu-server"].jitter_p90)
    assert perf.throughput == pytest.approx(1000.0 / perf.service_ms)
    assert perf.util == pytest.approx(1.0)  # a closed loop keeps the device busy
    assert perf.transfer_ms == 0.0 and perf.queue_ms == pytest.approx(0.0)


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_larger_batch_higher_latency_higher_throughput_saturating(profile: DeviceProfile) -> None:
    for workload in CATALOG.values():
        batches = (1, 2, 8, 32, 64)
        lat = [service_ms(workload, b, profile) for b in batches]
        thr = [b * 1000.0 / s for b, s in zip(batches, lat, strict=True)]
        assert lat == sorted(lat) and len(set(lat)) == len(lat)
        assert all(b >= a for a, b in itertools.pairwise(thr))
        # Saturation: doubling the batch helps less at 32 -> 64 than at 1 -> 2.
        assert thr[4] / thr[3] <= thr[1] / thr[0] + 1e-9


def test_offline_throughput_is_the_batch_rate() -> None:
    perf = alone(A100, Placement(RESNET, 64, "offline"))
    assert perf.throughput == pytest.approx(64 * 1000.0 / perf.service_ms)


def test_cpu_profile_serves_fp32() -> None:
    assert serving_precision(CPU) == ("fp32", CPU.fp32_tflops, 4)
    assert serving_precision(A100)[0] == "int8"
    assert serving_precision(PROFILES["v100-16gb"])[0] == "fp16"  # no INT8 tensor cores
    slow, fast = (
        alone(CPU, Placement(RESNET, 1, "singlestream")),
        alone(A100, Placement(RESNET, 1, "singlestream")),
    )
    assert slow.p50_ms > 10 * fast.p50_ms


# --- tails and queueing ------------------------------------------------------------------

SCENARIO_STRATEGY = st.sampled_from(["singlestream", "server", "offline"])


@st.composite
def placements(draw: st.DrawFn, profile: DeviceProfile) -> Placement:
    workload = draw(st.sampled_from(sorted(CATALOG)))
    batch = draw(st.sampled_from([1, 2, 8, 32]))
    scenario = draw(SCENARIO_STRATEGY)
    qps = None
    if scenario != "offline" and draw(st.booleans()):
        load = draw(st.floats(0.0, 1.6))
        qps = load * capacity(profile, CATALOG[workload], batch)
    return Placement(CATALOG[workload], batch, scenario, qps)


@st.composite
def states(draw: st.DrawFn) -> tuple[DeviceProfile, list[Placement], DeviceCondition]:
    profile = draw(st.sampled_from(list(PROFILES.values())))
    plist = draw(st.lists(placements(profile), min_size=1, max_size=4))
    mode = draw(st.sampled_from(profile.power_modes))
    ambient = draw(st.sampled_from([25.0, 40.0, 55.0]))
    temp = draw(st.sampled_from([None, None, 70.0, 95.0]))
    origin = draw(st.sampled_from(["edge", "cloud", "local"]))
    return profile, plist, DeviceCondition(mode, temp, ambient, origin)


@settings(max_examples=300, deadline=None)
@given(states())
def test_percentiles_are_ordered_and_finite(state) -> None:
    profile, plist, condition = state
    outcome = evaluate(profile, plist, condition)
    assert len(outcome.performances) == len(plist)
    for perf in outcome.performances:
        assert 0 < perf.p50_ms < perf.p90_ms < perf.p99_ms < math.inf
        assert perf.throughput >= 0 and perf.util >= 0
    assert 0 <= outcome.util <= 1 and 0 <= outcome.bw_util <= 1
    assert outcome.power_w <= power_mode(profile, condition.power_mode).budget_w + 1e-9


@settings(max_examples=400, deadline=None)
@given(states(), st.data())
def test_adding_a_placement_never_makes_another_faster(state, data) -> None:
    profile, plist, condition = state
    extra = data.draw(placements(profile))
    before = evaluate(profile, plist, condition)
    after = evaluate(profile, [*plist, extra], condition)
    for old, new in zip(before.performances, after.performances, strict=False):
        for field in ("p50_ms", "p90_ms", "p99_ms", "service_ms"):
            assert getattr(new, field) >= getattr(old, field) * (1 - 1e-12), field
        assert new.throughput <= old.throughput * (1 + 1e-12)
    assert after.power_w >= before.power_w - 1e-9
    assert after.mem_used_bytes > before.mem_used_bytes


def test_colocation_slows_the_existing_placement() -> None:
    server = Placement(RESNET, 8, "server", 0.3 * capacity(A100, RESNET, 8))
    alone_perf = evaluate(A100, [server]).performances[0]
    for neighbour in (
        Placement(BERT, 1, "server", 0.3 * capacity(A100, BERT, 1)),
        Placement(SSD, 8, "offline"),
        Placement(DLRM, 1, "singlestream"),
    ):
        shared = evaluate(A100, [server, neighbour]).performances[0]
        assert shared.p50_ms > alone_perf.p50_ms
        assert shared.p99_ms > alone_perf.p99_ms


def test_queueing_grows_with_load() -> None:
    p99 = [
        evaluate(A100, [Placement(RESNET, 8, "server", load * capacity(A100, RESNET, 8))], LOCAL)
        .performances[0]
        .p99_ms
        for load in (0.1, 0.5, 0.8, 0.95)
    ]
    assert p99 == sorted(p99) and p99[-1] > 2 * p99[0]


def test_overload_is_flagged_with_huge_but_finite_latencies() -> None:
    cap = capacity(XAVIER, RESNET, 8)
    ok = evaluate(XAVIER, [Placement(RESNET, 8, "server", 0.7 * cap)])
    over = evaluate(XAVIER, [Placement(RESNET, 8, "server", 2.0 * cap)])
    assert not ok.overloaded and over.overloaded
    assert over.open_util == pytest.approx(2.0, rel=0.05)
    perf = over.performances[0]
    assert 100 * ok.performances[0].p99_ms < perf.p99_ms < math.inf
    assert perf.throughput == pytest.approx(cap, rel=0.05)  # it serves what it can


def test_overload_counts_all_open_placements() -> None:
    half = [Placement(RESNET, 8, "server", 0.6 * capacity(A100, RESNET, 8))] * 2
    assert not evaluate(A100, half[:1]).overloaded
    assert evaluate(A100, half).overloaded


def test_offline_takes_what_is_left() -> None:
    server = Placement(RESNET, 8, "server", 0.3 * capacity(A100, RESNET, 8))
    outcome = evaluate(A100, [server, Placement(BERT, 32, "offline")])
    assert outcome.util == pytest.approx(1.0)
    assert outcome.performances[1].util == pytest.approx(1.0 - outcome.open_util)
    assert not outcome.overloaded
    alone_offline = evaluate(A100, [Placement(BERT, 32, "offline")]).performances[0]
    assert outcome.performances[1].throughput < 0.8 * alone_offline.throughput


def test_paced_singlestream_never_overloads_itself() -> None:
    fast = Placement(RESNET, 1, "singlestream", 1e6)  # far above what one query in flight allows
    outcome = evaluate(XAVIER, [fast])
    assert not outcome.overloaded
    perf = outcome.performances[0]
    assert perf.throughput == pytest.approx(1000.0 / perf.service_ms, rel=0.01)


def test_deterministic() -> None:
    plist = [Placement(RESNET, 8, "server", 500.0), Placement(BERT, 1, "singlestream")]
    assert evaluate(XAVIER, plist) == evaluate(XAVIER, plist)


def test_idle_device() -> None:
    outcome = evaluate(XAVIER, [])
    assert outcome.performances == () and outcome.util == 0.0
    assert outcome.power_w == pytest.approx(XAVIER.idle_power_w)
    assert outcome.mem_used_bytes == outcome.mem_idle_bytes > 0  # L4T in unified memory
    assert outcome.fits and not outcome.overloaded and not outcome.throttled


# --- power modes and heat ----------------------------------------------------------------


@pytest.mark.parametrize("profile", JETSONS, ids=[p.name for p in JETSONS])
def test_lower_power_mode_is_slower_and_draws_less(profile: DeviceProfile) -> None:
    load = [Placement(RESNET, 8, "server", 0.3 * capacity(profile, RESNET, 8))]
    top, low = profile.default_power_mode, profile.power_modes[-1]
    fast = evaluate(profile, load, DeviceCondition(power_mode=top))
    slow = evaluate(profile, load, DeviceCondition(power_mode=low))
    assert slow.performances[0].service_ms > fast.performances[0].service_ms
    assert slow.performances[0].p50_ms > fast.performances[0].p50_ms
    assert slow.power_w < fast.power_w
    assert service_ms(RESNET, 8, profile, low) > service_ms(RESNET, 8, profile)
    assert power_mode(profile, low).fraction < power_mode(profile, top).fraction == 1.0


def test_power_modes_parse() -> None:
    assert power_mode(XAVIER, "MAXN").budget_w == XAVIER.tdp_w
    assert power_mode(XAVIER, "15W").fraction == pytest.approx(0.5)
    assert power_mode(A100).name == "default"
    with pytest.raises(ValueError, match="no power mode '5W'"):
        power_mode(XAVIER, "5W")


def test_steady_temperature_rises_with_load() -> None:
    idle = evaluate(XAVIER, [])
    busy = evaluate(XAVIER, [Placement(RESNET, 32, "offline")])
    assert busy.temp_c > idle.temp_c > 25.0
    assert busy.power_w > idle.power_w
    assert not busy.throttled  # at 25 °C ambient a Jetson holds full load


def test_hot_ambient_throttles_and_slows() -> None:
    load = [Placement(RESNET, 32, "offline")]
    cool = evaluate(XAVIER, load, DeviceCondition(ambient_c=25.0))
    hot = evaluate(XAVIER, load, DeviceCondition(ambient_c=50.0))
    assert not cool.throttled and hot.throttled
    assert hot.temp_c == pytest.approx(DEVICE_CLASSES["jetson"].throttle_c)  # held there
    assert hot.performances[0].service_ms > cool.performances[0].service_ms
    assert hot.performances[0].throughput < cool.performances[0].throughput
    assert hot.power_w < cool.power_w


@pytest.mark.parametrize("profile", [A100, XAVIER, CPU], ids=lambda p: p.name)
def test_forced_temperature_hotter_is_slower(profile: DeviceProfile) -> None:
    load = [Placement(RESNET, 8, "server", 0.2 * capacity(profile, RESNET, 8))]
    temps = [40.0, 70.0, DEVICE_CLASSES[profile.kind].throttle_c + 2, 110.0]
    outcomes = [evaluate(profile, load, DeviceCondition(temp_c=t)) for t in temps]
    assert [o.temp_c for o in outcomes] == temps
    assert [o.throttled for o in outcomes] == [False, False, True, True]
    p50 = [o.performances[0].p50_ms for o in outcomes]
    assert p50[0] == p50[1] < p50[2] < p50[3]


# --- memory and transfer -----------------------------------------------------------------


def test_memory_not_fitting_is_flagged() -> None:
    small = evaluate(NX, [Placement(SSD, 1, "singlestream")])
    big = evaluate(NX, [Placement(SSD, 64, "offline")])
    assert small.fits and not big.fits
    cls = DEVICE_CLASSES["jetson"]
    assert small.mem_used_bytes == cls.idle_bytes + SSD.memory_bytes_at(1) + cls.runtime_bytes
    assert small.performances[0].memory_bytes == SSD.memory_bytes_at(1) + cls.runtime_bytes
    assert big.mem_total_bytes == NX.memory_bytes


def test_memory_adds_up_over_placements() -> None:
    one = evaluate(A100, [Placement(BERT, 8, "singlestream")])
    many = evaluate(A100, [Placement(BERT, 8, "singlestream")] * 40)
    assert one.fits and not many.fits


def test_cloud_origin_pays_the_wan_and_edge_devices_the_lan() -> None:
    # Queries from the edge: a cloud GPU is a WAN away, a Jetson a LAN hop.
    to_cloud = transfer_ms(RESNET, 8, A100, "edge")
    to_edge = transfer_ms(RESNET, 8, XAVIER, "edge")
    assert to_cloud > to_edge + 15.0
    # Queries from the cloud: the other way round.
    assert transfer_ms(RESNET, 8, A100, "cloud") < transfer_ms(RESNET, 8, XAVIER, "cloud")
    assert transfer_ms(RESNET, 8, A100, "local") == 0.0
    # Bigger inputs take longer; the transfer is part of the end-to-end latency.
    assert transfer_ms(SSD, 1, A100) > transfer_ms(RESNET, 1, A100)
    perf = alone(A100, Placement(RESNET, 8, "singlestream"), DeviceCondition())
    assert perf.transfer_ms == pytest.approx(to_cloud)
    assert perf.p50_ms == pytest.approx(perf.service_ms + to_cloud)


# --- what the scheduler sees -------------------------------------------------------------


def test_device_features() -> None:
    condition = DeviceCondition(power_mode="15W")
    outcome: DeviceOutcome = evaluate(XAVIER, [Placement(RESNET, 8, "server", 200.0)], condition)
    features = device_features(XAVIER, outcome, condition)
    assert features.kind == "jetson" and features.edge
    assert features.peak_tflops == XAVIER.int8_tops
    assert features.mem_total_bytes == XAVIER.memory_bytes
    assert features.mem_free_bytes == XAVIER.memory_bytes - outcome.mem_used_bytes
    assert features.util == outcome.util and features.colocated == 1
    assert features.temp_c == outcome.temp_c and features.throttled == outcome.throttled
    assert features.power_fraction == pytest.approx(0.5)
    server = device_features(A100, evaluate(A100, []))
    assert not server.edge and server.colocated == 0 and server.util == 0.0
    assert device_features(CPU, evaluate(CPU, [])).peak_tflops == CPU.fp32_tflops


def test_a_profile_without_calibration_uses_its_class() -> None:
    custom = dataclasses.replace(PROFILES["t4"], name="t4-in-a-closet")
    perf = alone(custom, Placement(RESNET, 1, "singlestream"))
    assert 0 < perf.p50_ms < math.inf


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        (Placement(RESNET, 0), "batch"),
        (Placement(RESNET, 2.5), "batch"),  # type: ignore[arg-type]
        (Placement(RESNET, 1, "batchy"), "scenario"),
        (Placement(RESNET, 1, "server", -1.0), "qps"),
        (Placement(RESNET, 1, "server", math.nan), "qps"),
    ],
)
def test_bad_placements_are_rejected(placement: Placement, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(A100, [placement])


def test_bad_condition_is_rejected() -> None:
    with pytest.raises(ValueError, match="origin"):
        evaluate(A100, [Placement(RESNET, 1)], DeviceCondition(origin="mars"))
    with pytest.raises(ValueError, match="power mode"):
        evaluate(A100, [Placement(RESNET, 1)], DeviceCondition(power_mode="MAXN"))
