"""The orchestrator on a simulated fleet (deploy, stop, make-before-break moves, reconcile
rounds, a restart) and on a real local worker (a tiny torch model)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fleets import SIM_PAIR

from edgetop.core.config import FleetConfig, UnknownHostError, load_config
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.lifecycle import Deployment, LifecycleError, Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.orchestrator import (
    NOT_STOPPED_YET,
    Orchestrator,
    OrchestratorError,
    OrchestratorSettings,
    measured,
    recommendation_detail,
)
from edgetop.core.placement import Candidate, Recommendation, Rejected, Request
from edgetop.core.reconciler import ReconcileSettings, Start
from edgetop.core.statestore import StateStore
from edgetop.models.catalog import load_catalog
from edgetop.remote import worker as worker_module
from edgetop.remote.errors import ConnectError

A100 = Where("a100-1", "gpu0")
XAVIER = Where("xavier-1", "gpu0")
SETTINGS = OrchestratorSettings(
    health_timeout_s=20.0, reconcile=ReconcileSettings(degrade_after=2, recover_after=2)
)


def request(model: str = "resnet50", batch: int = 8, slo_ms: float = 500.0) -> Request:
    return Request(model, load_catalog()[model], batch, slo_ms, "server")


def write_hosts(tmp_path: Path, text: str) -> FleetConfig:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return load_config(path)


@pytest.fixture
def config(tmp_path: Path) -> FleetConfig:
    return write_hosts(tmp_path, SIM_PAIR.format(jetson="xavier-1"))


def placed(monitor: FleetMonitor, host: str) -> list[str]:
    device = monitor.sim_device(host)
    assert device is not None
    return [d.id for d in device.deployments]


def actions(store: StateStore) -> list[str]:
    return [d["action"] for d in store.decisions()]


async def next_sample(monitor: FleetMonitor) -> None:
    """Wait for every host's next sample (a new statistics window on sim hosts)."""
    seqs = {h.name: h.seq for h in monitor.snapshot.hosts}

    def advanced(s: FleetSnapshot) -> bool:
        return all(h.seq != seqs[h.name] for h in s.hosts)

    assert await monitor.wait_for(advanced, 30)


