from agentlines import hello, sample

from edgetop.core.fleet import HISTORY_LEN, FleetSnapshot, HostView, apply
from edgetop.remote.link import HostStatus, LinkEvent
from edgetop.remote.protocol import Hello, Sample, parse_line


def fleet() -> FleetSnapshot:
    return FleetSnapshot(
        (HostView("a", "ssh", "cpu", 1.0), HostView("b", "sim", "gpu-server", 1.0))
    )


def ev(status: HostStatus, at: float = 0.0, **kw: object) -> LinkEvent:
    return LinkEvent("a", status, at, **kw)  # type: ignore[arg-type]


def hello_msg() -> Hello:
    msg = parse_line(hello())
    assert isinstance(msg, Hello)
    return msg


def sample_msg(seq: int, util: float = 10.0) -> Sample:
    msg = parse_line(sample(seq, util))
    assert isinstance(msg, Sample)
    return msg


def test_online_then_stale_keeps_last_good_values_and_age() -> None:
    snap = apply(fleet(), ev(HostStatus.ONLINE, 1.0, hello=hello_msg()))
    snap = apply(snap, ev(HostStatus.ONLINE, 2.0, sample=sample_msg(1, util=42.0)))
    snap = apply(snap, ev(HostStatus.STALE, 5.5, reason="no sample for 3 s"))
    host = snap.host("a")
    assert host.status is HostStatus.STALE
    assert host.devices[0].util == 42.0
    assert host.age(8.0) == 6.0
    assert host.reason == "no sample for 3 s"
    assert snap.host("b") is fleet().host("b") or snap.host("b") == fleet().host("b")


def test_offline_keeps_reason_through_reconnect_attempts() -> None:
    snap = apply(fleet(), ev(HostStatus.OFFLINE, 1.0, reason="connection refused"))
    snap = apply(snap, ev(HostStatus.CONNECTING, 2.0))
    assert snap.host("a").reason == "connection refused"
    snap = apply(snap, ev(HostStatus.ONLINE, 3.0, hello=hello_msg()))
    assert snap.host("a").reason is None
    assert snap.host("a").since == 3.0


def test_bad_lines_are_counted_not_fatal() -> None:
    snap = apply(fleet(), ev(HostStatus.ONLINE, 1.0, hello=hello_msg()))
    snap = apply(snap, ev(HostStatus.ONLINE, 2.0, bad_line="not JSON"))
    snap = apply(snap, ev(HostStatus.ONLINE, 3.0, bad_line="not JSON"))
    assert snap.host("a").bad_lines == 2
    assert snap.host("a").status is HostStatus.ONLINE


def test_history_is_bounded_and_ordered() -> None:
    snap = fleet()
    for seq in range(HISTORY_LEN + 10):
        snap = apply(
            snap, ev(HostStatus.ONLINE, float(seq), sample=sample_msg(seq, util=seq % 100))
        )
    history = snap.host("a").history["cpu"]
    assert len(history) == HISTORY_LEN
    assert history[-1] == (HISTORY_LEN + 9) % 100


def test_snapshots_are_immutable_values() -> None:
    before = fleet()
    after = apply(before, ev(HostStatus.OFFLINE, 1.0, reason="x"))
    assert before.host("a").status is HostStatus.CONNECTING
    assert after.host("a").status is HostStatus.OFFLINE


def test_settled_and_answered() -> None:
    snap = apply(fleet(), ev(HostStatus.ONLINE, 1.0, hello=hello_msg()))
    assert not snap.host("a").settled
    snap = apply(snap, ev(HostStatus.ONLINE, 2.0, sample=sample_msg(1)))
    assert snap.host("a").answered and snap.host("a").settled
    assert not snap.all_settled  # b never reported
