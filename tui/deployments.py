"""The deployments table: the state's deployments joined with what their workers measure,
plus the requests the operator has not placed yet (pending, with their recommendation), and
the pipelines the fleet reports, one row each (core/pipelineview.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from edgetop.core.fleet import FleetSnapshot
from edgetop.core.lifecycle import Deployment
from edgetop.core.orchestrator import measured
from edgetop.core.pipelineview import PipelineView, pipelines
from edgetop.core.placement import Recommendation, Request, fmt_ms
from edgetop.tui import format as fmt

PENDING = "pending"


@dataclass(frozen=True)
class PendingRequest:
    """A deployment the operator asked for in the interface and has not placed yet: it lives
    in the interface until accepted (then the orchestrator records it under its own id)."""

    id: str
    request: Request
    recommendation: Recommendation | None = None
    why_none: str | None = None  # why there is no recommendation (no usable weights)
    asking: bool = True  # the recommendation is still being computed


@dataclass(frozen=True)
class Row:
    key: str
    pending: bool
    cells: tuple[str | Text, ...]
    sort: tuple[Any, ...]  # one value a column: what `s` sorts by
    pipeline: bool = False


# What tells a deployment's health first, so 80 columns show it; the rest scrolls.
COLUMNS: tuple[str, ...] = (
    "id",
    "model",
    "device",
    "status",
    "SLO ms",
    "p99 ms",
    "p50 ms",
    "tput/s",
    "batch",
)
STATUS_STYLE = {
    "pending": "bold magenta",
    "recommended": "magenta",
    "starting": "yellow",
    "running": "green",
    "degraded": "bold yellow",
    "failed": "bold red",
    "moving": "cyan",
    "stopped": "dim",
}


def _num(x: float | None) -> str:
    return fmt.NA if x is None else fmt_ms(x)


def _last(x: float | None) -> tuple[bool, float]:
    """Sort key putting unknown values after every known one."""
    return (x is None, 0.0 if x is None else x)


def deployment_row(d: Deployment, snapshot: FleetSnapshot | None) -> Row:
    r = measured(snapshot, d) if snapshot is not None and d.status.active else None
    p50, p99, tput = (None, None, None) if r is None else (r.p50_ms, r.p99_ms, r.throughput)
    where = fmt.NA if d.where is None else str(d.where)
    if d.moving_to is not None:
        where += f"→{d.moving_to}"
    late = p99 is not None and p99 > d.slo_ms
    return Row(
        d.id,
        False,
        (
            d.id,
            d.model,
            where,
            Text(d.status.value, style=STATUS_STYLE.get(d.status.value, "")),
            fmt_ms(d.slo_ms),
            Text(_num(p99), style="bold red" if late else ""),
            _num(p50),
            fmt.NA if tput is None else f"{tput:,.0f}",
            str(d.batch),
        ),
        (
            d.id,
            d.model,
            where,
            d.status.value,
            d.slo_ms,
            _last(p99),
            _last(p50),
            _last(tput),
            d.batch,
        ),
    )


def pending_row(p: PendingRequest) -> Row:
    r = p.request
    chosen = p.recommendation.chosen if p.recommendation else None
    where = "asking…" if p.asking else (chosen.key if chosen else "no device")
    p99 = chosen.p99_ms if chosen else None
    return Row(
        p.id,
        True,
        (
            p.id,
            r.model,
            Text(f"{where}?", style="magenta"),
            Text(PENDING, style=STATUS_STYLE[PENDING]),
            fmt_ms(r.slo_ms),
            Text(_num(p99) + "?", style="magenta") if p99 is not None else fmt.NA,
            fmt.NA,
            fmt.NA,
            str(r.batch),
        ),
        (p.id, r.model, where, PENDING, r.slo_ms, _last(p99), _last(None), _last(None), r.batch),
    )


def pipeline_row(p: PipelineView) -> Row:
    """A pipeline as one deployment: its stages' hosts in order, its head's end-to-end
    window. It has no SLO or batch of its own (its controller times it)."""
    return Row(
        p.label,
        False,
        (
            p.label,
            p.model or fmt.NA,
            p.route,
            Text(p.status, style=STATUS_STYLE.get(p.status, "")),
            fmt.NA,
            _num(p.p99_ms),
            _num(p.p50_ms),
            fmt.NA if p.throughput is None else f"{p.throughput:,.0f}",
            fmt.NA,
        ),
        (
            p.label,
            p.model or "",
            p.route,
            p.status,
            math.inf,
            _last(p.p99_ms),
            _last(p.p50_ms),
            _last(p.throughput),
            math.inf,
        ),
        pipeline=True,
    )


def table_rows(
    deployments: Sequence[Deployment],
    pending: Sequence[PendingRequest],
    snapshot: FleetSnapshot | None,
    *,
    filter_text: str = "",
    sort_column: int | None = None,
    show_stopped: bool = False,
    views: Sequence[PipelineView] | None = None,
) -> list[Row]:
    """What the table shows: filtered by substring (any cell), sorted by one column; stopped
    deployments are history (`edgetop ps` lists them) and hidden unless asked for. Pipelines
    are `views`, else the snapshot's."""
    rows = [pending_row(p) for p in pending]
    rows += [
        deployment_row(d, snapshot)
        for d in deployments
        if show_stopped or d.status.value != "stopped"
    ]
    if views is None and snapshot is not None:
        views = pipelines(snapshot)
    rows += [pipeline_row(p) for p in views or ()]
    needle = filter_text.strip().lower()
    if needle:
        rows = [r for r in rows if any(needle in str(c).lower() for c in r.cells)]
    if sort_column is not None:
        rows.sort(key=lambda r: r.sort[sort_column])
    return rows


class DeploymentsTable(DataTable[str | Text]):
    """Rows keyed by deployment id and updated in place: a refresh that changes no row order
    only rewrites the cells that changed, so the cursor and scroll position stay put."""

    DEFAULT_CSS = """
    DeploymentsTable {
        height: 1fr;
    }
    """

    class Selected(Message):
        """The cursor moved to another deployment (None: the table is empty)."""

        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    sort_names: ClassVar[tuple[str, ...]] = COLUMNS

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._rows: list[Row] = []
        self._column_keys: list[Any] = []

    def on_mount(self) -> None:
        self._column_keys = [self.add_column(name, key=name) for name in COLUMNS]

    @property
    def keys(self) -> list[str]:
        return [r.key for r in self._rows]

    @property
    def selected(self) -> str | None:
        if not self._rows or not 0 <= self.cursor_row < len(self._rows):
            return None
        return self._rows[self.cursor_row].key

    def show(self, rows: list[Row]) -> None:
        if [r.key for r in rows] == self.keys:
            for old, new in zip(self._rows, rows, strict=True):
                for column, (a, b) in enumerate(zip(old.cells, new.cells, strict=True)):
                    if a != b:
                        self.update_cell(new.key, self._column_keys[column], b)
            self._rows = rows
            return
        keep = self.selected
        self.clear()
        for r in rows:
            self.add_row(*r.cells, key=r.key)
        self._rows = rows
        if keep in self.keys:
            self.move_cursor(row=self.keys.index(keep))
        self.post_message(self.Selected(self.selected))

    def select(self, key: str) -> None:
        if key in self.keys:
            self.move_cursor(row=self.keys.index(key))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.Selected(self.selected))
