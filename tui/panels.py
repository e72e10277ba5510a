"""Widgets of the fleet view: one panel per host, a summary bar."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.remote.link import HostStatus
from edgetop.remote.protocol import DeploymentReading
from edgetop.tui import format as fmt

SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 20
NAME_WIDTH = 32
STATUS_STYLE = {
    HostStatus.ONLINE: "bold green",
    HostStatus.CONNECTING: "yellow",
    HostStatus.STALE: "yellow",
    HostStatus.OFFLINE: "bold red",
    HostStatus.AUTH_FAILED: "bold red",
    HostStatus.HOST_KEY_REJECTED: "bold red",
}


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH, top: float = 100.0) -> str:
    """Utilisation history as block characters, newest on the right, scaled to 0..top."""
    recent = list(values)[-width:]
    cells = [
        SPARK_CHARS[min(len(SPARK_CHARS) - 1, int(v / top * len(SPARK_CHARS)))]
        for v in (max(0.0, min(top, v)) for v in recent)
    ]
    return "".join(cells).rjust(width)


def bar(value: float | None, width: int = 10) -> Text:
    if value is None:
        return Text(fmt.NA.ljust(width), style="dim")
    filled = round(max(0.0, min(100.0, value)) / 100 * width)
    style = "red" if value >= 90 else "yellow" if value >= 60 else "green"
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")


DEPLOYMENT_STYLE = {"running": "green", "starting": "yellow", "failed": "red", "dead": "red"}


def deployment_line(d: DeploymentReading) -> Text:
    """A worker on the host: what runs, and how fast it answers right now."""
    line = Text(" ▶ ", style=DEPLOYMENT_STYLE.get(d.state or "", "dim"))
    line.append(f"{d.model or d.id} b{d.batch if d.batch is not None else '?'} ")
    line.append(d.state or "unknown", style=DEPLOYMENT_STYLE.get(d.state or "", "dim"))
    if d.state in ("failed", "dead") and d.reason:
        line.append(f"  {d.reason[:60]}", style="red")
    elif d.p50_ms is not None:
        line.append(f"  p50 {fmt.ms(d.p50_ms)} p99 {fmt.ms(d.p99_ms)}")
        if d.throughput is not None:
            line.append(f"  {d.throughput:,.0f}/s")
    return line


class HostPanel(Static):
    """Live readings of one host; greyed, with their age, once they stop being live."""

    DEFAULT_CSS = """
    HostPanel {
        border: round $primary;
        padding: 0 1;
        height: auto;
    }
    HostPanel.-stale, HostPanel.-down {
        color: $text-muted;
        border: round $panel-lighten-2;
    }
    HostPanel.-down {
        border: round $error;
    }
    """

    def __init__(self, host: HostView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.host_name = host.name
        self.border_title = host.name

    def show(self, host: HostView, now: float) -> None:
        live = host.status is HostStatus.ONLINE
        self.set_class(host.status is HostStatus.STALE, "-stale")
        self.set_class(host.status.is_failure, "-down")
        subtitle = Text(host.status.value, style=STATUS_STYLE[host.status])
        if not live and host.samples:
            subtitle.append(f" · last data {fmt.age(host.age(now))}", style="dim")
        self.border_subtitle = subtitle
        self.update(self._body(host))

    def _body(self, host: HostView) -> Group | Text:
        if not host.devices:
            return Text(host.reason or "waiting for the first sample…", style="dim")
        lines: list[Text] = []
        for device in host.devices:
            # Two lines a device keep a panel readable at half a 120-column terminal.
            head = Text((device.name or device.id)[:NAME_WIDTH].ljust(NAME_WIDTH), style="bold")
            head.append(" ")
            head.append_text(bar(device.util))
            head.append(fmt.pct(device.util).rjust(5))
            detail = Text(" ")
            detail.append(fmt.mem(device.mem_used, device.mem_total).ljust(13))
            detail.append(fmt.temp(device.temp_c).rjust(6))
            detail.append(fmt.watts(device.power_w, device.power_limit_w).rjust(10))
            detail.append("  ")
            detail.append(sparkline(host.history.get(device.id, ()), SPARK_WIDTH), style="cyan")
            lines += [head, detail]
        lines += [deployment_line(d) for d in host.deployments]
        footer = Text(fmt.quota(host.cpu_quota, host.mem_limit), style="dim")
        if host.hello is not None:
            footer.append(f" · {host.hello.hostname}", style="dim")
        if host.reason:
            footer.append(f" · {host.reason}", style="red")
        if host.bad_lines:
            footer.append(f" · {host.bad_lines} bad lines skipped", style="yellow")
        lines.append(footer)
        return Group(*lines)


class FleetSummary(Static):
    DEFAULT_CSS = """
    FleetSummary {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    def show(self, snapshot: FleetSnapshot) -> None:
        total = len(snapshot.hosts)
        online = snapshot.count(HostStatus.ONLINE)
        stale = snapshot.count(HostStatus.STALE)
        down = sum(1 for h in snapshot.hosts if h.status.is_failure)
        devices = sum(len(h.accelerators()) for h in snapshot.hosts if h.devices)
        text = Text.assemble(
            ("hosts ", "bold"),
            (f"{online}/{total} online", "green"),
            ("  ·  ", "dim"),
            (f"{stale} stale", "yellow" if stale else "dim"),
            ("  ·  ", "dim"),
            (f"{down} down", "red" if down else "dim"),
            ("  ·  ", "dim"),
            f"{devices} accelerators",
            ("  ·  auto off", "dim"),
        )
        self.update(text)
