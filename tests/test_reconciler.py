"""The reconciler's rules on plain FleetSnapshot values: adopt vs start, no duplicates,
degraded with hysteresis, lost hosts, moves finished and aborted, leftovers stopped."""

from __future__ import annotations

from dataclasses import replace

from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.core.reconciler import (
    AbortMove,
    Adopt,
    FinishMove,
    MarkDegraded,
    MarkFailed,
    MarkRunning,
    Plan,
    ReconcileMemory,
    ReconcileSettings,
    Start,
    Stop,
    next_worker,
    owner_of,
    reconcile,
    worker_id,
)
from edgetop.remote.link import HostStatus
from edgetop.remote.protocol import DeploymentReading

FRESH = ReconcileMemory()
SETTINGS = ReconcileSettings(degrade_after=3, recover_after=2, offline_grace_s=30.0)


def dep(
    status: Status = Status.RUNNING,
    host: str = "a",
    worker: str | None = "resnet50-1.1",
    **changes: object,
) -> Deployment:
    d = Deployment(
        "resnet50-1", "resnet50", 8, 20.0, status=status, where=Where(host, "gpu0"), worker=worker
    )
    return replace(d, **changes)


def reading(
    worker: str = "resnet50-1.1",
    state: str = "running",
    p99: float | None = 10.0,
    t: float | None = 1.0,
    **more: object,
) -> DeploymentReading:
    return DeploymentReading(worker, state, "resnet50", 8, p50_ms=p99, p99_ms=p99, t=t, **more)  # type: ignore[arg-type]


def host(
    name: str = "a",
    *readings: DeploymentReading,
    transport: str = "ssh",
    status: HostStatus = HostStatus.ONLINE,
    errors: dict[str, str] | None = None,
) -> HostView:
    samples = 1 if status is HostStatus.ONLINE else 0
    return HostView(
        name,
        transport,
        "gpu-server",
        1.0,
        status=status,
        deployments=readings,
        samples=samples,
        reason=None if samples else "connection refused",
        errors=errors or {},
    )


def fleet(*hosts: HostView) -> FleetSnapshot:
    return FleetSnapshot(hosts)


def plan(
    desired: tuple[Deployment, ...],
    snapshot: FleetSnapshot,
    memory: ReconcileMemory = FRESH,
    now: float = 100.0,
    **kw: object,
) -> Plan:
    return reconcile(desired, snapshot, memory, now, settings=SETTINGS, **kw)  # type: ignore[arg-type]


def test_worker_ids_name_their_deployment() -> None:
    assert worker_id("resnet50-1") == "resnet50-1.1"
    assert owner_of("resnet50-1.2") == "resnet50-1"
    assert owner_of("profile-ab12cd") is None and owner_of("tiny-1") is None
    assert next_worker(dep(worker="resnet50-1.1")) == "resnet50-1.2"
    assert next_worker(dep(worker=None)) == "resnet50-1.1"


def test_a_starting_deployment_whose_worker_runs_is_adopted_not_started_again() -> None:
    d = dep(Status.STARTING)
    actions = plan((d,), fleet(host("a", reading()))).actions
    assert actions == (Adopt(d, "resnet50-1.1", reading()),)


def test_restart_with_workers_already_reported_starts_nothing() -> None:
    """A new edgetop process: same state, the hosts report the workers: no duplicates."""
    running = dep(Status.RUNNING)
    other = dep(Status.DEGRADED, host="b", id="bert-1", worker="bert-1.3", model="bert-base")
    snap = fleet(host("a", reading()), host("b", reading("bert-1.3", p99=15.0)))
    first = plan((running, other), snap)
    second = plan((running, other), snap, first.memory)  # and another round
    for p in (first, second):
        assert not [a for a in p.actions if isinstance(a, Start | Stop | Adopt)]


