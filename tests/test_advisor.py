"""The scheduler's advice on a live simulated fleet: a recommendation, and a rebalance plan
spoken in deployment ids and places."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleets import SIM_PAIR

from edgetop.core.advisor import live_rebalance, live_recommendation, parse_where
from edgetop.core.config import FleetConfig, load_config
from edgetop.core.lifecycle import Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.orchestrator import Orchestrator, OrchestratorSettings
from edgetop.core.placement import Request
from edgetop.core.statestore import StateStore
from edgetop.models.catalog import load_catalog
from edgetop.remote.sim import SimDeployment

XAVIER = Where("xavier-1", "gpu0")


def request(model: str = "resnet50", batch: int = 1, slo_ms: float = 200.0) -> Request:
    return Request(model, load_catalog()[model], batch, slo_ms, "singlestream")


@pytest.fixture
def config(tmp_path: Path) -> FleetConfig:
    path = tmp_path / "hosts.toml"
    path.write_text(SIM_PAIR.format(jetson="xavier-1"))
    return load_config(path)


def test_parse_where_splits_a_slot_key() -> None:
    assert parse_where("a100-1/gpu0") == Where("a100-1", "gpu0")


async def test_live_recommendation_ranks_the_fleets_devices(
    config: FleetConfig, monitor: FleetMonitor
) -> None:
    rec, why_none = live_recommendation(request(), monitor.snapshot, config)
    assert why_none is None and rec is not None
    assert rec.chosen is not None
    keys = {f"{c.host}/{c.device}" for c in rec.candidates} | {
        f"{r.host}/{r.device}" for r in rec.rejected
    }
    assert {"a100-1/gpu0", "xavier-1/gpu0"} <= keys
    assert all(c.reason for c in rec.candidates)


async def test_live_rebalance_moves_owned_deployments_off_an_overloaded_device(
    config: FleetConfig, monitor: FleetMonitor, tmp_path: Path
) -> None:
    store = StateStore(tmp_path / "state")
    orch = Orchestrator(config, monitor, store, settings=OrchestratorSettings(health_timeout_s=20))
    ours = [
        await orch.deploy(
            Request("resnet50", load_catalog()["resnet50"], 1, 50.0, "server", 145.0),
            XAVIER,
            "operator",
        )
        for _ in range(3)
    ]
    assert all(d.status is Status.RUNNING for d in ours)
    # A worker edgetop did not start shares the device: planned around, never moved.
    xavier = monitor.sim_device("xavier-1")
    assert xavier is not None
    xavier.place(SimDeployment("foreign", "resnet50", 1, "server", 5.0, 400.0))
    seqs = {h.name: h.seq for h in monitor.snapshot.hosts}
    assert await monitor.wait_for(lambda s: all(h.seq > seqs[h.name] + 1 for h in s.hosts), 30)

    moves, why_none = live_rebalance(store.load(), monitor.snapshot, config)
    assert why_none is None
    assert moves, "three resnet50 streams overload one Xavier beside an idle A100"
    ids = {d.id for d in ours}
    for m in moves:
        assert m.deployment_id in ids
        assert m.source == XAVIER and m.target == Where("a100-1", "gpu0")
        assert m.gain > 0 and m.fixes_violation and m.after_p99_ms < 50.0 < m.before_p99_ms
    assert len({m.deployment_id for m in moves}) == len(moves)
