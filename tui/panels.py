"""Widgets of the fleet view: one panel per host with a block per device, a summary bar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.lifecycle import Deployment, Status
from edgetop.core.pipelineview import is_stage
from edgetop.core.reconciler import owner_of
from edgetop.remote.link import HostStatus
from edgetop.remote.protocol import DeploymentReading, DeviceReading
from edgetop.tui import format as fmt

SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 20
NAME_WIDTH = 22
SPARK_DEVICE = 12  # history cells beside a device's utilisation
BAR = 8  # utilisation bar cells
SMALL_BAR = 4  # memory, power and temperature bar cells
TEMP_TOP_C = 100.0  # a full temperature bar
HOST_BADGE = {"gpu-server": "GPU server", "jetson": "Jetson", "cpu": "CPU"}
DEVICE_BADGE = {"gpu": "GPU", "jetson": "JET", "cpu": "CPU"}
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
    """A worker (or a pipeline's stage) on the host: what runs, and how fast it answers."""
    line = Text(" ▶ ", style=DEPLOYMENT_STYLE.get(d.state or "", "dim"))
    if is_stage(d):
        line.append(f"{d.model or d.pipeline} stage {d.stage} [{d.blocks or '?'}] ")
    else:
        line.append(f"{d.model or d.id} b{d.batch if d.batch is not None else '?'} ")
    line.append(d.state or "unknown", style=DEPLOYMENT_STYLE.get(d.state or "", "dim"))
    if d.state in ("failed", "dead") and d.reason:
        line.append(f"  {d.reason[:60]}", style="red")
    elif d.p50_ms is not None:
        line.append(f"  p50 {fmt.ms(d.p50_ms)} p99 {fmt.ms(d.p99_ms)}")
        if d.throughput is not None:
            line.append(f"  {d.throughput:,.0f}/s")
    return line


def badges(host: HostView) -> str:
    """The host's kind badge, plus `simulated` for a sim host."""
    kind = HOST_BADGE.get(host.kind, host.kind)
    return f"{kind} · simulated" if host.transport == "sim" else kind


def share(value: float | None, top: float | None) -> float | None:
    """`value` as a percentage of `top` (None when either is unknown)."""
    if value is None or not top:
        return None
    return 100.0 * value / top


def device_lines(
    device: DeviceReading, history: Sequence[float], power_top: float | None = None
) -> list[Text]:
    """Two lines a device: what it is and how busy (with its history), then memory, power
    and temperature as small bars; they fit half a 120-column terminal."""
    head = Text(DEVICE_BADGE.get(device.kind, device.kind.upper()[:3]).ljust(4), style="bold cyan")
    head.append((device.name or device.id)[:NAME_WIDTH].ljust(NAME_WIDTH), style="bold")
    head.append(" ")
    head.append_text(bar(device.util, BAR))
    head.append(fmt.pct(device.util).rjust(5))
    head.append(" ")
    head.append(sparkline(history, SPARK_DEVICE), style="cyan")
    detail = Text("    mem ", style="dim")
    detail.append_text(bar(share(device.mem_used, device.mem_total), SMALL_BAR))
    detail.append(" " + fmt.mem(device.mem_used, device.mem_total).ljust(13))
    if device.power_w is None and device.temp_c is None:  # a CPU: nothing more to draw
        return [head, detail]
    detail.append("pwr ", style="dim")
    detail.append_text(bar(share(device.power_w, device.power_limit_w or power_top), SMALL_BAR))
    detail.append(" " + fmt.watts(device.power_w).ljust(5))
    detail.append("tmp ", style="dim")
    detail.append_text(bar(share(device.temp_c, TEMP_TOP_C), SMALL_BAR))
    detail.append(" " + fmt.temp(device.temp_c))
    if device.throttle and device.throttle != ("gpu_idle",):
        detail.append(" throttled", style="bold red")
    return [head, detail]


STATUS_STYLE_OF = {
    Status.RUNNING: "green",
    Status.STARTING: "yellow",
    Status.MOVING: "cyan",
    Status.DEGRADED: "bold yellow",
    Status.FAILED: "red",
}


def managed_line(d: Deployment, reading: DeploymentReading | None) -> Text:
    """A deployment of the state on this device, with what its worker measures."""
    style = STATUS_STYLE_OF.get(d.status, "dim")
    line = Text(" ▶ ", style=style)
    line.append(f"{d.id} {d.model} b{d.batch} ")
    line.append(d.status.value, style=style)
    if reading is not None and reading.p99_ms is not None:
        line.append(f"  p99 {fmt.ms(reading.p99_ms)}/{d.slo_ms:g}")
    return line


class HostPanel(Static, can_focus=True):
    """Live readings of one host, a block per device with what runs on it; greyed, with
    their age, once they stop being live. Focusable: the demo keys act on the focused one."""

    DEFAULT_CSS = """
    HostPanel {
        border: round $primary;
        padding: 0 1;
        height: auto;
    }
    HostPanel:focus {
        border: double $accent;
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
        self.border_title = Text.assemble(host.name, " ", (f"[{badges(host)}]", "bold cyan"))
        self._shown: tuple[object, ...] | None = None
        self.search_text = host.name.lower()

    def show(
        self,
        host: HostView,
        now: float,
        deployments: Sequence[Deployment] = (),
        power_top: Mapping[str, float] | None = None,
    ) -> None:
        """Redraw, unless nothing it shows changed (a fleet of 200 mostly stands still
        between two refreshes: skipping the unchanged keeps a refresh cheap)."""
        live = host.status is HostStatus.ONLINE
        age = None if live or not host.samples else fmt.age(host.age(now))
        key = (host, tuple(deployments), age)
        if key == self._shown:
            return
        self._shown = key
        self.set_class(host.status is HostStatus.STALE, "-stale")
        self.set_class(host.status.is_failure, "-down")
        subtitle = Text(host.status.value, style=STATUS_STYLE[host.status])
        if age is not None:
            subtitle.append(f" · last data {age}", style="dim")
        self.border_subtitle = subtitle
        names = [host.name, *(d.name or d.id for d in host.devices)]
        names += [f"{d.id} {d.model}" for d in deployments]
        names += [r.pipeline for r in host.deployments if r.pipeline]
        self.search_text = " ".join(names).lower()
        self.update(self._body(host, deployments, power_top or {}))

    def _body(
        self, host: HostView, deployments: Sequence[Deployment], power_top: Mapping[str, float]
    ) -> Group | Text:
        if not host.devices:
            return Text(host.reason or "waiting for the first sample…", style="dim")
        readings = {r.id: r for r in host.deployments}
        lines: list[Text] = []
        shown: set[str] = set()
        for device in host.devices:
            lines += device_lines(device, host.history.get(device.id, ()), power_top.get(device.id))
            for d in deployments:
                if d.where is not None and d.where.device == device.id:
                    lines.append(managed_line(d, readings.get(d.worker or "")))
                    shown.add(d.id)
        # Workers edgetop did not start (or whose deployment is not on this host): as reported.
        lines += [deployment_line(r) for r in host.deployments if owner_of(r.id) not in shown]
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
    """The header: hosts online, deployments healthy and violating, auto-pilot, filter."""

    DEFAULT_CSS = """
    FleetSummary {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    def show(
        self,
        snapshot: FleetSnapshot,
        deployments: Sequence[Deployment] = (),
        *,
        auto: bool = False,
        filter_text: str = "",
    ) -> None:
        total = len(snapshot.hosts)
        online = snapshot.count(HostStatus.ONLINE)
        stale = snapshot.count(HostStatus.STALE)
        down = sum(1 for h in snapshot.hosts if h.status.is_failure)
        healthy = sum(1 for d in deployments if d.status is Status.RUNNING)
        violating = sum(1 for d in deployments if d.status in (Status.DEGRADED, Status.FAILED))
        sep = (" │ ", "dim")
        text = Text.assemble(
            "hosts ",
            (f"{online}/{total} online", "green"),
            (f" {stale} stale", "yellow") if stale else "",
            (f" {down} down", "bold red") if down else "",
            sep,
            "deployments ",
            (f"{healthy} healthy", "green" if healthy else "dim"),
            " ",
            (f"{violating} violating", "bold red" if violating else "dim"),
            sep,
            ("auto ON", "bold reverse green") if auto else ("auto off", "dim"),
        )
        if filter_text:
            text.append(f"  ·  filter: {filter_text}", style="bold yellow")
        self.update(text)
