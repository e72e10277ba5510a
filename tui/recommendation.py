"""The recommendation panel: for the selected pending deployment, the scheduler's ranked
candidates (predicted p99, confidence, reason) and the devices it turned down, with why; for
a selected pipeline, its stages (tui/stages.py) in the same place."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from edgetop.core.pipelineview import PipelineView
from edgetop.core.placement import Recommendation, fmt_ms
from edgetop.tui.deployments import PendingRequest
from edgetop.tui.stages import stages_text

CANDIDATES_SHOWN = 5
REJECTED_SHOWN = 4
REASON_WIDTH = 60


def _p99(x: float | None) -> str:
    return "-" if x is None else f"{fmt_ms(x)} ms"


def recommendation_text(p: PendingRequest) -> Group | Text:
    r = p.request
    title = Text.assemble(
        (p.id, "bold"), f"  {r.model} b{r.batch} {r.scenario}, SLO {fmt_ms(r.slo_ms)} ms"
    )
    if p.asking:
        return Group(title, Text("asking the scheduler…", style="dim"))
    rec: Recommendation | None = p.recommendation
    if rec is None:
        why = p.why_none or "no recommendation"
        return Group(title, Text(f"no recommendation: {why}", style="yellow"), _keys(False))
    lines: list[Text] = [title, Text(f"ranked by {rec.policy}", style="dim")]
    for rank, c in enumerate(rec.candidates[:CANDIDATES_SHOWN], 1):
        misses = c.p99_ms is not None and c.p99_ms > r.slo_ms
        line = Text(f"{rank}. ", style="bold green" if rank == 1 else "")
        line.append(c.key, style="bold" if rank == 1 else "")
        line.append(f"  p99 {_p99(c.p99_ms)}", style="red" if misses else "")
        if c.confidence is not None:
            line.append(f"  conf {c.confidence:.2f}", style="dim")
        if c.trial:
            line.append("  trial", style="bold yellow")
        lines.append(line)
        lines.append(Text(f"   {c.reason[:REASON_WIDTH]}", style="dim"))
    if len(rec.candidates) > CANDIDATES_SHOWN:
        lines.append(Text(f"   … {len(rec.candidates) - CANDIDATES_SHOWN} more", style="dim"))
    if not rec.candidates:
        lines.append(Text("no device qualifies", style="bold red"))
    if rec.rejected:
        lines.append(Text(f"rejected ({len(rec.rejected)})", style="bold"))
        for x in rec.rejected[:REJECTED_SHOWN]:
            lines.append(Text(f" ✗ {x.host}/{x.device}: {x.reason[:REASON_WIDTH]}", style="red"))
    lines.append(_keys(rec.chosen is not None))
    return Group(*lines)


def _keys(can_accept: bool) -> Text:
    keys = "a/Enter accept · o override · x discard" if can_accept else "o override · x discard"
    return Text(keys, style="italic dim")


class RecommendationPanel(Static):
    """Shows the pending request or the pipeline the table's cursor is on; hidden otherwise."""

    DEFAULT_CSS = """
    RecommendationPanel {
        border: round $secondary;
        border-title-color: $secondary;
        padding: 0 1;
        height: 1fr;
        overflow-y: auto;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "recommendation"
        self.shown: PendingRequest | PipelineView | None = None

    @property
    def pending(self) -> PendingRequest | None:
        return self.shown if isinstance(self.shown, PendingRequest) else None

    def show(self, item: PendingRequest | PipelineView | None) -> None:
        if item == self.shown and self.display == (item is not None):
            return
        self.shown = item
        self.display = item is not None
        if item is not None:
            pipeline = isinstance(item, PipelineView)
            self.border_title = "stages" if pipeline else "recommendation"
            self.update(_body(item))

    @property
    def text(self) -> str:
        """What it shows, as plain text (tests read it)."""
        if self.shown is None:
            return ""
        body = _body(self.shown)
        parts = body.renderables if isinstance(body, Group) else [body]
        return "\n".join(p.plain for p in parts if isinstance(p, Text))


def _body(item: PendingRequest | PipelineView) -> Group | Text:
    return stages_text(item) if isinstance(item, PipelineView) else recommendation_text(item)
