import asyncio

import pytest

from edgetop.core.profiles import get_profile
from edgetop.remote.protocol import Hello, Sample, parse_line
from edgetop.remote.sim import SimTransport


async def read(transport: SimTransport, count: int) -> list[object]:
    stream = await transport.start_agent(0.01)
    try:
        return [parse_line(await stream.readline()) for _ in range(count)]
    finally:
        await stream.close()


async def test_sim_gpu_server_speaks_the_agent_protocol() -> None:
    profile = get_profile("a100-40gb")
    hello, sample = await read(SimTransport("a100-1", profile), 2)
    assert isinstance(hello, Hello) and hello.hostname == "a100-1"
    assert isinstance(sample, Sample)
    gpu = next(d for d in sample.devices if d.kind == "gpu")
    assert gpu.mem_total == profile.memory_bytes
    assert gpu.power_limit_w == profile.tdp_w
    assert 0 <= (gpu.util or 0) <= 100


async def test_sim_jetson_reports_unified_memory_and_power_mode() -> None:
    profile = get_profile("jetson-agx-xavier")
    _, sample = await read(SimTransport("xavier-1", profile), 2)
    assert isinstance(sample, Sample)
    jetson = next(d for d in sample.devices if d.kind == "jetson")
    cpu = next(d for d in sample.devices if d.kind == "cpu")
    assert jetson.mem_total == cpu.mem_total == profile.memory_bytes
    assert jetson.power_mode == profile.default_power_mode


async def test_sim_is_reproducible_per_host_name() -> None:
    profile = get_profile("v100-16gb")
    a = await read(SimTransport("v100-1", profile), 3)
    b = await read(SimTransport("v100-1", profile), 3)
    assert [s.devices for s in a[1:]] == [s.devices for s in b[1:]]  # type: ignore[attr-defined]


async def test_closing_a_sim_stream_ends_it() -> None:
    stream = await SimTransport("x", get_profile("t4")).start_agent(10.0)
    await stream.readline()  # hello
    pending = asyncio.ensure_future(stream.readline())
    await stream.close()
    assert await asyncio.wait_for(pending, 2) == b""


class SteadyPhysics:
    """A scripted physics: each deployment takes 30% of the device and 2 GiB."""

    def load(self, deployments, power_mode, temp_c):  # type: ignore[no-untyped-def]
        from edgetop.remote.sim import SimDeploymentLoad, SimLoad

        n = len(deployments)
        slow = 2.0 if power_mode == "10W" else 1.0
        return SimLoad(
            util=min(1.0, 0.3 * n),
            mem_used_bytes=n * (2 << 30),
            power_w=6.0 + 8.0 * n / slow,
            temp_c=45.0 + 10 * n if temp_c is None else temp_c,
            throttled=temp_c is not None and temp_c >= 90,
            deployments=tuple(
                SimDeploymentLoad(p50_ms=10.0 * n * slow, p90_ms=12.0 * n * slow,
                                  p99_ms=15.0 * n * slow, throughput=50.0 / n)
                if d.model != "huge" else SimDeploymentLoad(failed="needs 80 GiB, 30 GiB free")
                for d in deployments
            ),
        )  # fmt: skip


async def test_placed_deployments_load_the_simulated_device() -> None:
    from edgetop.remote.sim import SimDeployment

    transport = SimTransport("xavier-1", get_profile("jetson-agx-xavier"), physics=SteadyPhysics())
    idle = (await read(transport, 2))[1]
    transport.device.place(SimDeployment("d1", "resnet50", batch=8, slo_ms=20.0))
    transport.device.place(SimDeployment("d2", "resnet50", batch=1, slo_ms=25.0))
    loaded = (await read(transport, 6))[-1]
    assert isinstance(idle, Sample) and isinstance(loaded, Sample)
    before = next(d for d in idle.devices if d.kind == "jetson")
    after = next(d for d in loaded.devices if d.kind == "jetson")
    assert (after.util or 0) >= 60 > (before.util or 0)
    assert (after.mem_used or 0) - (before.mem_used or 0) > 3 << 30
    assert (after.power_w or 0) > (before.power_w or 0)
    assert (after.temp_c or 0) > (before.temp_c or 0)  # drifting towards the loaded 65 C
    assert [d.id for d in loaded.deployments] == ["d1", "d2"]
    d1 = loaded.deployments[0]
    assert d1.state == "running" and d1.model == "resnet50" and d1.batch == 8
    assert d1.p50_ms is not None and d1.p90_ms is not None and d1.p99_ms is not None
    assert 18 < d1.p50_ms < 22 and d1.p50_ms <= d1.p90_ms <= d1.p99_ms  # noise is small
    assert d1.slo_compliance == 0.5  # SLO 20 ms at a p50 of 20 ms: half the queries
    assert loaded.deployments[1].slo_compliance == pytest.approx(0.915)  # SLO 25 ms

    transport.device.power_mode = "10W"  # the demo's slower mode doubles the scripted latency
    slow = (await read(transport, 2))[-1]
    assert isinstance(slow, Sample) and (slow.deployments[0].p50_ms or 0) > 35
    assert transport.device.remove("d1") and not transport.device.remove("d1")
    left = (await read(transport, 2))[-1]
    assert isinstance(left, Sample) and [d.id for d in left.deployments] == ["d2"]


