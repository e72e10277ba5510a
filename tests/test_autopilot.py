"""The auto-pilot's pure part: triggers, guardrails, rollback and no ping-pong, on hand-built
snapshots and deployments."""

from __future__ import annotations

from collections.abc import Sequence

from edgetop.core.advisor import PlannedMove
from edgetop.core.autopilot import (
    AutoMemory,
    AutoSettings,
    Trigger,
    assess,
    avoid,
    fallback_target,
    guard,
    record_move,
    triggers,
    unsafe,
)
from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.remote.link import HostStatus
from edgetop.remote.protocol import DeploymentReading, DeviceReading

GIB = 1 << 30
S = AutoSettings(host_lost_grace_s=10.0, persist_rounds=3, max_moves_per_minute=2)
A, B, C = Where("a", "gpu0"), Where("b", "gpu0"), Where("c", "gpu0")


def gpu(
    util: float = 10.0,
    used: float = 0.2,
    temp: float = 50.0,
    throttle: tuple[str, ...] = (),
) -> DeviceReading:
    return DeviceReading(
        "gpu0",
        "gpu",
        util=util,
        mem_used=int(used * 40 * GIB),
        mem_total=40 * GIB,
        temp_c=temp,
        throttle=throttle,
    )


def worker(wid: str, p99: float = 10.0, t: float = 0.0) -> DeploymentReading:
    return DeploymentReading(wid, "running", "resnet50", 8, "server", 100.0, p99_ms=p99, t=t)


def host(
    name: str,
    *,
    up: bool = True,
    dev: DeviceReading | None = None,
    workers: Sequence[DeploymentReading] = (),
) -> HostView:
    return HostView(
        name,
        "sim",
        "gpu-server",
        1.0,
        status=HostStatus.ONLINE if up else HostStatus.OFFLINE,
        reason=None if up else "connection lost",
        samples=1,
        devices=(DeviceReading("cpu", "cpu", util=5.0), dev or gpu()),
        deployments=tuple(workers),
    )


def fleet(*hosts: HostView) -> FleetSnapshot:
    return FleetSnapshot(tuple(hosts))


def dep(
    did: str = "r-1", where: Where = A, status: Status = Status.RUNNING, launch: int = 1
) -> Deployment:
    return Deployment(
        did, "resnet50", 8, 100.0, status=status, where=where, worker=f"{did}.{launch}"
    )


def kinds(ts: Sequence[Trigger]) -> list[tuple[str, str]]:
    return [(t.deployment, t.kind) for t in ts]


def rounds(
    ds: Sequence[Deployment],
    snapshots: Sequence[FleetSnapshot],
    memory: AutoMemory | None = None,
    start: float = 0.0,
    plan: Sequence[PlannedMove] = (),
) -> tuple[list[list[Trigger]], AutoMemory]:
    """Run `assess` over consecutive rounds one second apart; the ready triggers per round."""
    out = []
    memory = memory or AutoMemory()
    for i, snap in enumerate(snapshots):
        a = assess(ds, snap, memory, start + i, S, plan)
        memory = a.memory
        out.append([t for t in a.triggers if t.ready])
    return out, memory


# -- triggers ------------------------------------------------------------------------------


def test_a_healthy_fleet_triggers_nothing() -> None:
    snap = fleet(host("a", workers=[worker("r-1.1")]), host("b"))
    assert triggers([dep()], snap, AutoMemory(), 0.0, S) == []


def test_a_host_silent_past_the_grace_period_is_lost() -> None:
    d = dep()
    down = fleet(host("a", up=False), host("b"))
    first = assess([d], down, AutoMemory(), 100.0, S)
    assert first.triggers == () and first.memory.down_since == {"a": 100.0}
    early = assess([d], down, first.memory, 105.0, S)
    assert early.triggers == ()
    late = assess([d], down, early.memory, 110.0, S)
    (t,) = late.triggers
    assert (t.kind, t.ready, t.source) == ("host-lost", True, A)
    assert "silent for 10 s" in t.reason and "connection lost" in t.reason
    # Back within the grace period: the clock starts again next time.
    back = assess([d], fleet(host("a"), host("b")), early.memory, 106.0, S)
    assert back.triggers == () and back.memory.down_since == {}


def test_a_failed_deployment_is_moved_only_when_its_host_is_lost() -> None:
    failed = dep(status=Status.FAILED)
    down = fleet(host("a", up=False), host("b"))
    memory = AutoMemory(down_since={"a": 0.0})
    assert kinds(triggers([failed], down, memory, 60.0, S)) == [("r-1", "host-lost")]
    # Its worker failed on a host that answers: the place is not the problem.
    assert triggers([failed], fleet(host("a"), host("b")), AutoMemory(), 60.0, S) == []


def test_a_degraded_deployment_triggers_at_once() -> None:
    d = dep(status=Status.DEGRADED)
    (t,) = triggers([d], fleet(host("a", workers=[worker("r-1.1", 150.0)])), AutoMemory(), 0, S)
    assert t.kind == "slo" and t.ready


