import asyncio

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
