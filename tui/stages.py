"""A pipeline's stages, for the side panel when the table's cursor is on a pipeline row: where
each stage runs, its blocks, its own p50 and state; the end-to-end figures are the row's."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from edgetop.core.pipelineview import PipelineView, StageView
from edgetop.tui import format as fmt
from edgetop.tui.deployments import STATUS_STYLE

STAGE_STYLE = {"running": "green", "starting": "yellow", "failed": "red", "dead": "red"}
REASON_WIDTH = 60


def stage_line(s: StageView) -> Text:
    line = Text(f"{s.index}. ", style="bold")
    line.append(s.host, style="bold")
    line.append(f"  [{s.blocks or '?'}]", style="cyan")
    line.append(f"  p50 {fmt.ms(s.p50_ms)}  ")
    line.append(s.state, style=STAGE_STYLE.get(s.state, "yellow"))
    return line


def stages_text(p: PipelineView) -> Group:
    title = Text.assemble((p.label, "bold"), f"  {p.model or '?'} pipeline, ")
    title.append(p.status, style=STATUS_STYLE.get(p.status, ""))
    lines = [title, Text(f"{len(p.stages)} stages, end to end from stage 0", style="dim")]
    for s in p.stages:
        lines.append(stage_line(s))
        if s.reason and s.state != "running":
            lines.append(Text(f"   {s.reason[:REASON_WIDTH]}", style="red"))
    if p.reason:
        lines.append(Text(p.reason[:REASON_WIDTH], style="yellow"))
    lines.append(Text("its controller owns it (edgetop partition)", style="italic dim"))
    return Group(*lines)
