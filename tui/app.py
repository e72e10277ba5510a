"""The interactive terminal: the fleet's devices, the deployments, the scheduler's advice.

State lives in reactive attributes (the fleet snapshot, auto-pilot, filter, sort); every
watcher funnels into `_render_all`, which updates the widgets in place. Slow work (the
scheduler, starting and moving workers, reconcile rounds) runs in workers, off the UI loop.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Input

from edgetop.core.advisor import PlannedMove, live_rebalance, live_recommendation
from edgetop.core.autopilot import Autopilot
from edgetop.core.config import FleetConfig
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.orchestrator import Orchestrator, recommendation_detail
from edgetop.core.pipelineview import PipelineView, pipelines
from edgetop.core.placement import Recommendation, Request, fmt_ms
from edgetop.core.profiles import get_profile
from edgetop.core.statestore import Decision, StateError, StateStore, default_state_dir
from edgetop.models.catalog import load_catalog
from edgetop.remote.errors import EdgetopError
from edgetop.remote.link import LinkEvent
from edgetop.remote.sim import SimDevice
from edgetop.tui import demo
from edgetop.tui.commands import KEYS, EdgetopCommands, bindings
from edgetop.tui.deployments import COLUMNS, DeploymentsTable, PendingRequest, table_rows
from edgetop.tui.panels import FleetSummary, HostPanel
from edgetop.tui.recommendation import RecommendationPanel
from edgetop.tui.screens import (
    ConfirmScreen,
    DeviceChoice,
    HelpScreen,
    KeyHelp,
    NewDeploymentScreen,
    NewRequest,
    OverrideScreen,
    RebalanceScreen,
)

REFRESH_S = 0.25  # redraw at most this often, however many hosts report in between
RECONCILE_S = 1.0  # a reconcile (or auto-pilot) round, and a re-read of the state directory


@dataclass(frozen=True)
class Advisor:
    """The scheduler's advice (core.advisor); tests hand in scripted ones."""

    recommend: Callable[..., tuple[Recommendation | None, str | None]] = live_recommendation
    rebalance: Callable[..., tuple[Sequence[PlannedMove], str | None]] = live_rebalance


def auto_step(orchestrator: Orchestrator) -> Callable[[], Awaitable[Any]]:
    """One unattended round: reconcile, triggers and guarded moves (core.autopilot), the same
    round `edgetop --auto` runs."""
    return Autopilot(orchestrator).step