def test_memory_pressure_must_persist_and_a_blip_resets_it() -> None:
    d = dep()
    full = fleet(host("a", dev=gpu(used=0.99)))
    fine = fleet(host("a"))
    per_round, _ = rounds([d], [full, full, fine, full, full, full])
    assert [kinds(r) for r in per_round] == [[], [], [], [], [], [("r-1", "memory")]]
    assert "1.0% of gpu0 memory free" in per_round[-1][0].reason


def test_thermal_throttling_and_temperature_trigger_but_idle_does_not() -> None:
    d = dep()
    for dev in (gpu(throttle=("hw_thermal_slowdown",)), gpu(temp=91.0)):
        per_round, _ = rounds([d], [fleet(host("a", dev=dev))] * 3)
        assert kinds(per_round[-1]) == [("r-1", "thermal")]
    per_round, _ = rounds([d], [fleet(host("a", dev=gpu(throttle=("gpu_idle",))))] * 3)
    assert per_round[-1] == []


def move(gain: float, before: float = 20.0, fixes: bool = False) -> PlannedMove:
    return PlannedMove("r-1", "resnet50", A, B, gain, before, before - gain, fixes, "less busy")


def test_a_better_placement_needs_a_real_gain_that_persists() -> None:
    d = dep()
    snap = fleet(host("a"), host("b"))
    small, _ = rounds([d], [snap] * 3, plan=[move(gain=2.0)])  # 10% of 20 ms: not enough
    assert small[-1] == []
    big, _ = rounds([d], [snap] * 3, plan=[move(gain=8.0)])
    assert [kinds(r) for r in big] == [[], [], [("r-1", "better-placement")]]
    (t,) = big[-1]
    assert t.target == B and t.detail["predicted_gain"] == 8.0
    fixes, _ = rounds([d], [snap] * 3, plan=[move(gain=0.5, fixes=True)])
    assert kinds(fixes[-1]) == [("r-1", "better-placement")]
    off = AutoSettings(rebalance=False)
    assert assess([d], snap, AutoMemory(), 0, off, [move(gain=8.0)]).triggers == ()


def test_deployments_not_running_are_left_alone() -> None:
    snap = fleet(host("a", up=False, dev=gpu(temp=99.0)))
    memory = AutoMemory(down_since={"a": 0.0})
    for status in (Status.STARTING, Status.MOVING, Status.STOPPED):
        assert triggers([dep(status=status)], snap, memory, 60.0, S) == []


# -- guardrails ----------------------------------------------------------------------------


def trig(did: str, kind: str, source: Where = A) -> Trigger:
    return Trigger(did, kind, "why", source)


def test_one_trigger_per_deployment_the_most_urgent() -> None:
    (v,) = guard([trig("r-1", "thermal"), trig("r-1", "host-lost")], AutoMemory(), 0.0, S)
    assert v.trigger.kind == "host-lost" and v.allowed


def test_not_ready_triggers_are_not_acted_on() -> None:
    waiting = Trigger("r-1", "memory", "why", A, rounds=1, ready=False)
    assert guard([waiting], AutoMemory(), 0.0, S) == ()


def test_the_rate_limit_is_a_sliding_window() -> None:
    found = [trig(f"r-{i}", "host-lost") for i in range(1, 4)]
    allowed = [v.allowed for v in guard(found, AutoMemory(), 0.0, S)]
    assert allowed == [True, True, False]
    memory = AutoMemory()
    for i, at in ((7, 0.0), (8, 30.0)):
        memory = record_move(memory, trig(f"x-{i}", "slo"), B, at, moved=True)
    held = guard(found, memory, 59.0, S)
    assert [v.guardrail for v in held] == ["rate-limit"] * 3
    assert "2 moves in the last 60 s" in (held[0].why or "")
    assert [v.allowed for v in guard(found, memory, 61.0, S)] == [True, False, False]
    assert [v.allowed for v in guard(found, memory, 91.0, S)] == [True, True, False]


def test_cooldown_keeps_a_moved_deployment_put_except_for_urgent_triggers() -> None:
    memory = record_move(AutoMemory(), trig("r-1", "thermal"), B, 0.0, moved=True)
    (v,) = guard([trig("r-1", "slo", B)], memory, 100.0, S)
    assert not v.allowed and v.guardrail == "cooldown" and "moved 100 s ago" in (v.why or "")
    (v,) = guard([trig("r-1", "host-lost", B)], memory, 100.0, S)
    assert v.allowed
    (v,) = guard([trig("r-1", "slo", B)], memory, S.cooldown_s + 1, S)
    assert v.allowed


def test_hysteresis_a_flapping_condition_never_moves() -> None:
    d = dep()
    hot, cool = fleet(host("a", dev=gpu(temp=95.0))), fleet(host("a"))
    per_round, _ = rounds([d], [hot, hot, cool] * 4)
    assert all(r == [] for r in per_round)


