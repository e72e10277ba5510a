"""The auto-pilot on a simulated fleet: a host taken down, a Jetson forced hot, the audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgetop.core import autopilot
from edgetop.core.autopilot import Autopilot, AutoSettings
from edgetop.core.config import FleetConfig, load_config
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.orchestrator import Orchestrator, OrchestratorSettings
from edgetop.core.placement import Candidate, Recommendation, Request
from edgetop.core.reconciler import ReconcileSettings
from edgetop.core.statestore import StateStore
from edgetop.models.catalog import load_catalog

FLEET = """
[[host]]
name = "a100-1"
transport = "sim"
device = "a100-40gb"
interval = 0.05

[[host]]
name = "a100-2"
transport = "sim"
device = "a100-40gb"
interval = 0.05

[[host]]
name = "xavier-1"
transport = "sim"
device = "jetson-agx-xavier"
interval = 0.05
"""
A100 = Where("a100-1", "gpu0")
XAVIER = Where("xavier-1", "gpu0")
FAST = AutoSettings(host_lost_grace_s=0.3, persist_rounds=2, rebalance=False)


@pytest.fixture
def config(tmp_path: Path) -> FleetConfig:
    path = tmp_path / "hosts.toml"
    path.write_text(FLEET)
    return load_config(path)


def orchestrator(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore, offline_grace_s: float = 30.0
) -> Orchestrator:
    settings = OrchestratorSettings(
        health_timeout_s=20.0, reconcile=ReconcileSettings(offline_grace_s=offline_grace_s)
    )
    return Orchestrator(config, monitor, store, settings=settings)


def request(model: str = "resnet50", batch: int = 8, slo_ms: float = 500.0) -> Request:
    return Request(model, load_catalog()[model], batch, slo_ms, "server")


def placed(monitor: FleetMonitor, host: str) -> list[str]:
    device = monitor.sim_device(host)
    assert device is not None
    return [d.id for d in device.deployments]


async def next_sample(monitor: FleetMonitor) -> None:
    seqs = {h.name: h.seq for h in monitor.snapshot.hosts}

    def advanced(s: FleetSnapshot) -> bool:
        return all(h.seq != seqs[h.name] or not h.answered for h in s.hosts)

    await monitor.wait_for(advanced, 5)


async def run_until(
    auto: Autopilot, done: Callable[[Deployment], bool], deployment: str, rounds: int = 60
) -> list[dict[str, Any]]:
    """Step the auto-pilot (one statistics window apart) until `done`; the lines it returned."""
    lines: list[dict[str, Any]] = []
    for _ in range(rounds):
        await next_sample(auto.orchestrator.monitor)
        lines += await auto.step()
        if done(auto.orchestrator.get(deployment)):
            return lines
    raise AssertionError(f"not done after {rounds} rounds: {auto.orchestrator.get(deployment)}")


async def test_a_host_taken_down_moves_its_deployment_make_before_break(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = orchestrator(config, monitor, store)
    d = await orch.deploy(request(), A100, "operator")
    assert d.status is Status.RUNNING
    emitted: list[dict[str, Any]] = []
    auto = Autopilot(orch, FAST, emit=emitted.append)
    assert await auto.step() == []  # a healthy fleet: nothing to do, nothing said

    down = monitor.sim_device("a100-1")
    assert down is not None
    down.down = True
    lines = await run_until(auto, lambda x: x.where != A100, d.id)
    after = orch.get(d.id)
    assert after.status is Status.RUNNING and after.where is not None
    assert after.where.host != "a100-1" and after.worker == f"{d.id}.2"
    assert placed(monitor, after.where.host) == [after.worker]
    assert placed(monitor, "a100-1") == []  # a sim host's worker is gone with the move

    assert lines == emitted
    assert [(x["who"], x["action"]) for x in lines] == [
        ("auto", "trigger"),
        ("auto", "move"),
        ("auto", "move-done"),
    ]
    trigger = lines[0]
    assert trigger["type"] == "decision" and trigger["trigger"] == "host-lost"
    assert trigger["from"] == str(A100) and trigger["to"] == str(after.where)
    assert "a100-1 silent" in trigger["reason"]
    assert [x["action"] for x in store.decisions()][-3:] == ["trigger", "move", "move-done"]
    json.dumps(lines)  # every line is JSON as it is


async def test_a_deployment_failed_with_its_host_is_started_elsewhere(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = orchestrator(config, monitor, store, offline_grace_s=0.1)  # failed before auto acts
    d = await orch.deploy(request(), A100, "operator")
    auto = Autopilot(orch, FAST)
    down = monitor.sim_device("a100-1")
    assert down is not None
    down.down = True
    lines = await run_until(auto, lambda x: x.where != A100, d.id)
    after = orch.get(d.id)
    assert after.status is Status.RUNNING and after.worker == f"{d.id}.2"
    actions = [x["action"] for x in lines]
    assert actions[0] == "fail" and actions[-3:] == ["trigger", "relocate", "running"]
    assert [s for _, s in after.history][-4:] == ["running", "failed", "starting", "running"]


async def test_a_hot_jetson_moves_its_deployment_after_the_trigger_persists(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = orchestrator(config, monitor, store)
    d = await orch.deploy(request(), XAVIER, "operator")
    assert d.status is Status.RUNNING
    auto = Autopilot(orch, FAST)
    jetson = monitor.sim_device("xavier-1")
    assert jetson is not None
    jetson.forced_temp_c = 95.0
    lines = await run_until(auto, lambda x: x.where != XAVIER, d.id)
    after = orch.get(d.id)
    assert after.where is not None and after.where.host.startswith("a100-")
    trigger = next(x for x in lines if x["action"] == "trigger")
    assert trigger["trigger"] == "thermal" and trigger["rounds"] == FAST.persist_rounds
    # The shipped weights may be mid-retrain: either way the move happens.
    assert trigger["chosen_by"] in ("recommendation", "least-loaded")
    assert placed(monitor, "xavier-1") == []


async def test_the_recommendation_picks_the_target_skipping_unsafe_devices(
    config: FleetConfig,
    monitor: FleetMonitor,
    store: StateStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orch = orchestrator(config, monitor, store)
    d = await orch.deploy(request(), XAVIER, "operator")
    ranked = (XAVIER, Where("a100-1", "gpu0"), Where("a100-2", "gpu0"))
    down = monitor.sim_device("a100-1")
    assert down is not None
    down.down = True  # the second choice is silent: the third is taken

    def recommendation(req: Request, *args: Any, **kwargs: Any) -> tuple[Recommendation, None]:
        candidates = tuple(
            Candidate(w.host, w.device, i, 1.0, 2.0, 0.9, "fast") for i, w in enumerate(ranked)
        )
        return Recommendation("learned", req, candidates), None

    monkeypatch.setattr(autopilot, "live_recommendation", recommendation)
    auto = Autopilot(orch, FAST)
    jetson = monitor.sim_device("xavier-1")
    assert jetson is not None
    jetson.forced_temp_c = 95.0
    lines = await run_until(auto, lambda x: x.where != XAVIER, d.id)
    assert orch.get(d.id).where == Where("a100-2", "gpu0")
    trigger = next(x for x in lines if x["action"] == "trigger")
    assert trigger["chosen_by"] == "recommendation"


async def test_a_guardrail_hold_back_is_logged_once(
    config: FleetConfig, monitor: FleetMonitor, store: StateStore
) -> None:
    orch = orchestrator(config, monitor, store)
    first = await orch.deploy(request(), XAVIER, "operator")
    second = await orch.deploy(request("bert-base", 1), XAVIER, "operator")
    limited = AutoSettings(persist_rounds=1, max_moves_per_minute=1, rebalance=False)
    auto = Autopilot(orch, limited)
    jetson = monitor.sim_device("xavier-1")
    assert jetson is not None
    jetson.forced_temp_c = 95.0
    lines: list[dict[str, Any]] = []
    for _ in range(40):
        await next_sample(monitor)
        lines += await auto.step()
        if any(x["action"] == "move-done" for x in lines) and any(
            x["action"] == "skip" for x in lines
        ):
            break
    for _ in range(3):  # held back again: not logged again
        await next_sample(monitor)
        lines += await auto.step()
    (moved,) = [x for x in lines if x["action"] == "move-done"]
    (skip,) = [x for x in lines if x["action"] == "skip"]
    assert skip["guardrail"] == "rate-limit" and skip["who"] == "auto"
    assert {moved["deployment"], skip["deployment"]} == {first.id, second.id}
    assert orch.get(skip["deployment"]).where == XAVIER  # held back by the limit
