"""A pipeline in the interface: one table row, its stages in the side panel, stage lines in the
host panels; from a frozen snapshot with stage readings (no monitor, fixed clock)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from agentlines import sample
from fleets import SIM_PAIR
from rich.console import Console
from test_app import fixed_state, screen_text

from edgetop.core.config import parse_config
from edgetop.core.fleet import FleetSnapshot, HostView, apply
from edgetop.core.monitor import FleetMonitor
from edgetop.core.pipeline import StageSpec, deploy_pipeline
from edgetop.core.pipelineview import pipelines
from edgetop.remote.agent import scan_pipelines
from edgetop.remote.link import HostStatus, LinkEvent
from edgetop.remote.protocol import parse_line
from edgetop.tui.app import EdgetopApp
from edgetop.tui.cli import main
from edgetop.tui.deploy_commands import pipeline_dict, print_pipelines
from edgetop.tui.deployments import DeploymentsTable
from edgetop.tui.panels import HostPanel
from edgetop.tui.recommendation import RecommendationPanel

LABEL = "mobilenetv2-1a2b3c4d"


def stage(index: int, blocks: str, p50: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{LABEL}/{index}",
        "state": "running",
        "model": "mobilenetv2",
        "pipeline": LABEL,
        "stage": index,
        "blocks": blocks,
        "p50_ms": p50,
        "p90_ms": p50 * 1.2,
        "p99_ms": p50 * 1.5,
        "throughput": 1000.0 / p50,
        **extra,
    }


def pipeline_fleet(second: dict[str, Any] | None = None) -> FleetSnapshot:
    snap = FleetSnapshot((HostView("tb1", "ssh", "cpu", 1.0), HostView("tb2", "ssh", "cpu", 1.0)))
    readings = {"tb1": [stage(0, "0:12", 30.0)], "tb2": [second or stage(1, "12:20", 12.0)]}
    for name, deployments in readings.items():
        line = parse_line(sample(1, deployments=deployments))
        snap = apply(snap, LinkEvent(name, HostStatus.ONLINE, 110.0, sample=line))  # type: ignore[arg-type]
    return snap


def frozen_app(tmp_path: Path) -> EdgetopApp:
    config = parse_config(SIM_PAIR.format(jetson="xavier-1"), "sim.toml")
    return EdgetopApp(config, store=fixed_state(tmp_path), clock=lambda: 112.0)


def notices(app: EdgetopApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_pipeline_is_one_row_with_its_stages_beside_it(tmp_path: Path) -> None:
    app = frozen_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.fleet = pipeline_fleet()
        await pilot.pause()
        table = app.query_one(DeploymentsTable)
        assert table.keys == ["resnet50-1", "bert-base-1", "ssd-resnet34-1", LABEL]
        row = [str(c) for c in table.get_row(LABEL)]
        # id, model, device, status, SLO, p99, p50, tput, batch: end to end = stage 0's window
        assert row == [LABEL, "mobilenetv2", "tb1 → tb2", "running", "-", "45", "30", "33", "-"]

        panel = app.query_one(RecommendationPanel)
        assert not panel.display
        table.select(LABEL)
        await pilot.pause()
        assert panel.display and panel.border_title == "stages"
        assert "0. tb1  [0:12]  p50 30.0 ms  running" in panel.text
        assert "1. tb2  [12:20]  p50 12.0 ms  running" in panel.text

        screen = screen_text(app)
        assert "mobilenetv2 stage 0 [0:12] running" in screen
        assert "mobilenetv2 stage 1 [12:20] running" in screen
        panels = {p.host_name: p for p in app.query(HostPanel)}
        assert LABEL in panels["tb2"].search_text

        await pilot.press("x")
        await pilot.pause()
        assert any("its controller" in n for n in notices(app))
        assert table.keys[-1] == LABEL  # nothing was stopped or removed

        table.select("resnet50-1")
        await pilot.pause()
        assert not panel.display


async def test_a_dead_stage_fails_the_row_and_the_panel_says_which(tmp_path: Path) -> None:
    app = frozen_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.fleet = pipeline_fleet(stage(1, "12:20", 12.0, state="dead", reason="pid 4242 gone"))
        await pilot.pause()
        table = app.query_one(DeploymentsTable)
        assert str(table.get_row(LABEL)[3]) == "failed"
        table.select(LABEL)
        await pilot.pause()
        text = app.query_one(RecommendationPanel).text
        assert "1. tb2  [12:20]  p50 12.0 ms  dead" in text
        assert "stage 1 on tb2 is dead: pid 4242 gone" in text


async def test_sort_and_filter_keep_pipeline_rows(tmp_path: Path) -> None:
    app = frozen_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.fleet = pipeline_fleet()
        await pilot.pause()
        table = app.query_one(DeploymentsTable)
        for column in range(9):  # every column sorts with a pipeline among deployments
            app.sort_column = column
            await pilot.pause()
            assert LABEL in table.keys
        app.sort_column = 2  # device: "gpu-a/…" < "orin-7/…" < "tb1 → tb2"
        await pilot.pause()
        assert table.keys[-1] == LABEL
        app.filter_text = "tb2"
        await pilot.pause()
        assert table.keys == [LABEL]
        app.filter_text = "resnet"
        await pilot.pause()
        assert LABEL not in table.keys


LOCAL_PAIR = "".join(f'[[host]]\nname = "{n}"\ntransport = "local"\nkind = "cpu"\n\n' for n in "ab")


async def test_a_real_pipeline_on_two_local_hosts_is_seen_as_one_with_two_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy_pipeline and the hosts' agents meet at the default pipelines dir, under HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(LOCAL_PAIR)
    config = parse_config(LOCAL_PAIR, hosts)
    specs = [StageSpec("a", 0, 12), StageSpec("b", 12, 20)]
    pipeline = await deploy_pipeline(
        config, specs, model="mobilenetv2", options={"image_size": 64},
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    try:
        assert (tmp_path / ".local/state/edgetop/pipelines" / pipeline.label / "1").is_dir()

        def grouped(s: FleetSnapshot) -> bool:
            views = pipelines(s)
            return s.all_answered and len(views) == 1 and views[0].status == "running"

        async with FleetMonitor(config) as monitor:
            assert await monitor.wait_for(grouped, 60.0), monitor.snapshot
            (view,) = pipelines(monitor.snapshot)
        assert view.label == pipeline.label and view.model == "mobilenetv2"
        assert [(s.index, s.blocks, s.state) for s in view.stages] == [
            (0, "0:12", "running"),
            (1, "12:20", "running"),
        ]
        # Two `local` hosts are one machine: each sees both stage directories.
        assert all(s.hosts == ("a", "b") for s in view.stages)

        # `edgetop ps --json` lists it too (its own event loop: in a thread).
        argv = ["ps", "--json", "--hosts", str(hosts), "--state-dir", str(tmp_path / "state")]
        assert await asyncio.to_thread(main, argv) == 0
        listed = json.loads(capsys.readouterr().out)
        assert listed["deployments"] == []
        (row,) = listed["pipelines"]
        assert row["id"] == pipeline.label and row["status"] == "running"
        assert [s["blocks"] for s in row["stages"]] == ["0:12", "12:20"]
    finally:
        await pipeline.close()
    assert not any(
        d["state"] == "running"
        for d in scan_pipelines(str(tmp_path / ".local/state/edgetop/pipelines"))
    )


def test_ps_prints_a_pipeline_on_one_line_with_its_stages() -> None:
    views = pipelines(pipeline_fleet())
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_pipelines(views, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.count("\n") == 1
    assert f"pipeline {LABEL}  mobilenetv2  running  p50 30 ms  p99 45 ms  33/s" in text
    assert "stages 0:tb1 [0:12] running → 1:tb2 [12:20] running" in text
    listed = pipeline_dict(views[0])
    assert (listed["route"], listed["p50_ms"]) == ("tb1 → tb2", 30.0)
    assert [s["host"] for s in listed["stages"]] == ["tb1", "tb2"]
    json.dumps(listed)  # plain data