async def test_a_deployment_that_cannot_run_is_reported_failed_with_why() -> None:
    from edgetop.remote.sim import SimDeployment

    transport = SimTransport("a100-1", get_profile("a100-40gb"), physics=SteadyPhysics())
    transport.device.place(SimDeployment("big", "huge"))
    sample = (await read(transport, 2))[-1]
    assert isinstance(sample, Sample)
    assert sample.deployments[0].state == "failed"
    assert sample.deployments[0].reason == "needs 80 GiB, 30 GiB free"


async def test_a_forced_hot_jetson_reports_throttling() -> None:
    from edgetop.remote.sim import SimDeployment

    transport = SimTransport("xavier-2", get_profile("jetson-agx-xavier"), physics=SteadyPhysics())
    transport.device.place(SimDeployment("d", "resnet50"))
    transport.device.forced_temp_c = 95.0
    sample = (await read(transport, 12))[-1]
    assert isinstance(sample, Sample)
    jetson = next(d for d in sample.devices if d.kind == "jetson")
    assert "thermal" in jetson.throttle and (jetson.temp_c or 0) > 80


async def test_a_simulated_host_taken_down_ends_its_stream_and_refuses_reconnects() -> None:
    from edgetop.remote.errors import ConnectError

    transport = SimTransport("v100-1", get_profile("v100-16gb"))
    stream = await transport.start_agent(0.01)
    await stream.readline()
    transport.device.down = True
    assert await stream.readline() == b""
    assert "down" in stream.exit_reason()
    with pytest.raises(ConnectError, match="down"):
        await transport.start_agent(0.01)
    transport.device.down = False
    await (await transport.start_agent(0.01)).close()


def test_slo_compliance_reads_the_percentiles() -> None:
    from edgetop.remote.sim import SimDeploymentLoad, slo_compliance

    load = SimDeploymentLoad(p50_ms=10.0, p90_ms=20.0, p99_ms=40.0)
    assert slo_compliance(load, None) is None
    assert slo_compliance(load, 50.0) == 0.995
    assert slo_compliance(load, 20.0) == 0.90
    assert slo_compliance(load, 10.0) == 0.50
    assert slo_compliance(load, 5.0) == 0.25
    assert slo_compliance(load, 30.0) > slo_compliance(load, 25.0)  # type: ignore[operator]


async def test_a_load_spike_shows_and_slows_the_deployments() -> None:
    from edgetop.remote.sim import SimDeployment

    idle_host = SimTransport("a100-3", get_profile("a100-40gb"))
    idle_host.device.spike = 0.7  # nothing placed: the spike alone loads the device
    idle = (await read(idle_host, 3))[-1]
    assert isinstance(idle, Sample)
    gpu = next(d for d in idle.devices if d.kind == "gpu")
    assert (gpu.util or 0) >= 70 and "gpu_idle" not in gpu.throttle
    assert (gpu.power_w or 0) > 3 * get_profile("a100-40gb").idle_power_w

    transport = SimTransport("xavier-4", get_profile("jetson-agx-xavier"), physics=SteadyPhysics())
    transport.device.place(SimDeployment("d", "resnet50", slo_ms=25.0))
    calm = (await read(transport, 2))[-1]
    transport.device.spike = 0.5  # half the device gone: latencies double
    spiked = (await read(transport, 2))[-1]
    assert isinstance(calm, Sample) and isinstance(spiked, Sample)
    assert (spiked.deployments[0].p50_ms or 0) > 1.8 * (calm.deployments[0].p50_ms or 0)
    jetson = next(d for d in spiked.devices if d.kind == "jetson")
    assert (jetson.util or 0) >= 80  # its 30% plus the 50% spike
