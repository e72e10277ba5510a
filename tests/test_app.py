"""The Textual interface, driven headlessly."""

from pathlib import Path

from agentlines import hello, sample
from fleets import SIM_PAIR

from edgetop.core.config import parse_config
from edgetop.core.fleet import FleetSnapshot, HostView, apply
from edgetop.core.monitor import FleetMonitor
from edgetop.remote.link import HostStatus, LinkEvent
from edgetop.remote.protocol import parse_line
from edgetop.tui.app import EdgetopApp
from edgetop.tui.panels import FleetSummary, HostPanel, sparkline

SIM_FLEET = SIM_PAIR.format(jetson="xavier.lab-1")


def fixed_fleet() -> FleetSnapshot:
    """A fleet in every interesting state, built from protocol lines (deterministic)."""
    snap = FleetSnapshot(
        (
            HostView("gpu-a", "ssh", "gpu-server", 1.0),
            HostView("orin-7", "ssh", "jetson", 1.0),
            HostView("bastion-cpu", "ssh", "cpu", 1.0),
        )
    )
    gpu = [
        {
            "id": "cpu",
            "kind": "cpu",
            "name": "EPYC 7742",
            "util": 12.0,
            "mem_used": 40 << 30,
            "mem_total": 256 << 30,
        },
        {
            "id": "gpu0",
            "kind": "gpu",
            "name": "NVIDIA H100 80GB HBM3",
            "util": 100.0,
            "mem_used": 19818 << 20,
            "mem_total": 81559 << 20,
            "temp_c": 59.0,
            "power_w": 629.0,
            "power_limit_w": 700.0,
        },
    ]
    orin = [
        {
            "id": "gpu0",
            "kind": "jetson",
            "name": "Jetson AGX Orin",
            "util": 63.0,
            "mem_used": 6185 << 20,
            "mem_total": 7620 << 20,
            "temp_c": 53.3,
            "power_w": 12.5,
        }
    ]
    for seq in range(1, 30):
        snap = apply(
            snap,
            LinkEvent(
                "gpu-a", HostStatus.ONLINE, 100.0 + seq, sample=parse_line(sample(seq, devices=gpu))
            ),
        )  # type: ignore[arg-type]
    snap = apply(
        snap,
        LinkEvent("gpu-a", HostStatus.ONLINE, 101.0, hello=parse_line(hello(hostname="gpu-a.dc1"))),
    )  # type: ignore[arg-type]
    snap = apply(
        snap,
        LinkEvent("orin-7", HostStatus.ONLINE, 110.0, sample=parse_line(sample(1, devices=orin))),
    )  # type: ignore[arg-type]
    snap = apply(snap, LinkEvent("orin-7", HostStatus.STALE, 113.0, reason="no sample for 3 s"))
    snap = apply(
        snap,
        LinkEvent(
            "bastion-cpu", HostStatus.OFFLINE, 120.0, reason="127.0.0.9:22: connection refused"
        ),
    )
    return snap


def test_sparkline_scales_and_pads() -> None:
    assert sparkline([0, 50, 100], width=5) == "  ▁▅█"
    assert sparkline([], width=3) == "   "
    assert sparkline([250, -3], width=2) == "█▁"


async def test_panels_follow_a_live_sim_fleet(tmp_path: Path) -> None:
    config = parse_config(SIM_FLEET, "sim.toml")
    app = EdgetopApp(config, FleetMonitor(config))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.fleet and all(h.samples > 2 for h in app.fleet.hosts):
                break
        panels = list(app.query(HostPanel))
        assert [p.host_name for p in panels] == ["a100-1", "xavier.lab-1"]
        assert all("online" in str(p.border_subtitle) for p in panels)
        summary = str(app.query_one(FleetSummary).render())
        assert "2/2 online" in summary
        await pilot.press("q")


async def test_stale_and_offline_hosts_are_greyed_with_reason() -> None:
    config = parse_config(SIM_FLEET, "sim.toml")
    app = EdgetopApp(config, clock=lambda: 116.0)
    async with app.run_test(size=(120, 40)) as pilot:
        app.fleet = fixed_fleet()
        await pilot.pause()
        panels = {p.host_name: p for p in app.query(HostPanel)}
        assert panels["orin-7"].has_class("-stale")
        assert "last data 6s ago" in str(panels["orin-7"].border_subtitle)
        assert panels["bastion-cpu"].has_class("-down")
        assert not panels["gpu-a"].has_class("-stale")


def test_fleet_view_snapshot(snap_compare) -> None:
    config = parse_config(SIM_FLEET, "sim.toml")

    async def show_fixed_fleet(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.fleet = fixed_fleet()
        await pilot.pause()

    app = EdgetopApp(config, clock=lambda: 116.0)
    assert snap_compare(app, terminal_size=(120, 40), run_before=show_fixed_fleet)