def test_a_sim_host_places_what_the_state_says_again() -> None:
    d = dep(Status.RUNNING)
    (action,) = plan((d,), fleet(host("a", transport="sim"))).actions
    assert action == Start(d, Where("a", "gpu0"), "resnet50-1.1")


def test_a_real_worker_that_vanished_fails_the_deployment() -> None:
    d = dep(Status.RUNNING)
    (action,) = plan((d,), fleet(host("a"))).actions
    assert isinstance(action, MarkFailed) and "no longer on a" in action.reason
    # ... unless the agent could not list the workers this round.
    assert plan((d,), fleet(host("a", errors={"deployments": "permission denied"}))).actions == ()


def test_a_failed_worker_fails_the_deployment_with_its_reason() -> None:
    d = dep(Status.RUNNING)
    snap = fleet(host("a", reading(state="failed", p99=None, reason="CUDA out of memory")))
    (action,) = plan((d,), snap).actions
    assert isinstance(action, MarkFailed) and "CUDA out of memory" in action.reason


def test_a_starting_deployment_not_seen_is_waited_for_then_started() -> None:
    d = dep(Status.STARTING, updated=100.0)
    assert plan((d,), fleet(host("a")), now=110.0).actions == ()
    late = plan((d,), fleet(host("a")), now=100.0 + SETTINGS.start_grace_s).actions
    assert late == (Start(d, Where("a", "gpu0"), "resnet50-1.1"),)


def test_a_host_silent_past_the_grace_period_fails_its_deployments() -> None:
    d = dep(Status.RUNNING)
    offline = fleet(host("a", status=HostStatus.OFFLINE))
    first = plan((d,), offline, now=100.0)
    assert first.actions == ()  # a short outage is waited out
    assert first.memory.down_since == {"a": 100.0}
    still = plan((d,), offline, first.memory, now=120.0)
    assert still.actions == () and still.memory.down_since == {"a": 100.0}
    (action,) = plan((d,), offline, still.memory, now=131.0).actions
    assert isinstance(action, MarkFailed) and "unreachable for 31 s" in action.reason
    back = plan((d,), fleet(host("a", reading())), still.memory, now=140.0)
    assert back.memory.down_since == {}


def test_a_failed_deployment_whose_worker_is_back_is_adopted() -> None:
    d = dep(Status.FAILED)
    (action,) = plan((d,), fleet(host("a", reading()))).actions
    assert isinstance(action, Adopt)


def rounds(
    d: Deployment, p99s: list[float], memory: ReconcileMemory = FRESH
) -> tuple[list[tuple[object, ...]], ReconcileMemory]:
    """One round per p99 value (a new window each), applying status marks like the
    orchestrator does."""
    out = []
    for i, p99 in enumerate(p99s):
        p = plan((d,), fleet(host("a", reading(p99=p99, t=float(i)))), memory)
        memory = p.memory
        out.append(p.actions)
        for a in p.actions:
            if isinstance(a, MarkDegraded):
                d = replace(d, status=Status.DEGRADED)
            elif isinstance(a, MarkRunning):
                d = replace(d, status=Status.RUNNING)
    return out, memory


def test_degraded_after_n_violating_windows_and_back_only_with_margin() -> None:
    d = dep(Status.RUNNING)  # SLO 20 ms
    seen, _ = rounds(d, [25, 25, 10, 25, 25, 25, 19.5, 19.5, 19.5, 17, 17])
    kinds = [tuple(type(a).__name__ for a in acts) for acts in seen]
    # three violations in a row (a good window between resets the count) ...
    assert kinds[:5] == [(), (), (), (), ()]
    assert kinds[5] == ("MarkDegraded",)
    # ... under the SLO but within the 10 % margin does not recover (no flapping) ...
    assert kinds[6:9] == [(), (), ()]
    # ... two windows clearly under it do.
    assert kinds[9:] == [(), ("MarkRunning",)]