class EdgetopApp(App[int]):
    TITLE = "edgetop"
    CSS_PATH = "edgetop.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings()  # type: ignore[assignment]
    COMMANDS = App.COMMANDS | {EdgetopCommands}
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]

    fleet: reactive[FleetSnapshot | None] = reactive(None, always_update=True)
    auto: reactive[bool] = reactive(False)
    filter_text: reactive[str] = reactive("")
    sort_column: reactive[int | None] = reactive(None)

    def __init__(
        self,
        config: FleetConfig,
        monitor: FleetMonitor | None = None,
        *,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        advisor: Advisor | None = None,
        auto: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.monitor = monitor
        self.store = store
        self.advisor = advisor or Advisor()
        self._clock = clock
        self._dirty = False
        self._panels: dict[str, HostPanel] = {}
        self.deployments: tuple[Deployment, ...] = ()
        self.pending: dict[str, PendingRequest] = {}
        self.pipelines: dict[str, PipelineView] = {}  # the fleet's, by label
        self._pending_ids = itertools.count(1)
        self.orchestrator = (
            Orchestrator(config, monitor, store)
            if monitor is not None and store is not None
            else None
        )
        self._step: Callable[[], Awaitable[Any]] | None = None
        self._round: Any = None  # the reconcile round in flight, if any
        self._power_top = {h.name: _power_top(h.device) for h in config.hosts}
        self.sub_title = str(config.path)
        self.set_reactive(EdgetopApp.auto, auto)

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield FleetSummary(id="summary")
        yield VerticalScroll(id="fleet")
        with Horizontal(id="lower"):
            yield DeploymentsTable(id="deployments")
            yield RecommendationPanel(id="recommendation")
        yield Input(placeholder="filter devices and deployments (Enter/Esc to close)", id="filter")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.query_one(RecommendationPanel).display = False
        self._load_state()
        if self.monitor is not None:
            self.monitor.subscribe(self._on_fleet_event)
            await self.monitor.start()
            if self.orchestrator is not None:
                self.orchestrator.place_simulated(self.deployments)
            self.fleet = self.monitor.snapshot
        # Events only mark the view dirty; the timer coalesces them (and ages stale data).
        self.set_interval(REFRESH_S, self._refresh_fleet)
        self.set_interval(RECONCILE_S, self._tick)
        self.query_one(DeploymentsTable).focus()

    async def on_unmount(self) -> None:
        if self.monitor is not None:
            await self.monitor.stop()

    # -- data in -----------------------------------------------------------------------------

    def _on_fleet_event(self, snapshot: FleetSnapshot, event: LinkEvent) -> None:
        self._dirty = True

    def _refresh_fleet(self) -> None:
        if self.monitor is not None and self._dirty:
            self._dirty = False
            self.fleet = self.monitor.snapshot
        elif self.fleet is not None:
            self.fleet = self.fleet  # ages tick on even when nothing arrives

    def _load_state(self) -> None:
        if self.store is None:
            return
        try:
            self.deployments = self.store.load()
        except StateError as exc:  # another writer's torn file is fixed by its next write
            self.notify(str(exc), severity="error", timeout=5)

    def _tick(self) -> None:
        self._load_state()
        if self.orchestrator is not None and (self._round is None or self._round.is_finished):
            self._round = self._reconcile_round()
        self._render_all()

    @work(group="reconcile", exit_on_error=False)
    async def _reconcile_round(self) -> None:
        """Auto on: the auto-pilot's round. Off: a reconcile that only marks statuses and
        adopts workers (how the table sees running and degraded)."""
        assert self.orchestrator is not None
        try:
            if self.auto:
                if self._step is None:
                    self._step = auto_step(self.orchestrator)
                await self._step()
            else:
                await self.orchestrator.reconcile_once("operator")
        except (EdgetopError, OSError) as exc:
            self.notify(f"reconcile: {exc}", severity="error")
        self._load_state()
        self._render_all()

    # -- rendering ------------------------------------------------------------------------------

    def watch_fleet(self, snapshot: FleetSnapshot | None) -> None:
        self._render_all()

    def watch_auto(self) -> None:
        self._render_all()

    def watch_filter_text(self) -> None:
        self._render_all()

    def watch_sort_column(self) -> None:
        self._render_all()

    def _render_all(self) -> None:
        # A timer may still fire while the app shuts down and its widgets are removed.
        if not self.is_mounted or not self.is_running:
            return
        snapshot = self.fleet
        if snapshot is not None:
            self._render_fleet(snapshot)
            self.pipelines = {p.label: p for p in pipelines(snapshot)}
        table = self.query_one(DeploymentsTable)
        table.show(
            table_rows(
                self.deployments,
                list(self.pending.values()),
                snapshot,
                filter_text=self.filter_text,
                sort_column=self.sort_column,
                views=tuple(self.pipelines.values()),
            )
        )
        self._render_recommendation()

    def _render_fleet(self, snapshot: FleetSnapshot) -> None:
        now = self._clock()
        self.query_one(FleetSummary).show(
            snapshot, self.deployments, auto=self.auto, filter_text=self.filter_text
        )
        on_host: dict[str, list[Deployment]] = {}
        for d in self.deployments:
            if d.status.active and d.where is not None:
                on_host.setdefault(d.where.host, []).append(d)
        new: list[HostPanel] = []
        needle = self.filter_text.strip().lower()
        for host in snapshot.hosts:
            panel = self._panels.get(host.name)
            if panel is None:
                # Widget ids can't hold every character a host name may, so panels are keyed here.
                panel = self._panels[host.name] = HostPanel(host)
                new.append(panel)
            panel.show(host, now, on_host.get(host.name, ()), self._power_top.get(host.name))
            panel.display = not needle or needle in panel.search_text
        if new:
            self.query_one("#fleet").mount_all(new)  # one layout pass for a whole fleet

    def _render_recommendation(self) -> None:
        key = self.query_one(DeploymentsTable).selected or ""
        self.query_one(RecommendationPanel).show(self.pending.get(key) or self.pipelines.get(key))

    @on(DeploymentsTable.Selected)
    def _selection_moved(self) -> None:
        self._render_recommendation()

    @on(DataTable.RowSelected)
    def _row_entered(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value in self.pending:
            self.action_accept()

    # -- selection helpers ----------------------------------------------------------------

    def _selected(self) -> tuple[PendingRequest | None, Deployment | None]:
        key = self.query_one(DeploymentsTable).selected
        if key is None:
            return None, None
        if key in self.pending:
            return self.pending[key], None
        return None, next((d for d in self.deployments if d.id == key), None)

    def _pipeline_refused(self) -> bool:
        """A pipeline row is the fleet's report of a pipeline its controller (`edgetop
        partition --deploy`) started and owns: the interface shows it, it does not drive it."""
        key = self.query_one(DeploymentsTable).selected
        if key not in self.pipelines or key in self.pending:
            return False
        if any(d.id == key for d in self.deployments):  # a deployment's own id wins
            return False
        self.notify(
            f"{key} is a pipeline: its controller (edgetop partition --deploy) owns it",
            severity="warning",
        )
        return True

    def _need_orchestrator(self) -> Orchestrator | None:
        if self.orchestrator is None:
            self.notify("no live fleet: this view only shows", severity="warning")
        return self.orchestrator

    # -- new deployment and its recommendation --------------------------------------------

    def action_new_deployment(self) -> None:
        self.push_screen(NewDeploymentScreen(sorted(load_catalog())), self._new_request)

    def _new_request(self, req: NewRequest | None) -> None:
        if req is None:
            return
        request = Request(
            req.model,
            load_catalog()[req.model],
            req.batch,
            req.slo_ms,
            req.scenario,
            req.qps,
        )
        pid = f"new-{next(self._pending_ids)}"
        self.pending[pid] = PendingRequest(pid, request)
        self._render_all()
        self.query_one(DeploymentsTable).select(pid)
        self._render_recommendation()
        self._ask(pid, request, self.fleet)

    @work(thread=True, group="recommend", exit_on_error=False)
    def _ask(self, pid: str, request: Request, snapshot: FleetSnapshot | None) -> None:
        if snapshot is None:
            rec, why = None, "no fleet snapshot yet"
        else:
            try:
                rec, why = self.advisor.recommend(request, snapshot, self.config)
            except Exception as exc:  # shown in the panel; the interface keeps going
                rec, why = None, f"the scheduler failed: {exc}"
        self.call_from_thread(self._answered, pid, rec, why)

    def _answered(self, pid: str, rec: Recommendation | None, why: str | None) -> None:
        p = self.pending.get(pid)
        if p is None:  # discarded while the scheduler thought: drop the stale answer
            return
        self.pending[pid] = PendingRequest(pid, p.request, rec, why, asking=False)
        self._render_all()

    # -- accept, override, stop ---------------------------------------------------------------

    def action_accept(self) -> None:
        p, _ = self._selected()
        if p is None:
            self.notify("select a pending deployment (n makes one)", severity="warning")
            return
        if p.asking:
            self.notify("the scheduler is still thinking", severity="warning")
            return
        chosen = p.recommendation.chosen if p.recommendation else None
        if chosen is None:
            self.notify("nothing to accept: pick a device with o", severity="warning")
            return
        self._place(p, Where(chosen.host, chosen.device))

    def _place(self, p: PendingRequest, where: Where) -> None:
        if self._need_orchestrator() is None:
            return
        del self.pending[p.id]
        self._render_all()
        self._deploy(p, where)

    @work(group="ops", exit_on_error=False)
    async def _deploy(self, p: PendingRequest, where: Where) -> None:
        assert self.orchestrator is not None
        try:
            d = await self.orchestrator.deploy(p.request, where, "operator", p.recommendation)
        except EdgetopError as exc:
            self.pending[p.id] = p  # nothing was recorded: the request is still there
            self.notify(f"{p.request.model}: {exc}", severity="error", timeout=6)
            self._render_all()
            return
        self._load_state()
        self._render_all()
        self.query_one(DeploymentsTable).select(d.id)
        if d.status is Status.FAILED:
            self.notify(f"{d.id} failed: {d.reason}", severity="error", timeout=6)
        else:
            self.notify(f"{d.id}: {d.status.value} on {where}")

    def action_override(self) -> None:
        if self._pipeline_refused():
            return
        p, d = self._selected()
        if p is None and (d is None or d.status not in (Status.RUNNING, Status.DEGRADED)):
            self.notify("select a pending or running deployment", severity="warning")
            return
        snapshot = self.fleet
        if snapshot is None:
            return
        rec = p.recommendation if p is not None else None
        slo = p.request.slo_ms if p is not None else d.slo_ms if d is not None else 0.0
        choices = device_choices(snapshot, rec, slo, exclude=d.where if d else None)
        what = p.id if p is not None else d.id if d is not None else ""
        self.push_screen(
            OverrideScreen(f"Place {what} on…", choices),
            lambda c: self._override_chosen(what, c),
        )

    def _override_chosen(self, key: str, choice: DeviceChoice | None) -> None:
        if choice is None:
            return
        if choice.warning is None:
            self._override_apply(key, choice, True)
            return
        self.push_screen(
            ConfirmScreen(f"Place {key} on {choice.where} anyway?", choice.warning),
            lambda yes: self._override_apply(key, choice, bool(yes)),
        )

    def _override_apply(self, key: str, choice: DeviceChoice, yes: bool) -> None:
        if not yes:
            return
        if choice.warning:
            self.notify(f"override: {choice.warning}", severity="warning", timeout=6)
        if key in self.pending:
            self._place(self.pending[key], choice.where)
        elif self._need_orchestrator() is not None:
            self._move([(key, choice.where, "moved by the operator")])

    def action_stop(self) -> None:
        if self._pipeline_refused():
            return
        p, d = self._selected()
        if p is not None:
            del self.pending[p.id]
            self.notify(f"{p.id} discarded")
            self._render_all()
            return
        if d is None or d.status is Status.STOPPED:
            self.notify("select a deployment to stop", severity="warning")
            return
        if self._need_orchestrator() is not None:
            self._stop(d.id)

    @work(group="ops", exit_on_error=False)
    async def _stop(self, deployment_id: str) -> None:
        assert self.orchestrator is not None
        try:
            d = await self.orchestrator.stop(deployment_id, "operator")
        except EdgetopError as exc:
            self.notify(f"stop {deployment_id}: {exc}", severity="error")
            return
        self.notify(f"{d.id}: stopped")
        self._load_state()
        self._render_all()

    # -- rebalance -------------------------------------------------------------------------

    def action_rebalance(self) -> None:
        if self._need_orchestrator() is None or self.fleet is None:
            return
        self.notify("planning a rebalance…", timeout=2)
        self._plan(self.deployments, self.fleet)

    @work(thread=True, exclusive=True, group="rebalance", exit_on_error=False)
    def _plan(self, deployments: tuple[Deployment, ...], snapshot: FleetSnapshot) -> None:
        try:
            moves, why = self.advisor.rebalance(deployments, snapshot, self.config)
        except Exception as exc:
            moves, why = (), f"the scheduler failed: {exc}"
        self.call_from_thread(self._planned, tuple(moves), why)

    def _planned(self, moves: tuple[PlannedMove, ...], why: str | None) -> None:
        if not moves:
            self.notify(why or "no move with a real predicted gain", timeout=4)
            return
        self.push_screen(RebalanceScreen(moves, why), lambda ok: self._rebalance(moves, ok))

    def _rebalance(self, moves: tuple[PlannedMove, ...], accepted: bool | None) -> None:
        if not accepted:
            if self.store is not None:
                self.store.record(
                    Decision(
                        "operator",
                        "rebalance-rejected",
                        "",
                        {"moves": [_move_dict(m) for m in moves]},
                        time.time(),
                    )
                )
            self.notify("rebalance rejected: nothing moved")
            return
        self._move([(m.deployment_id, m.target, m.reason) for m in moves])

    @work(group="ops", exit_on_error=False)
    async def _move(self, moves: list[tuple[str, Where, str]]) -> None:
        """Make-before-break, one deployment after another (the plan assumed that order)."""
        assert self.orchestrator is not None
        for deployment_id, target, reason in moves:
            try:
                d = await self.orchestrator.move(deployment_id, target, "operator", reason)
            except EdgetopError as exc:
                self.notify(f"move {deployment_id}: {exc}", severity="error", timeout=6)
                continue
            self._load_state()
            self._render_all()
            ok = d.where == target
            self.notify(
                f"{d.id}: {'moved to ' + str(target) if ok else d.reason}",
                severity="information" if ok else "error",
            )

    # -- auto, filter, sort, help -------------------------------------------------------------

    def action_toggle_auto(self) -> None:
        self.auto = not self.auto
        if self.store is not None:
            action = "auto-on" if self.auto else "auto-off"
            self.store.record(Decision("operator", action, "", {}, time.time()))
        self.notify(f"auto-pilot {'ON' if self.auto else 'off'}")

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self._close_filter()

    def _close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = False
        self.query_one(DeploymentsTable).focus()

    def key_escape(self) -> None:
        if self.query_one("#filter", Input).has_focus:
            self._close_filter()

    def action_sort(self) -> None:
        current = self.sort_column
        self.sort_column = 0 if current is None else (current + 1 if current + 1 < 9 else None)
        name = "none (as created)" if self.sort_column is None else COLUMNS[self.sort_column]
        self.notify(f"sorted by {name}", timeout=2)

    def action_help(self) -> None:
        self.push_screen(HelpScreen([KeyHelp(k.shown, k.description) for k in KEYS]))

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    # -- demo keys on simulated hosts ---------------------------------------------------------

    def _demo_target(self) -> SimDevice | None:
        """The focused host panel's simulated device, else the selected deployment's."""
        host: str | None = None
        if isinstance(self.focused, HostPanel):
            host = self.focused.host_name
        else:
            _, d = self._selected()
            host = d.where.host if d is not None and d.where is not None else None
        device = self.monitor.sim_device(host) if self.monitor and host else None
        if device is None:
            self.notify(
                "demo keys act on a simulated host: focus its panel (Tab or click)",
                severity="warning",
            )
        return device

    def _demo(self, control: Callable[[SimDevice], str]) -> None:
        device = self._demo_target()
        if device is not None:
            self.notify(control(device))

    def action_spike(self) -> None:
        self._demo(demo.toggle_spike)

    def action_throttle(self) -> None:
        self._demo(demo.toggle_throttle)

    def action_down(self) -> None:
        self._demo(demo.toggle_down)


def _power_top(profile: str | None) -> dict[str, float]:
    """A device's full power bar: its profile's TDP where the host is simulated."""
    if profile is None:
        return {}
    try:
        return {"gpu0": get_profile(profile).tdp_w}
    except KeyError:
        return {}


def _move_dict(m: PlannedMove) -> dict[str, Any]:
    return {
        "deployment": m.deployment_id,
        "from": str(m.source),
        "to": str(m.target),
        "gain": m.gain,
    }


def device_choices(
    snapshot: FleetSnapshot,
    rec: Recommendation | None,
    slo_ms: float,
    exclude: Where | None = None,
) -> list[DeviceChoice]:
    """Every device of the fleet, labelled with the scheduler's view of it; a warning where
    the scheduler turned it down or predicts it misses the SLO."""
    rank = {c.key: (i, c) for i, c in enumerate(rec.candidates, 1)} if rec else {}
    out: list[DeviceChoice] = []
    for host in snapshot.hosts:
        devices = [d.id for d in host.accelerators()] or [d.id for d in host.devices] or ["gpu0"]
        for device in devices:
            where = Where(host.name, device)
            if where == exclude:
                continue
            _, _, warning = recommendation_detail(rec, where)
            if str(where) in rank:
                i, c = rank[str(where)]
                label = f"#{i}  predicted p99 " + ("-" if c.p99_ms is None else fmt_ms(c.p99_ms))
                if c.p99_ms is not None and c.p99_ms > slo_ms:
                    warning = f"{where} is predicted to miss the SLO: p99 {fmt_ms(c.p99_ms)} ms"
                    warning += f" > {fmt_ms(slo_ms)} ms"
            elif warning is not None:
                label = warning.split(": ", 1)[-1]
            else:
                label = "no prediction" if rec is None else "not considered"
            if not host.answered:
                label = f"{host.status.value}; {label}"
            out.append(DeviceChoice(where, label, warning))
    return out


def run_app(config: FleetConfig, args: argparse.Namespace) -> int:
    store = StateStore(getattr(args, "state_dir", None) or default_state_dir())
    try:
        store.load()
    except StateError as exc:
        print(f"edgetop: error: {exc}")
        return 2
    monitor = FleetMonitor(config, accept_new_hosts=getattr(args, "accept_new_hosts", False))
    EdgetopApp(config, monitor, store=store).run()
    return 0
