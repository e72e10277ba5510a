"""`edgetop recommend MODEL --batch N --slo MS`: ranked placements on the live fleet, with why.

Reaches every host once (like `edgetop snapshot`), turns the snapshot into candidate devices
(core/live.py), corrects the network's predictions with the latencies the fleet's running
deployments report, and prints the candidates then the rejected devices (or JSON).
Exit 0 with a recommendation, 1 when no device qualifies (the reasons are still printed),
2 on bad input (unknown model, unusable weights).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgetop.core.advisor import live_fleet
from edgetop.core.config import FleetConfig
from edgetop.core.placement import Recommendation, Request, fmt_ms
from edgetop.core.recommend import DecisionSettings, observed_corrections, recommend
from edgetop.models.declared import load_workloads
from edgetop.models.errors import ModelError
from edgetop.models.predictor import PredictorError, load_default
from edgetop.models.workload import WorkloadFeatures

EXIT_OK, EXIT_NO_CANDIDATE, EXIT_BAD_INPUT = 0, 1, 2


def resolve_model(name: str, workloads_file: object = None) -> WorkloadFeatures:
    """A catalog name, a declared model, or `package.module:function` (measured on the meta
    device, as `edgetop profile` does). Raises ModelError naming what is wrong."""
    from edgetop.tui.profile_command import _features

    declared = load_workloads(workloads_file)  # type: ignore[arg-type]
    return _features([name], {}, declared)[name]


def cmd_recommend(config: FleetConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    def bad(message: str) -> int:
        err.print(f"edgetop recommend: error: {message}", markup=False, soft_wrap=True)
        return EXIT_BAD_INPUT

    if args.top < 1:
        return bad(f"--top must be at least 1, got {args.top}")
    try:
        workload = resolve_model(args.model, getattr(args, "workloads", None))
    except ModelError as exc:
        return bad(str(exc))
    try:
        predictor = load_default()
    except PredictorError as exc:
        return bad(str(exc))
    request = Request(
        model=args.model,
        workload=workload,
        batch=args.batch,
        slo_ms=args.slo,
        scenario=args.scenario,
        qps=args.qps,
        objective=args.objective,
    )
    from edgetop.tui.cli import _settle

    snapshot = asyncio.run(_settle(config, args))
    fleet = live_fleet(snapshot, config, {args.model: workload})
    corrections = observed_corrections(fleet, predictor)
    rec = recommend(request, fleet, predictor, corrections, DecisionSettings(top=args.top))
    if args.json:
        data = rec.to_dict()
        data["predictor"] = predictor.version
        data["devices"] = len(fleet)
        print(json.dumps(data, indent=2))
    else:
        _print(rec, out, predictor.version, len(fleet))
    return EXIT_OK if rec.chosen is not None else EXIT_NO_CANDIDATE


def _print(rec: Recommendation, out: Console, version: str, devices: int) -> None:
    r = rec.request
    qps = f", {r.qps:g} qps" if r.qps else ""
    out.print(
        f"{r.model} batch {r.batch}, p99 SLO {fmt_ms(r.slo_ms)} ms{qps}, objective {r.objective}: "
        f"{len(rec.candidates)} candidate(s) of {devices} device(s) (predictor {version})",
        markup=False,
        highlight=False,
    )
    if rec.candidates:
        table = Table(box=None, header_style="bold")
        for column in ("#", "host", "device", "p50 ms", "p99 ms", "conf", "why"):
            table.add_column(column, no_wrap=column != "why")
        for k, c in enumerate(rec.candidates, 1):
            table.add_row(
                str(k),
                Text(c.host),
                Text(c.device),
                fmt_ms(c.p50_ms) if c.p50_ms is not None else "-",
                fmt_ms(c.p99_ms) if c.p99_ms is not None else "-",
                f"{c.confidence:.2f}" if c.confidence is not None else "-",
                Text(c.reason),
            )
        out.print(table)
    else:
        out.print("[red]no device qualifies[/]")
    if rec.rejected:
        table = Table(box=None, header_style="bold", title="rejected", title_justify="left")
        for column in ("host", "device", "why not"):
            table.add_column(column, no_wrap=column != "why not")
        for x in rec.rejected:
            table.add_row(Text(x.host), Text(x.device), Text(x.reason))
        out.print(table)
