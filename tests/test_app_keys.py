"""Every key flow of the interface, headless on a simulated fleet with a temporary state dir."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fleets import SIM_PAIR
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Select

from edgetop.core.advisor import PlannedMove
from edgetop.core.config import parse_config
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.placement import Candidate, Recommendation, Rejected, Request
from edgetop.core.statestore import StateStore
from edgetop.models.catalog import load_catalog
from edgetop.tui.app import Advisor, EdgetopApp
from edgetop.tui.commands import KEYS
from edgetop.tui.deployments import DeploymentsTable
from edgetop.tui.panels import FleetSummary, HostPanel
from edgetop.tui.recommendation import RecommendationPanel
from edgetop.tui.screens import (
    ConfirmScreen,
    HelpScreen,
    NewDeploymentScreen,
    OverrideScreen,
    RebalanceScreen,
)

GPU = Where("a100-1", "gpu0")
JETSON = Where("xavier-1", "gpu0")
SIZE = (120, 40)


def sim_app(tmp_path: Path, advisor: Advisor | None = None) -> EdgetopApp:
    config = parse_config(SIM_PAIR.format(jetson="xavier-1"), "sim.toml")
    return EdgetopApp(
        config, FleetMonitor(config), store=StateStore(tmp_path / "state"), advisor=advisor
    )


async def until(pilot: Pilot[Any], ok: Callable[[], object], timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if ok():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


async def fleet_up(pilot: Pilot[Any], app: EdgetopApp) -> None:
    await until(pilot, lambda: app.fleet is not None and app.fleet.all_answered)


def stored(app: EdgetopApp) -> dict[str, Deployment]:
    assert app.store is not None
    return {d.id: d for d in app.store.load()}


def actions(app: EdgetopApp) -> list[str]:
    assert app.store is not None
    return [f"{e['who']}:{e['action']}" for e in app.store.decisions()]


async def new_request(pilot: Pilot[Any], model: str, batch: int, slo: float) -> None:
    await pilot.press("n")
    screen = pilot.app.screen
    assert isinstance(screen, NewDeploymentScreen)
    screen.query_one("#model", Select).value = model
    screen.query_one("#batch", Input).value = str(batch)
    screen.query_one("#slo", Input).value = str(slo)
    await pilot.click("#ok")
    await pilot.pause()


def scripted_recommendation(request: Request) -> Recommendation:
    return Recommendation(
        "learned",
        request,
        (Candidate("a100-1", "gpu0", 0, 2.0, 3.0, 0.9, "fastest predicted p99"),),
        (Rejected("xavier-1", "gpu0", "needs 40.0 GiB, 28.0 GiB free"),),
    )


def scripted(moves: Sequence[PlannedMove] = ()) -> Advisor:
    return Advisor(
        recommend=lambda request, *_: (scripted_recommendation(request), None),
        rebalance=lambda *_: (tuple(moves), None),
    )


async def test_new_deployment_asks_the_real_scheduler(tmp_path: Path) -> None:
    app = sim_app(tmp_path)  # the shipped weights: ranked candidates, or why there are none
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        await new_request(pilot, "resnet50", 8, 50.0)
        await until(pilot, lambda: not app.pending["new-1"].asking)
        p = app.pending["new-1"]
        text = app.query_one(RecommendationPanel).text
        rec = p.recommendation
        if rec is not None and rec.chosen is not None:
            assert f"1. {rec.chosen.key}" in text
        elif rec is not None:
            # Every device turned down (here: both hosts, polled every 50 ms, were stale for a
            # moment while the app was busy, ~3 runs in 40): the panel names each, with why.
            assert "no device qualifies" in text
            assert all(f"{x.host}/{x.device}: {x.reason[:20]}" in text for x in rec.rejected)
        else:  # e.g. weights of another feature schema while they are being retrained
            assert p.why_none is not None and "no recommendation" in text


async def test_new_deployment_shows_its_recommendation_and_accept_runs_it(
    tmp_path: Path,
) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        await new_request(pilot, "resnet50", 8, 50.0)
        assert "new-1" in app.pending
        assert app.query_one(DeploymentsTable).selected == "new-1"
        panel = app.query_one(RecommendationPanel)
        await until(pilot, lambda: not app.pending["new-1"].asking)
        assert panel.display and "1. a100-1/gpu0  p99 3 ms  conf 0.90" in panel.text
        assert "a/Enter accept" in panel.text
        await pilot.press("a")
        await until(pilot, lambda: any(d.status is Status.RUNNING for d in stored(app).values()))
        (d,) = stored(app).values()
        assert (d.model, d.batch, d.where) == ("resnet50", 8, GPU)
        accept = next(e for e in app.store.decisions() if e["action"] == "accept")  # type: ignore[union-attr]
        assert accept["who"] == "operator" and accept["followed"]["p99_ms"] == 3.0
        assert not app.pending
        await until(pilot, lambda: d.id in app.query_one(DeploymentsTable).keys)


async def test_enter_on_a_pending_row_accepts_it(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        await new_request(pilot, "resnet50", 1, 30.0)
        await until(pilot, lambda: not app.pending["new-1"].asking)
        app.query_one(DeploymentsTable).focus()
        await pilot.press("enter")
        await until(pilot, lambda: [d.where for d in stored(app).values()] == [GPU])


async def test_override_onto_a_rejected_device_warns_and_logs_the_override(
    tmp_path: Path,
) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        await new_request(pilot, "resnet50", 1, 30.0)
        await until(pilot, lambda: not app.pending["new-1"].asking)
        panel_text = app.query_one(RecommendationPanel).text
        assert "✗ xavier-1/gpu0: needs 40.0 GiB" in panel_text
        await pilot.press("o")
        screen = app.screen
        assert isinstance(screen, OverrideScreen)
        options = screen.query_one(OptionList)
        wanted = next(i for i, c in enumerate(screen.choices) if c.where == JETSON)
        assert screen.choices[wanted].warning is not None
        options.highlighted = wanted
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "needs 40.0 GiB" in app.screen.message
        await pilot.press("y")
        await until(pilot, lambda: any(d.status.active for d in stored(app).values()))
        (d,) = stored(app).values()
        assert d.where == JETSON
        override = next(e for e in app.store.decisions() if e["action"] == "override")  # type: ignore[union-attr]
        assert override["who"] == "operator"
        assert override["rejected_because"] == "needs 40.0 GiB, 28.0 GiB free"
        assert "predicted to miss" in override["warning"]


async def test_override_cancelled_at_the_warning_places_nothing(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        await new_request(pilot, "resnet50", 1, 30.0)
        await until(pilot, lambda: not app.pending["new-1"].asking)
        await pilot.press("o")
        screen = app.screen
        assert isinstance(screen, OverrideScreen)
        screen.query_one(OptionList).highlighted = next(
            i for i, c in enumerate(screen.choices) if c.where == JETSON
        )
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert "new-1" in app.pending and not stored(app)


async def deployed(app: EdgetopApp, where: Where, model: str = "resnet50") -> Deployment:
    assert app.orchestrator is not None
    request = Request(model, load_catalog()[model], 1, 30.0)
    return await app.orchestrator.deploy(request, where, "operator")


async def test_rebalance_rejected_moves_nothing_and_accepted_moves(tmp_path: Path) -> None:
    moves: list[PlannedMove] = []
    app = sim_app(tmp_path, scripted(moves))
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        d = await deployed(app, JETSON)
        assert d.status is Status.RUNNING
        moves.append(
            PlannedMove(d.id, "resnet50", JETSON, GPU, 20.0, 25.0, 5.0, True, "faster on a100")
        )
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RebalanceScreen))
        assert "resnet50-1" in str(app.screen.query_one(".move").render())
        await pilot.press("r")
        await pilot.pause()
        assert "operator:rebalance-rejected" in actions(app)
        assert stored(app)[d.id].where == JETSON

        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RebalanceScreen))
        await pilot.press("a")
        await until(pilot, lambda: stored(app)[d.id].where == GPU)
        await until(pilot, lambda: stored(app)[d.id].status is Status.RUNNING)
        assert {"operator:move", "operator:move-done"} <= set(actions(app))


async def test_rebalance_without_moves_says_so(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        await pilot.press("r")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, RebalanceScreen)


async def test_stop_the_selected_deployment(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        d = await deployed(app, GPU)
        table = app.query_one(DeploymentsTable)
        await until(pilot, lambda: d.id in table.keys)
        table.select(d.id)
        await pilot.press("x")
        await until(pilot, lambda: stored(app)[d.id].status is Status.STOPPED)
        assert "operator:stop" in actions(app)
        device = app.monitor.sim_device("a100-1")  # type: ignore[union-attr]
        assert device is not None and not device.deployments
        await until(pilot, lambda: d.id not in table.keys)  # stopped is history: `ps` has it


async def test_x_discards_a_pending_request(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        await new_request(pilot, "resnet50", 1, 30.0)
        await pilot.press("x")
        await pilot.pause()
        assert not app.pending and not stored(app)
        assert not app.query_one(RecommendationPanel).display


async def test_auto_toggles_and_is_logged(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        await pilot.press("A")
        await pilot.pause()
        assert app.auto
        assert "auto ON" in str(app.query_one(FleetSummary).render())
        await pilot.pause(1.2)  # a round runs with the auto-pilot
        await pilot.press("A")
        await pilot.pause()
        assert not app.auto
        assert "auto off" in str(app.query_one(FleetSummary).render())
        assert actions(app)[-2:] == ["operator:auto-on", "operator:auto-off"]


async def test_filter_hides_other_devices_and_deployments(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        d = await deployed(app, GPU)
        table = app.query_one(DeploymentsTable)
        await until(pilot, lambda: d.id in table.keys)
        await pilot.press("slash")
        await pilot.press(*"xavier")
        await pilot.pause()
        panels = {p.host_name: p.display for p in app.query(HostPanel)}
        assert panels == {"a100-1": False, "xavier-1": True}
        assert table.keys == []
        assert "filter: xavier" in str(app.query_one(FleetSummary).render())
        await pilot.press("enter")
        assert not app.query_one("#filter").display
        app.query_one("#filter", Input).value = "a100"
        await pilot.pause()
        assert table.keys == [d.id]


async def test_help_lists_every_key(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#keys").render())
        for k in KEYS:
            assert k.shown in text and k.description in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_command_palette_offers_the_actions(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"help")
        await pilot.pause(1.0)  # the palette searches its providers asynchronously
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), timeout=5)


async def test_sort_cycles_through_the_columns(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        for model in ("resnet50", "mobilenetv2"):
            await deployed(app, GPU, model)
        table = app.query_one(DeploymentsTable)
        await until(pilot, lambda: len(table.keys) == 2)
        assert table.keys == ["resnet50-1", "mobilenetv2-1"]  # as created
        await pilot.press("s")  # by id
        await pilot.pause()
        assert app.sort_column == 0 and table.keys == ["mobilenetv2-1", "resnet50-1"]
        for _ in range(9):
            await pilot.press("s")
        assert app.sort_column is None


async def test_demo_keys_act_on_the_focused_simulated_host(tmp_path: Path) -> None:
    app = sim_app(tmp_path, scripted())
    async with app.run_test(size=SIZE) as pilot:
        await fleet_up(pilot, app)
        assert app.monitor is not None
        jetson = app.monitor.sim_device("xavier-1")
        assert jetson is not None
        panel = next(p for p in app.query(HostPanel) if p.host_name == "xavier-1")
        panel.focus()
        await pilot.press("T")
        assert jetson.forced_temp_c == 92.0 and jetson.power_mode == "10W"
        await pilot.press("S")
        assert jetson.spike > 0
        await until(pilot, lambda: (app.fleet.host("xavier-1").devices[1].util or 0) > 50)  # type: ignore[union-attr]
        await pilot.press("D")
        assert jetson.down
        await until(pilot, lambda: not app.fleet.host("xavier-1").answered)  # type: ignore[union-attr]
        await until(pilot, lambda: panel.has_class("-stale") or panel.has_class("-down"))