async def test_deploy_runs_the_worker_and_stop_removes_it(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    d = await orch.deploy(request(), A100, "operator")
    assert d.status is Status.RUNNING and d.where == A100 and d.worker == "resnet50-1.1"
    assert placed(monitor, "a100-1") == ["resnet50-1.1"]
    assert store.load() == (d,)
    assert [s for _, s in d.history] == ["starting", "running"]
    running = store.decisions()[-1]
    assert running["action"] == "running" and running["measured"]["p99_ms"] > 0
    reading = measured(monitor.snapshot, d)
    assert reading is not None and reading.state == "running"

    second = await orch.deploy(request(), A100, "operator")
    assert second.id == "resnet50-2"  # ids are never reused

    stopped = await orch.stop(d.id, "operator")
    assert stopped.status is Status.STOPPED and stopped.reason == "stopped by operator"
    assert placed(monitor, "a100-1") == ["resnet50-2.1"]
    assert await orch.stop(d.id, "operator") == stopped  # stopping twice changes nothing
    log = store.decisions()
    assert [e["action"] for e in log] == ["deploy", "running", "deploy", "running", "stop"]
    assert {e["who"] for e in log} == {"operator"}


async def test_bad_requests_are_refused_before_anything_is_recorded(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    with pytest.raises(UnknownHostError, match="nowhere"):
        await orch.deploy(request(), Where("nowhere"), "operator")
    with pytest.raises(OrchestratorError, match="no device 'gpu7'"):
        await orch.deploy(request(), Where("a100-1", "gpu7"), "operator")
    with pytest.raises(LifecycleError, match="batch"):
        await orch.deploy(request(batch=5000), A100, "operator")
    with pytest.raises(OrchestratorError, match="no deployment 'nope-1'"):
        await orch.stop("nope-1", "operator")
    assert store.load() == () and store.decisions() == []


async def test_a_worker_that_does_not_fit_fails_the_deployment_with_why(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    d = await orch.deploy(request("gpt2-medium", 128), A100, "operator")
    assert d.status is Status.FAILED and "needs" in (d.reason or "") and "GiB" in (d.reason or "")
    assert placed(monitor, "a100-1") == []  # nothing left behind on the device
    assert actions(store) == ["deploy", "fail"]


async def test_move_is_make_before_break(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    d = await orch.deploy(request(), A100, "operator")
    moved = await orch.move(d.id, XAVIER, "operator", "rebalance")
    assert moved.status is Status.RUNNING and moved.where == XAVIER and moved.moving_to is None
    assert moved.worker == "resnet50-1.2"
    assert placed(monitor, "a100-1") == [] and placed(monitor, "xavier-1") == ["resnet50-1.2"]
    assert [s for _, s in moved.history][-2:] == ["moving", "running"]
    done = store.decisions()[-1]
    assert done["action"] == "move-done" and done["from"] == str(A100)
    assert done["to"] == str(XAVIER) and done["measured"]["p99_ms"] > 0
    with pytest.raises(OrchestratorError, match="already runs on"):
        await orch.move(d.id, XAVIER, "operator", "again")


async def test_a_failed_move_leaves_the_old_worker_serving(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    # Fits the A100's 40 GiB, not the Xavier's 31 GiB.
    d = await orch.deploy(request("gpt2-medium", 96, slo_ms=5000), A100, "operator")
    assert d.status is Status.RUNNING
    after = await orch.move(d.id, XAVIER, "auto", "try the edge")
    assert after.status is Status.RUNNING and after.where == A100 and after.moving_to is None
    assert after.worker == d.worker and "needs" in (after.reason or "")
    assert placed(monitor, "a100-1") == ["gpt2-medium-1.1"] and placed(monitor, "xavier-1") == []
    failed = store.decisions()[-1]
    assert failed["action"] == "move-failed" and failed["who"] == "auto"
    assert "31.0 GiB free" in failed["reason"]


async def test_a_move_to_a_host_that_went_down_times_out_and_keeps_the_old(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    settings = OrchestratorSettings(health_timeout_s=1.0)
    orch = Orchestrator(config, monitor, store, settings=settings)
    d = await orch.deploy(request(), A100, "operator")
    xavier = monitor.sim_device("xavier-1")
    assert xavier is not None
    xavier.down = True
    assert await monitor.wait_for(lambda s: not s.host("xavier-1").answered, 30)
    after = await orch.move(d.id, XAVIER, "auto", "host lost")
    assert after.where == A100 and after.status is Status.RUNNING
    assert "not running with metrics" in (after.reason or "")
    assert placed(monitor, "xavier-1") == []


async def lose_a100(orch: Orchestrator, monitor: FleetMonitor) -> None:
    """a100-1 goes down and a reconcile round (no grace) fails what ran there."""
    a100 = monitor.sim_device("a100-1")
    assert a100 is not None
    a100.down = True
    assert await monitor.wait_for(lambda s: not s.host("a100-1").answered, 30)
    await orch.reconcile_once()


async def test_a_deployment_failed_with_its_host_is_relocated(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = OrchestratorSettings(
        health_timeout_s=20.0, reconcile=ReconcileSettings(offline_grace_s=0.0)
    )
    orch = Orchestrator(config, monitor, store, settings=settings)
    d = await orch.deploy(request(), A100, "operator")
    with pytest.raises(OrchestratorError, match="only a failed deployment is relocated"):
        await orch.relocate(d.id, XAVIER, "auto", "host lost")
    await lose_a100(orch, monitor)
    assert orch.get(d.id).status is Status.FAILED
    stop = orch._stop_worker

    async def unreachable(host: str, worker: str) -> None:
        if host == "a100-1":
            raise ConnectError("a100-1: connection refused")
        await stop(host, worker)

    monkeypatch.setattr(orch, "_stop_worker", unreachable)
    after = await orch.relocate(d.id, XAVIER, "auto", "host lost")
    assert after.status is Status.RUNNING and after.where == XAVIER
    assert after.worker == "resnet50-1.2" and placed(monitor, "xavier-1") == ["resnet50-1.2"]
    assert NOT_STOPPED_YET in (after.reason or "") and "a100-1/resnet50-1.1" in (after.reason or "")
    assert actions(store)[-3:] == ["relocate", "running", "stop-failed"]
    assert [s for _, s in after.history][-3:] == ["failed", "starting", "running"]


async def test_a_relocation_that_fails_leaves_the_deployment_where_it_was(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    settings = OrchestratorSettings(
        health_timeout_s=20.0, reconcile=ReconcileSettings(offline_grace_s=0.0)
    )
    orch = Orchestrator(config, monitor, store, settings=settings)
    # Fits the A100's 40 GiB, not the Xavier's 31 GiB.
    d = await orch.deploy(request("gpt2-medium", 96, slo_ms=5000), A100, "operator")
    await lose_a100(orch, monitor)
    after = await orch.relocate(d.id, XAVIER, "auto", "host lost")
    assert after.status is Status.FAILED and after.where == A100 and after.worker == d.worker
    assert "needs" in (after.reason or "") and placed(monitor, "xavier-1") == []


async def test_a_move_off_a_silent_host_notes_the_worker_not_stopped(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    d = await orch.deploy(request(), A100, "operator")

    async def unreachable(host: str, worker: str) -> None:
        raise ConnectError(f"{host}: connection refused")

    monkeypatch.setattr(orch, "_stop_worker", unreachable)
    moved = await orch.move(d.id, XAVIER, "auto", "host lost")
    assert moved.status is Status.RUNNING and moved.where == XAVIER
    assert (moved.reason or "").startswith(f"moved from {A100} to {XAVIER}; {NOT_STOPPED_YET}")
    assert actions(store)[-2:] == ["move-done", "stop-failed"]


async def test_reconcile_marks_slo_violations_degraded(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    d = await orch.deploy(request(slo_ms=5.0), A100, "operator")  # resnet50 x8 misses 5 ms
    assert d.status is Status.RUNNING
    for _ in range(6):
        await next_sample(monitor)
        await orch.reconcile_once()
        if orch.get(d.id).status is Status.DEGRADED:
            break
    now = orch.get(d.id)
    assert now.status is Status.DEGRADED and "SLO violated for 2 windows" in (now.reason or "")
    assert actions(store)[-1] == "degraded"
    assert store.decisions()[-1]["who"] == "auto"


async def test_a_restart_places_sim_deployments_once_and_never_twice(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    d = await orch.deploy(request(), A100, "operator")
    stopped = await orch.deploy(request("bert-base", 1), XAVIER, "operator")
    await orch.stop(stopped.id, "operator")

    async with FleetMonitor(config) as fresh:  # a new edgetop process: nothing placed
        assert await fresh.wait_for(lambda s: s.all_answered, 30)
        again = Orchestrator(config, fresh, store, settings=SETTINGS)
        first = await again.reconcile_once()
        assert [type(a) for a in first] == [Start]
        assert placed(fresh, "a100-1") == [d.worker] and placed(fresh, "xavier-1") == []
        for _ in range(3):
            await next_sample(fresh)
            assert not [a for a in await again.reconcile_once() if isinstance(a, Start)]
        assert placed(fresh, "a100-1") == [d.worker]
        assert again.get(d.id).status is Status.RUNNING
    assert actions(store)[-1] == "start"


async def test_one_unreachable_host_does_not_stop_the_others(
    tmp_path: Path, store: StateStore
) -> None:
    text = SIM_PAIR.format(jetson="xavier-1") + (
        '\n[[host]]\nname = "gone"\ntransport = "ssh"\naddress = "127.0.0.1"\nport = 1\n'
    )
    config = write_hosts(tmp_path, text)
    async with FleetMonitor(config) as monitor:
        assert await monitor.wait_for(lambda s: s.all_settled, 30)
        orch = Orchestrator(config, monitor, store, settings=SETTINGS)
        single = Request("resnet50", load_catalog()["resnet50"], 1, 100.0, "singlestream")
        bad = await orch.deploy(single, Where("gone", "cpu"), "operator")
        assert bad.status is Status.FAILED and "cannot start on gone/cpu" in (bad.reason or "")


async def test_one_host_failing_in_a_round_does_not_stop_the_others(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    orch = Orchestrator(config, monitor, store, settings=SETTINGS)
    on_a100 = await orch.deploy(request(), A100, "operator")
    on_xavier = await orch.deploy(request(), XAVIER, "operator")

    async with FleetMonitor(config) as fresh:  # restarted: both sim workers to place again
        assert await fresh.wait_for(lambda s: s.all_answered, 30)
        again = Orchestrator(config, fresh, store, settings=SETTINGS)
        place = again._start_worker

        async def flaky(d: Deployment, where: Where, worker: str) -> None:
            if where.host == "xavier-1":
                raise ConnectError("xavier-1: connection reset")
            await place(d, where, worker)

        monkeypatch.setattr(again, "_start_worker", flaky)
        done = await again.reconcile_once()
        assert sorted(type(a).__name__ for a in done) == ["Start", "Start"]
        assert placed(fresh, "a100-1") == [on_a100.worker]
        assert again.get(on_a100.id).status is Status.RUNNING
        failed = again.get(on_xavier.id)
        assert failed.status is Status.FAILED and "connection reset" in (failed.reason or "")
    assert actions(store)[-2:] in (["start", "fail"], ["fail", "start"])


def test_recommendation_detail_says_what_was_followed_or_overridden() -> None:
    rec = Recommendation(
        "learned",
        request(),
        (Candidate("a100-1", "gpu0", 0, 3.0, 5.0, 0.9, "fastest"),),
        (Rejected("xavier-1", "gpu0", "predicted p99 900 ms misses the 500 ms SLO"),),
    )
    action, detail, warning = recommendation_detail(rec, A100)
    assert action == "accept" and warning is None
    assert detail["followed"]["p99_ms"] == 5.0 and detail["followed"]["confidence"] == 0.9
    action, detail, warning = recommendation_detail(rec, XAVIER)
    assert action == "override" and detail["overrode"]["host"] == "a100-1"
    assert warning is not None and "misses the 500 ms SLO" in warning
    assert recommendation_detail(None, A100)[0] == "deploy"
    # A trial is followed like any candidate, and the audit log says it was one.
    trial = Candidate("a100-1", "gpu0", 0, 3.0, 5.0, 0.3, "trial: ...", trial=True)
    action, detail, _ = recommendation_detail(Recommendation("learned", request(), (trial,)), A100)
    assert action == "accept" and detail["followed"]["trial"] is True


# -- a real worker on this machine -------------------------------------------------------------

LOCAL = """
[[host]]
name = "here"
transport = "local"
kind = "cpu"
interval = 0.25
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The worker, its code cache and the local agent's scan all live under a fake ~."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # tiny_models, shipped with it
    root = tmp_path / "home" / ".local" / "state" / "edgetop" / "deployments"

    def cleanup() -> None:
        for info in worker_module.scan(root) if root.exists() else []:
            if info["alive"]:
                worker_module.stop_worker(Path(info["dir"]), timeout=5)

    return cleanup


async def test_a_real_local_worker_is_deployed_adopted_after_restart_and_stopped(
    tmp_path: Path, home: Callable[[], None], store: StateStore
) -> None:
    config = write_hosts(tmp_path, LOCAL)
    # The orchestrator reads only the request's names and numbers; the features are a stand-in.
    tiny = Request("tiny_models:tiny", load_catalog()["resnet50"], 2, 1000.0, "singlestream")
    settings = OrchestratorSettings(health_timeout_s=60.0)
    try:
        async with FleetMonitor(config) as monitor:
            assert await monitor.wait_for(lambda s: s.all_answered, 60)
            orch = Orchestrator(config, monitor, store, settings=settings)
            d = await orch.deploy(tiny, Where("here", "cpu"), "operator")
            assert d.status is Status.RUNNING, d.reason
            running = store.decisions()[-1]
            assert running["action"] == "running" and running["measured"]["p99_ms"] > 0

        # edgetop restarted: the worker kept running; it is found, not started again.
        async with FleetMonitor(config) as monitor:
            assert await monitor.wait_for(
                lambda s: measured(s, d) is not None and measured(s, d).p99_ms is not None,  # type: ignore[union-attr]
                60,
            )
            again = Orchestrator(config, monitor, store, settings=settings)
            assert await again.reconcile_once() == ()
            workers = [r.id for r in monitor.snapshot.host("here").deployments]
            assert workers == [d.worker]
            stopped = await again.stop(d.id, "operator")
            assert stopped.status is Status.STOPPED
        root = Path(tmp_path / "home/.local/state/edgetop/deployments")
        states = {i["id"]: (i["state"], i["alive"]) for i in worker_module.scan(root)}
        assert states == {d.worker: ("stopped", False)}
    finally:
        home()
