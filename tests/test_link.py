import asyncio
import random

from agentlines import hello, sample
from doubles import ScriptedTransport

from edgetop.remote.errors import AuthError, ConnectError, HostKeyError
from edgetop.remote.link import Backoff, HostLink, HostStatus, LinkEvent

FAST = Backoff(base_s=0.01, cap_s=0.02)


async def run_link(transport: ScriptedTransport, until, interval: float = 0.05) -> list[LinkEvent]:
    events: list[LinkEvent] = []
    done = asyncio.Event()

    def on_event(event: LinkEvent) -> None:
        events.append(event)
        if until(events):
            done.set()

    task = asyncio.create_task(HostLink("h", transport, interval, on_event, FAST).run())
    try:
        await asyncio.wait_for(done.wait(), timeout=10)
    finally:
        task.cancel()
    return events


def statuses(events: list[LinkEvent]) -> list[str]:
    out: list[str] = []
    for e in events:
        if not out or out[-1] != e.status.value:
            out.append(e.status.value)
    return out


async def test_online_streams_samples() -> None:
    transport = ScriptedTransport([[hello(), sample(1), sample(2)]])
    events = await run_link(transport, lambda ev: sum(e.sample is not None for e in ev) == 2)
    assert statuses(events) == ["connecting", "online"]
    assert [e.sample.seq for e in events if e.sample] == [1, 2]


async def test_silence_makes_the_host_stale_then_a_sample_revives_it() -> None:
    transport = ScriptedTransport([[hello(), sample(1), 0.3, sample(2)]])
    events = await run_link(transport, lambda ev: sum(e.sample is not None for e in ev) == 2)
    assert statuses(events) == ["connecting", "online", "stale", "online"]
    stale = next(e for e in events if e.status is HostStatus.STALE)
    assert "no sample" in (stale.reason or "")


async def test_garbage_line_is_reported_and_skipped() -> None:
    transport = ScriptedTransport([[hello(), b"\x00garbage\n", sample(1)]])
    events = await run_link(transport, lambda ev: any(e.sample for e in ev))
    bad = [e for e in events if e.bad_line]
    assert len(bad) == 1 and "not JSON" in bad[0].bad_line
    assert events[-1].status is HostStatus.ONLINE


async def test_end_of_stream_goes_offline_with_reason_and_reconnects() -> None:
    transport = ScriptedTransport([[hello(), sample(1), None], [hello(), sample(1)]])
    events = await run_link(transport, lambda ev: sum(e.sample is not None for e in ev) == 2)
    assert statuses(events) == ["connecting", "online", "offline", "connecting", "online"]
    offline = next(e for e in events if e.status is HostStatus.OFFLINE)
    assert offline.reason == "script 1 ended"
    assert transport.closes >= 1  # the broken connection was dropped before reconnecting


async def test_failures_map_to_their_statuses() -> None:
    transport = ScriptedTransport(
        [
            AuthError("authentication failed for root@x:22"),
            HostKeyError("host key for x is not in known_hosts"),
            ConnectError("x:22: connection refused"),
            [hello(), sample(1)],
        ]
    )
    events = await run_link(transport, lambda ev: any(e.sample for e in ev))
    assert statuses(events) == [
        "connecting",
        "auth-failed",
        "connecting",
        "host-key-rejected",
        "connecting",
        "offline",
        "connecting",
        "online",
    ]
    assert "connection refused" in next(e.reason for e in events if e.status is HostStatus.OFFLINE)


async def test_agent_error_line_ends_the_session() -> None:
    transport = ScriptedTransport(
        [[hello(), b'{"v":1,"type":"error","message":"disk full"}\n'], [hello(), sample(1)]]
    )
    events = await run_link(transport, lambda ev: any(e.sample for e in ev))
    assert any(e.status is HostStatus.OFFLINE and "disk full" in (e.reason or "") for e in events)


async def test_one_dead_host_never_stalls_another() -> None:
    events: list[LinkEvent] = []
    dead = ScriptedTransport([])  # start_agent never returns: a host that swallows packets
    alive = ScriptedTransport([[hello(), sample(1), sample(2), sample(3)]])
    links = [
        HostLink(n, t, 0.05, events.append, FAST) for n, t in (("dead", dead), ("alive", alive))
    ]
    tasks = [asyncio.create_task(link.run()) for link in links]
    for _ in range(200):
        if sum(1 for e in events if e.host == "alive" and e.sample) == 3:
            break
        await asyncio.sleep(0.01)
    for task in tasks:
        task.cancel()
    assert sum(1 for e in events if e.host == "alive" and e.sample) == 3


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(base_s=1.0, cap_s=30.0)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(10)]
    for n, d in enumerate(delays):
        ceiling = min(30.0, 2.0**n)
        assert ceiling / 2 <= d <= ceiling
    assert max(delays) <= 30.0
    assert len({round(backoff.delay(5, rng), 6) for _ in range(20)}) > 1  # jittered
