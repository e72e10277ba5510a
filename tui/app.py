"""The interactive terminal: one live panel per host."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Footer, Header

from edgetop.core.config import FleetConfig
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.monitor import FleetMonitor
from edgetop.remote.link import LinkEvent
from edgetop.tui.panels import FleetSummary, HostPanel

REFRESH_S = 0.25  # redraw at most this often, however many hosts report in between


class EdgetopApp(App[int]):
    TITLE = "edgetop"
    CSS_PATH = "edgetop.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        ("q", "quit", "Quit"),
        ("d", "toggle_dark", "Dark/light"),
    ]

    fleet: reactive[FleetSnapshot | None] = reactive(None, always_update=True)

    def __init__(
        self,
        config: FleetConfig,
        monitor: FleetMonitor | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.config = config
        self.monitor = monitor
        self._clock = clock
        self._dirty = False
        self._panels: dict[str, HostPanel] = {}
        self.sub_title = str(config.path)

    def compose(self) -> ComposeResult:
        yield Header()
        yield FleetSummary(id="summary")
        yield VerticalScroll(id="fleet")
        yield Footer()

    async def on_mount(self) -> None:
        if self.monitor is not None:
            self.monitor.subscribe(self._on_fleet_event)
            await self.monitor.start()
            self.fleet = self.monitor.snapshot
        # Events only mark the view dirty; the timer coalesces them (and ages stale data).
        self.set_interval(REFRESH_S, self._refresh_fleet)

    async def on_unmount(self) -> None:
        if self.monitor is not None:
            await self.monitor.stop()

    def _on_fleet_event(self, snapshot: FleetSnapshot, event: LinkEvent) -> None:
        self._dirty = True

    def _refresh_fleet(self) -> None:
        if self.monitor is not None and self._dirty:
            self._dirty = False
            self.fleet = self.monitor.snapshot
        elif self.fleet is not None:
            self.fleet = self.fleet  # ages tick on even when nothing arrives

    def watch_fleet(self, snapshot: FleetSnapshot | None) -> None:
        if snapshot is None:
            return
        now = self._clock()
        self.query_one(FleetSummary).show(snapshot)
        for host in snapshot.hosts:
            panel = self._panels.get(host.name)
            if panel is None:
                # Widget ids can't hold every character a host name may, so panels are keyed here.
                panel = self._panels[host.name] = HostPanel(host)
                self.query_one("#fleet").mount(panel)
            panel.show(host, now)

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"


def run_app(config: FleetConfig, args: argparse.Namespace) -> int:
    monitor = FleetMonitor(config, accept_new_hosts=getattr(args, "accept_new_hosts", False))
    EdgetopApp(config, monitor).run()
    return 0
