"""Simulated hosts under load, end to end: monitor -> sim transport -> performance model."""

from pathlib import Path

from fleets import SIM_PAIR

from edgetop.core.config import load_config
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.monitor import FleetMonitor
from edgetop.core.perfmodel import DeviceCondition, Placement, evaluate
from edgetop.core.profiles import get_profile
from edgetop.core.simphysics import PerfModelPhysics
from edgetop.models.catalog import load_catalog
from edgetop.remote.sim import SimDeployment


def accel(snap: FleetSnapshot, host: str):  # type: ignore[no-untyped-def]
    return snap.host(host).accelerators()[0]


async def test_a_placed_deployment_shows_in_the_fleet_as_the_model_predicts(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(SIM_PAIR.format(jetson="xavier-1"))
    async with FleetMonitor(load_config(path)) as monitor:
        assert await monitor.wait_for(lambda s: s.all_answered, 10)
        idle = accel(monitor.snapshot, "xavier-1")
        device = monitor.sim_device("xavier-1")
        assert device is not None and monitor.sim_device("nope") is None
        device.place(SimDeployment("r1", "resnet50", batch=8, qps=200.0, slo_ms=50.0))
        device.place(SimDeployment("b1", "bert-base", batch=1, qps=10.0, slo_ms=130.0))
        assert await monitor.wait_for(
            lambda s: (
                len(s.host("xavier-1").deployments) == 2
                and all(d.p99_ms for d in s.host("xavier-1").deployments)
            ),
            10,
        )
        loaded_host = monitor.snapshot.host("xavier-1")
        loaded = accel(monitor.snapshot, "xavier-1")
        assert (loaded.util or 0) > (idle.util or 0) + 20
        assert (loaded.mem_used or 0) > (idle.mem_used or 0)
        assert (loaded.power_w or 0) > (idle.power_w or 0)
        assert monitor.snapshot.host("a100-1").deployments == ()  # nothing placed there

    catalog = load_catalog()
    truth = evaluate(
        get_profile("jetson-agx-xavier"),
        [
            Placement(catalog["resnet50"], 8, "server", 200.0),
            Placement(catalog["bert-base"], 1, "server", 10.0),
        ],
        DeviceCondition(),
    )
    for reading, expected in zip(loaded_host.deployments, truth.performances, strict=True):
        assert reading.state == "running"
        assert abs(reading.p50_ms - expected.p50_ms) / expected.p50_ms < 0.15  # type: ignore[operator]
        assert reading.throughput == round(expected.throughput, 2)


def test_a_deployment_that_does_not_fit_fails_and_the_others_run() -> None:
    physics = PerfModelPhysics(get_profile("jetson-xavier-nx"))  # 8 GiB shared
    load = physics.load(
        [
            SimDeployment("small", "mobilenetv2", batch=1),
            SimDeployment("huge", "gpt2-medium", batch=64),
            SimDeployment("typo", "resnet-50"),
        ],
        None,
        None,
    )
    small, huge, typo = load.deployments
    assert small.failed is None and small.p50_ms is not None
    assert huge.failed is not None and "GiB free" in huge.failed
    assert typo.failed == "model 'resnet-50' is not in the catalog"


def test_a_lower_power_mode_and_heat_slow_a_jetson() -> None:
    physics = PerfModelPhysics(get_profile("jetson-agx-xavier"))
    placed = [SimDeployment("r", "resnet50", batch=1, scenario="singlestream")]
    fast = physics.load(placed, "MAXN", None).deployments[0]
    slow = physics.load(placed, "10W", None).deployments[0]
    hot = physics.load(placed, "MAXN", 99.0)
    assert slow.p50_ms > fast.p50_ms  # type: ignore[operator]
    assert hot.throttled and hot.deployments[0].p50_ms > fast.p50_ms  # type: ignore[operator]