def test_a_window_is_counted_once() -> None:
    d = dep(Status.RUNNING)
    snap = fleet(host("a", reading(p99=50.0, t=7.0)))  # the same statistics, round after round
    memory = ReconcileMemory()
    for _ in range(5):
        p = plan((d,), snap, memory)
        memory = p.memory
        assert p.actions == ()
    assert memory.windows["resnet50-1"].bad == 1


def test_low_slo_compliance_is_a_violation() -> None:
    d = dep(Status.RUNNING)
    memory = ReconcileMemory()
    actions: tuple[object, ...] = ()
    for t in range(3):
        r = reading(p99=12.0, t=float(t), slo_compliance=0.80)
        p = plan((d,), fleet(host("a", r)), memory)
        memory, actions = p.memory, p.actions
    assert len(actions) == 1 and isinstance(actions[0], MarkDegraded)
    assert "80.0% within SLO" in actions[0].reason


def moving(**changes: object) -> Deployment:
    return dep(Status.MOVING, moving_to=Where("b", "gpu0"), **changes)


def test_a_healthy_replacement_finishes_the_move() -> None:
    d = moving()
    new = reading("resnet50-1.2", p99=8.0)
    (action,) = plan((d,), fleet(host("a", reading()), host("b", new))).actions
    assert action == FinishMove(d, Where("b", "gpu0"), "resnet50-1.2", new)


def test_a_replacement_without_metrics_yet_is_waited_for() -> None:
    d = moving()
    new = reading("resnet50-1.2", state="starting", p99=None)
    assert plan((d,), fleet(host("a", reading()), host("b", new))).actions == ()


def test_a_failed_replacement_aborts_the_move_and_the_old_worker_is_kept() -> None:
    d = moving()
    new = reading("resnet50-1.2", state="failed", p99=None, reason="not enough memory")
    actions = plan((d,), fleet(host("a", reading()), host("b", new))).actions
    assert len(actions) == 1 and isinstance(actions[0], AbortMove)
    assert "not enough memory" in actions[0].reason
    # No Stop for the old worker: it is still the one the state wants.


def test_a_replacement_gone_after_a_restart_aborts_the_move() -> None:
    d = moving()
    (action,) = plan((d,), fleet(host("a", reading()), host("b"))).actions
    assert isinstance(action, AbortMove) and "not found" in action.reason


def test_a_move_in_flight_here_is_left_alone() -> None:
    d = moving()
    snap = fleet(host("a", reading()), host("b"))
    assert plan((d,), snap, busy=frozenset({d.id})).actions == ()


def test_workers_of_stopped_deployments_and_leftovers_are_stopped_others_left_alone() -> None:
    stopped = dep(Status.STOPPED)
    moved = dep(Status.RUNNING, id="bert-1", worker="bert-1.2", model="bert-base")
    snap = fleet(
        host(
            "a",
            reading(),  # its deployment is stopped
            reading("bert-1.1"),  # what bert-1 ran before its move
            reading("bert-1.2"),  # what it runs now
            reading("tiny-1"),  # not named by edgetop: someone else's
            reading("ghost-9.1"),  # owner not in this state: left alone
            reading("resnet50-1.7", state="stopped"),  # already finished
        )
    )
    actions = plan((stopped, moved), snap).actions
    stops = sorted((a.worker, a.deployment) for a in actions if isinstance(a, Stop))
    assert stops == [("bert-1.1", "bert-1"), ("resnet50-1.1", "resnet50-1")]


def test_a_host_missing_from_the_fleet_file_fails_its_deployments() -> None:
    d = dep(Status.RUNNING, host="gone")
    (action,) = plan((d,), fleet(host("a"))).actions
    assert isinstance(action, MarkFailed) and "not in the fleet file" in action.reason


def test_pending_and_stopped_deployments_need_nothing() -> None:
    pending = dep(Status.PENDING, where=None, worker=None)
    stopped = dep(Status.STOPPED, id="x-1", worker="x-1.1")
    assert plan((pending, stopped), fleet(host("a"))).actions == ()
