"""Rebalance planning with a scripted predictor: violators fixed first, at most max_moves,
hysteresis against noise-sized gains, unusable targets avoided."""

from __future__ import annotations

import numpy as np
import pytest
from test_recommend import RESNET, Recording, Scripted, device

from edgetop.core.placement import Deployment, DeviceSlot, Fleet, with_corunners
from edgetop.core.rebalance import plan_rebalance
from edgetop.core.recommend import DecisionSettings
from edgetop.models.schedfeatures import FEATURE_NAMES

# fast: p99 3 ms; slow: p99 12 ms; nearly: p99 11 ms (resnet50, idle).
TABLE = {100.0: (2.0, 3.0, 0.9), 10.0: (8.0, 12.0, 0.9), 20.0: (7.0, 11.0, 0.9)}


def deployment(i: int, host: str, **kw) -> Deployment:
    return Deployment(f"d{i}", "resnet50", 1, RESNET, slo_ms=kw.pop("slo", 100.0), host=host,
                      device="gpu0", **kw)  # fmt: skip


def fleet_of(deps: list[Deployment], peaks: dict[str, float], **slot_kw) -> Fleet:
    slots = []
    for host, peak in peaks.items():
        on = tuple(d for d in deps if d.host == host)
        kw = slot_kw.get(host, {})
        slots.append(DeviceSlot(host, "gpu0", device(peak), deployments=on, **kw))
    return Fleet.build(slots)


def test_violator_moves_first_and_is_fixed() -> None:
    deps = [
        deployment(1, "slow", p50_ms=9.0, p99_ms=20.0, slo=15.0),  # observed over its SLO
        deployment(2, "slow"),
        deployment(3, "slow"),
    ]
    plan = plan_rebalance(deps, fleet_of(deps, {"slow": 10.0, "fast": 100.0}), Scripted(TABLE),
                          max_moves=1)  # fmt: skip
    assert plan.violations == ("d1",)
    (move,) = plan.moves
    assert (move.deployment, move.source, move.target) == ("d1", "slow/gpu0", "fast/gpu0")
    assert move.fixes_violation
    assert move.before_p99_ms == 20.0 and move.after_p99_ms == pytest.approx(3.0)
    assert move.gain == pytest.approx(17.0)
    assert move.reason.startswith("d1 (resnet50) is at p99 20 ms over its SLO 15 ms")
    assert plan.unresolved == ()


def test_at_most_max_moves() -> None:
    deps = [deployment(i, "slow") for i in range(6)]
    fleet = fleet_of(deps, {"slow": 10.0, "fast": 100.0})
    plan = plan_rebalance(deps, fleet, Scripted(TABLE), max_moves=2)
    assert len(plan.moves) == 2
    assert all(m.target == "fast/gpu0" and m.gain == pytest.approx(9.0) for m in plan.moves)
    assert len({m.deployment for m in plan.moves}) == 2
    assert plan.gain == pytest.approx(18.0)
    assert len(plan_rebalance(deps, fleet, Scripted(TABLE), max_moves=10).moves) == 6


def test_hysteresis_ignores_small_gains() -> None:
    deps = [deployment(1, "slow")]
    fleet = fleet_of(deps, {"slow": 10.0, "nearly": 20.0})
    # 12 -> 11 ms is 8%: under the default 20% bar.
    assert plan_rebalance(deps, fleet, Scripted(TABLE)).moves == ()
    plan = plan_rebalance(deps, fleet, Scripted(TABLE), min_gain_fraction=0.05, min_gain_ms=0.5)
    assert [m.target for m in plan.moves] == ["nearly/gpu0"]
    # A bar in ms applies too.
    assert plan_rebalance(deps, fleet, Scripted(TABLE), min_gain_fraction=0.05,
                          min_gain_ms=2.0).moves == ()  # fmt: skip


def test_unusable_targets_are_avoided() -> None:
    deps = [deployment(1, "slow", p50_ms=9.0, p99_ms=20.0, slo=15.0)]
    fleet = fleet_of(
        deps,
        {"slow": 10.0, "fast": 100.0},
        fast={"online": False, "reason": "offline: connection refused"},
    )
    plan = plan_rebalance(deps, fleet, Scripted(TABLE))
    assert plan.moves == ()
    assert plan.unresolved == ("d1",)


def test_nothing_to_do_on_a_balanced_fleet() -> None:
    deps = [deployment(1, "fast")]
    plan = plan_rebalance(deps, fleet_of(deps, {"slow": 10.0, "fast": 100.0}), Scripted(TABLE))
    assert plan.moves == () and plan.violations == () and plan.considered == 1


def test_after_a_move_both_devices_rows_have_their_new_co_runners() -> None:
    """The source loses the moved deployment from its co-runner columns, the target gains it
    at its predicted p50 there; a third deployment that stays keeps the source's columns."""
    deps = [
        deployment(1, "slow", p50_ms=9.0, p99_ms=20.0, slo=15.0, qps=100.0),  # moves
        deployment(2, "slow", p50_ms=8.0, p99_ms=12.0, scenario="offline"),  # stays
    ]
    slots = [
        DeviceSlot(host, "gpu0", with_corunners(device(peak), on, "local"), deployments=on)
        for host, peak in (("slow", 10.0), ("fast", 100.0))
        for on in [tuple(d for d in deps if d.host == host)]
    ]
    recorder = Recording(TABLE)
    local = DecisionSettings(origin="local")
    plan = plan_rebalance(deps, Fleet.build(slots), recorder, max_moves=1, settings=local)
    assert [m.deployment for m in plan.moves] == ["d1"]
    # The last prediction: every (workload, batch, rate) group on the two changed devices.
    col = {n: FEATURE_NAMES.index(n) for n in ("corunner_open_load", "corunner_closed")}
    peak = FEATURE_NAMES.index("log_peak_tflops")
    after = recorder.seen[-4:]
    by_device = {round(float(np.exp(r[peak]))): r for r in after}
    slow, fast = by_device[10], by_device[100]
    assert (slow[col["corunner_open_load"]], slow[col["corunner_closed"]]) == (0.0, 1)
    # d1 at "fast": 100 qps x its predicted p50 there (2 ms, scripted) = 0.2 open load.
    assert fast[col["corunner_open_load"]] == pytest.approx(0.2)
    assert fast[col["corunner_closed"]] == 0


def test_a_move_is_judged_by_its_device_time_at_the_target() -> None:
    """The target at 60%: the deployment's p50 there is 2 ms x (1 + 4 x 0.6) = 6.8 ms, its
    queueing and contention included, and 100 qps of that would take the device to 128%; its
    device time alone there is 2 ms, so it ends at 80%, under the cap, and the move is made."""
    deps = [deployment(1, "slow", qps=100.0, p50_ms=9.0, p99_ms=20.0, slo=15.0)]
    fleet = Fleet.build(
        [
            DeviceSlot("slow", "gpu0", device(10.0), deployments=tuple(deps)),
            DeviceSlot("busy", "gpu0", device(100.0, util=0.6)),
        ]
    )
    plan = plan_rebalance(deps, fleet, Scripted(TABLE), settings=DecisionSettings(origin="local"))
    assert [(m.deployment, m.target) for m in plan.moves] == [("d1", "busy/gpu0")]
