"""The Textual interface, driven headlessly."""

from pathlib import Path

from agentlines import hello, sample
from fleets import SIM_PAIR

from edgetop.core.config import parse_config
from edgetop.core.fleet import FleetSnapshot, HostView, apply
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.placement import Candidate, Recommendation, Rejected, Request
from edgetop.core.statestore import StateStore
from edgetop.models.catalog import load_catalog
from edgetop.remote.link import HostStatus, LinkEvent
from edgetop.remote.protocol import parse_line
from edgetop.tui.app import EdgetopApp
from edgetop.tui.deployments import DeploymentsTable, PendingRequest
from edgetop.tui.panels import FleetSummary, HostPanel, sparkline
from edgetop.tui.recommendation import RecommendationPanel

SIM_FLEET = SIM_PAIR.format(jetson="xavier.lab-1")


WORKERS = [
    {
        "id": "resnet50-1.1",
        "state": "running",
        "model": "resnet50",
        "batch": 8,
        "p50_ms": 4.1,
        "p90_ms": 5.0,
        "p99_ms": 6.3,
        "throughput": 1830.0,
    },
    {
        "id": "bert-base-1.1",
        "state": "running",
        "model": "bert-base",
        "batch": 4,
        "p50_ms": 31.0,
        "p90_ms": 44.0,
        "p99_ms": 58.0,
        "throughput": 120.0,
    },
]


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
                "gpu-a",
                HostStatus.ONLINE,
                100.0 + seq,
                sample=parse_line(sample(seq, devices=gpu, deployments=WORKERS)),
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


def fixed_state(directory: Path) -> StateStore:
    """Deployments matching fixed_fleet's workers: one healthy, one violating, one failed."""
    gpu = Where("gpu-a", "gpu0")
    store = StateStore(directory)
    store.save(
        (
            Deployment("resnet50-1", "resnet50", 8, 20.0, status=Status.RUNNING, where=gpu,
                       worker="resnet50-1.1", created=90.0, updated=95.0),
            Deployment("bert-base-1", "bert-base", 4, 40.0, status=Status.DEGRADED, where=gpu,
                       worker="bert-base-1.1", created=91.0, updated=99.0),
            Deployment("ssd-resnet34-1", "ssd-resnet34", 1, 100.0, status=Status.FAILED,
                       where=Where("orin-7", "gpu0"), worker="ssd-resnet34-1.1",
                       reason="needs 9.1 GiB, 1.4 GiB free", created=92.0, updated=93.0),
        )
    )  # fmt: skip
    return store


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


def snapshot_app(tmp_path: Path) -> EdgetopApp:
    """No monitor and no timer-fed data: the fixed fleet and state, at a fixed clock."""
    config = parse_config(SIM_FLEET, "sim.toml")
    return EdgetopApp(config, store=fixed_state(tmp_path), clock=lambda: 116.0)


async def show_fixed_fleet(pilot) -> None:  # type: ignore[no-untyped-def]
    pilot.app.fleet = fixed_fleet()
    await pilot.pause()


def test_fleet_view_snapshot(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = snapshot_app(tmp_path)
    assert snap_compare(app, terminal_size=(120, 40), run_before=show_fixed_fleet)


def test_fleet_view_snapshot_80x24(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = snapshot_app(tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=show_fixed_fleet)


def pending_with_recommendation() -> PendingRequest:
    request = Request("bert-large", load_catalog()["bert-large"], 4, 60.0)
    rec = Recommendation(
        "learned",
        request,
        (
            Candidate("gpu-a", "gpu0", 0, 21.0, 34.0, 0.82, "fastest predicted p99; 1 co-runner"),
            Candidate("orin-7", "gpu0", 1, 48.0, 71.0, 0.55, "misses the SLO by 11 ms"),
        ),
        (Rejected("bastion-cpu", "cpu", "offline"),),
    )
    return PendingRequest("new-1", request, rec, asking=False)


def test_recommendation_panel_snapshot(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def show_pending(pilot) -> None:  # type: ignore[no-untyped-def]
        await show_fixed_fleet(pilot)
        pilot.app.pending["new-1"] = pending_with_recommendation()
        pilot.app._render_all()
        pilot.app.query_one(DeploymentsTable).select("new-1")
        await pilot.pause()

    app = snapshot_app(tmp_path)
    assert snap_compare(app, terminal_size=(120, 40), run_before=show_pending)


async def test_recommendation_panel_follows_the_selected_row(tmp_path: Path) -> None:
    app = snapshot_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_fixed_fleet(pilot)
        app.pending["new-1"] = pending_with_recommendation()
        app._render_all()
        table = app.query_one(DeploymentsTable)
        table.select("new-1")
        await pilot.pause()
        panel = app.query_one(RecommendationPanel)
        assert panel.display
        assert "1. gpu-a/gpu0  p99 34 ms  conf 0.82" in panel.text
        assert "✗ bastion-cpu/cpu: offline" in panel.text
        table.select("resnet50-1")
        await pilot.pause()
        assert not panel.display


async def test_table_joins_the_state_with_the_live_readings(tmp_path: Path) -> None:
    app = snapshot_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_fixed_fleet(pilot)
        table = app.query_one(DeploymentsTable)
        assert table.keys == ["resnet50-1", "bert-base-1", "ssd-resnet34-1"]
        row = [str(c) for c in table.get_row("bert-base-1")]
        assert row[:6] == ["bert-base-1", "bert-base", "gpu-a/gpu0", "degraded", "40", "58"]
        summary = str(app.query_one(FleetSummary).render())
        assert "1 healthy" in summary and "2 violating" in summary
        screen = screen_text(app)
        assert "▶ resnet50-1 resnet50 b8 running  p99 6.3 ms/20" in screen
        assert "gpu-a [GPU server]" in screen and "orin-7 [Jetson]" in screen
        assert "stale · last data 6s ago" in screen


def screen_text(app: EdgetopApp) -> str:
    """What the terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def test_the_recommendation_panel_marks_a_trial() -> None:
    from rich.console import Console

    from edgetop.core.placement import Candidate, Recommendation, Request
    from edgetop.models.catalog import load_catalog
    from edgetop.tui.deployments import PendingRequest
    from edgetop.tui.recommendation import recommendation_text

    request = Request("gpt2", load_catalog()["gpt2"], 32, 130.0)
    trial = Candidate("a100-1", "gpu0", 0, 130.0, 140.0, 0.06, "trial: ...", trial=True)
    pending = PendingRequest(
        "p1", request, Recommendation("learned", request, (trial,)), None, False
    )
    console = Console(width=120, record=True)
    console.print(recommendation_text(pending))
    lines = console.export_text().splitlines()
    assert any("a100-1/gpu0" in line and line.rstrip().endswith("trial") for line in lines)
