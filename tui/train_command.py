"""`edgetop train`: refit the scheduler's latency predictor and print its held-out accuracy."""

from __future__ import annotations

import argparse
import math
import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgetop.core.measured import MeasuredDataError, load_measured
from edgetop.core.training import Accuracy, TrainReport, default_data, train
from edgetop.models.predictor import user_weights_path

EXIT_OK, EXIT_BAD_INPUT = 0, 2
SEEN_TARGET = 0.90  # share within 10% on held-out rows of seen workloads
UNSEEN_TARGET = 0.90  # Spearman on the unseen models


def _cell(value: float, text: str) -> str:
    return "-" if math.isnan(value) else text


def _table(report: TrainReport) -> Table:
    table = Table(
        title="held-out accuracy of p99 latency",
        caption=f"targets: {SEEN_TARGET:.0%} within 10% on seen workloads, "
        f"Spearman {UNSEEN_TARGET:.2f} on unseen models",
    )
    for column in ("rows scored", "within 10%", "MAPE", "Spearman", "rows"):
        table.add_column(column, justify="left" if column == "rows scored" else "right")
    lines: list[tuple[str, Accuracy]] = [
        ("seen workloads (held out)", report.seen),
        ("unseen models (GPT-2, YOLOv5)", report.unseen),
    ]
    lines += [(f"{family}, trained without it", a) for family, a in report.by_family.items()]
    if report.measured is not None:
        lines.append(("measured (held out)", report.measured))
    for name, a in lines:
        table.add_row(
            name,
            _cell(a.within_10pct, f"{a.within_10pct:.1%}"),
            _cell(a.mape, f"{a.mape:.1%}"),
            _cell(a.spearman, f"{a.spearman:.3f}"),
            str(a.rows),
        )
    return table


def cmd_train(args: argparse.Namespace, out: Console, err: Console) -> int:
    def bad(message: str) -> int:
        err.print(f"edgetop train: error: {message}", markup=False, soft_wrap=True)
        return EXIT_BAD_INPUT

    target = args.out or user_weights_path()
    if target.is_dir():
        return bad(f"--out: {target} is a folder; name a file")
    try:  # find out now, not after minutes of training, that the weights cannot be written
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return bad(f"--out: cannot create {target.parent}: {exc}")
    if not os.access(target.parent, os.W_OK):
        return bad(f"--out: cannot write to {target.parent}")
    try:
        measured = load_measured(args.data or [])
    except MeasuredDataError as exc:
        return bad(f"--data: {exc}")
    if measured.skipped:
        reasons = "; ".join(f"{reason} ({n})" for reason, n in sorted(measured.skipped.items()))
        out.print(
            f"{measured.skipped_total} measured row(s) skipped: {reasons}",
            markup=False,
            soft_wrap=True,
        )
    data, unseen = default_data(args.seed, args.quick)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("training", total=None)

        def on_epoch(phase: str, done: int, total: int) -> None:
            progress.update(task, description=phase, completed=done, total=total)

        report = train(
            data,
            unseen,
            seed=args.seed,
            quick=args.quick,
            progress=on_epoch,
            measured=measured.rows if len(measured.rows.x) else None,
        )
    out.print(_table(report))
    if report.p50 is not None:
        seen50, unseen50 = report.p50["seen"], report.p50["unseen"]
        out.print(
            f"p50: seen within 10% {seen50.within_10pct:.1%}, MAPE {seen50.mape:.1%}; "
            f"unseen Spearman {unseen50.spearman:.3f}",
            markup=False,
            soft_wrap=True,
        )
    out.print(
        f"trained on {report.rows_generated} generated and {report.rows_measured} measured row(s)",
        markup=False,
        soft_wrap=True,
    )
    try:
        report.predictor.save(target)
    except OSError as exc:
        return bad(f"--out: cannot write {target}: {exc}")
    out.print(
        f"weights {report.predictor.version} written to {target}", markup=False, soft_wrap=True
    )
    return EXIT_OK