def test_a_move_resets_the_deployments_streaks() -> None:
    d = dep()
    hot = fleet(host("a", dev=gpu(temp=95.0)))
    _, memory = rounds([d], [hot, hot])
    memory = record_move(memory, trig("r-1", "slo"), B, 2.0, moved=False)
    assert memory.streaks == {}


# -- rollback and ping-pong ----------------------------------------------------------------


def moved_to_b(before: float = 10.0) -> tuple[Deployment, AutoMemory]:
    """r-1 moved by the auto-pilot from A to B at t=0 (its p99 was `before` on A)."""
    memory = record_move(AutoMemory(), trig("r-1", "thermal"), B, 0.0, True, before)
    return dep(where=B, launch=2), memory


def on_b(p99: float, t: float) -> FleetSnapshot:
    return fleet(host("a"), host("b", workers=[worker("r-1.2", p99, t)]))


def test_a_move_that_made_things_worse_is_rolled_back() -> None:
    d, memory = moved_to_b(before=10.0)
    # The same window read twice counts once: three distinct windows are needed.
    snaps = [on_b(30.0, 1.0), on_b(30.0, 1.0), on_b(31.0, 2.0), on_b(29.0, 3.0)]
    per_round, memory = rounds([d], snaps, memory, start=10.0)
    assert [kinds(r) for r in per_round] == [[], [], [], [("r-1", "rollback")]]
    (t,) = per_round[-1]
    assert t.source == B and t.target == A
    assert t.detail == {"before_p99_ms": 10.0, "after_p99_ms": 30.0}
    assert "worse by more than 20%" in t.reason
    (v,) = guard([t], memory, 13.0, S)  # within the cooldown, still allowed
    assert v.allowed
    # Judged once: the next windows do not roll it back again.
    again, _ = rounds([d], [on_b(40.0, 4.0), on_b(40.0, 5.0), on_b(40.0, 6.0)], memory, 14.0)
    assert all(r == [] for r in again)


def test_a_move_within_the_margin_stays() -> None:
    d, memory = moved_to_b(before=10.0)
    snaps = [on_b(11.0, 1.0), on_b(11.5, 2.0), on_b(11.9, 3.0)]
    per_round, memory = rounds([d], snaps, memory, start=10.0)
    assert all(r == [] for r in per_round)
    assert memory.moves[-1].judged and memory.moves[-1].after_p99_ms == (11.0, 11.5, 11.9)


def test_no_ping_pong_after_a_rollback() -> None:
    _, memory = moved_to_b(before=10.0)
    rollback = Trigger("r-1", "rollback", "worse", B, target=A)
    memory = record_move(memory, rollback, A, 20.0, True, 30.0)
    assert all(m.judged for m in memory.moves)  # a rollback is never rolled back
    # Back on A, worse than on B: still no move back to B.
    back = dep(where=A, launch=3)
    snaps = [fleet(host("a", workers=[worker("r-1.3", 90.0, t)]), host("b")) for t in (1, 2, 3)]
    per_round, _ = rounds([back], snaps, memory, start=21.0)
    assert all(r == [] for r in per_round)
    # B (the place it was rolled back from) is avoided for new targets.
    assert B in avoid("r-1", memory, 100.0, S)
    assert B not in avoid("r-1", memory, 20.0 + S.pingpong_s, S)


def test_a_failed_attempts_target_is_avoided_for_the_cooldown() -> None:
    memory = record_move(AutoMemory(), trig("r-1", "host-lost"), B, 0.0, moved=False)
    assert avoid("r-1", memory, 10.0, S) == {B}
    assert avoid("r-1", memory, S.cooldown_s + 1, S) == frozenset()
    assert avoid("r-2", memory, 10.0, S) == frozenset()


# -- targets without a prediction ----------------------------------------------------------


def test_fallback_picks_the_least_busy_healthy_device_of_the_same_sort() -> None:
    d = dep()
    snap = fleet(
        host("a", up=False),
        host("b", dev=gpu(util=60.0)),
        host("c", dev=gpu(util=10.0, temp=95.0)),  # hot
        host("d", dev=gpu(util=30.0)),
        host("e", dev=gpu(util=5.0, used=0.99)),  # full
    )
    assert fallback_target(d, snap, frozenset(), S) == Where("d", "gpu0")
    assert fallback_target(d, snap, frozenset({Where("d", "gpu0")}), S) == B
    on_cpu = dep(where=Where("a", "cpu"))
    assert fallback_target(on_cpu, snap, frozenset(), S) == Where("b", "cpu")
    assert unsafe(snap, Where("a", "gpu0"), S) == "host a is not answering"
    assert unsafe(snap, Where("c", "gpu0"), S) == "gpu0 at 95 C (limit 85 C)"
    assert unsafe(snap, Where("zz", "gpu0"), S) == "host zz is not in the fleet"
