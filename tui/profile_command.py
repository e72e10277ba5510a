"""`edgetop profile`: the sweep's front: arguments, features, progress bar and the CSV."""

from __future__ import annotations

import argparse
import asyncio
import csv
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgetop.core.config import FleetConfig
from edgetop.core.profile import (
    COLUMNS,
    done_keys,
    options_text,
    parse_batches,
    parse_options,
    plan_runs,
)
from edgetop.core.profiler import RunOutcome, SweepSettings, run_sweep
from edgetop.models.catalog import load_catalog
from edgetop.models.declared import DeclaredModel, load_workloads
from edgetop.models.errors import ModelError
from edgetop.models.workload import WorkloadFeatures

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _features(
    names: list[str], options: dict[str, Any], declared: Mapping[str, DeclaredModel] | None = None
) -> Mapping[str, WorkloadFeatures]:
    """Catalog models at their default size from the shipped catalog, declared models from
    their declaration; anything else (a user's own model, or a catalog model with options) is
    measured here, on the meta device."""
    catalog = load_catalog()
    declared = declared or {}
    out: dict[str, WorkloadFeatures] = {}
    for name in names:
        if name in catalog and not options:
            out[name] = catalog[name]
            continue
        if name in declared:
            if options:
                raise ModelError(f"{name} is a declared model: it takes no --option")
            out[name] = declared[name].features()
            continue
        from edgetop.models.features import extract
        from edgetop.models.zoo import get_model

        out[name] = extract(get_model(name), **options)
    return out


def cmd_profile(config: FleetConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    def bad(message: str) -> int:
        err.print(f"edgetop profile: error: {message}", markup=False)
        return EXIT_BAD_INPUT

    try:
        batches = parse_batches(args.batch)
    except ValueError as exc:
        return bad(f"--batch: {exc}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        return bad("--models: no model named")
    # Simulated hosts have nothing real to measure; the performance model stands for them.
    hosts = [h.name for h in config.hosts if h.transport != "sim"]
    if args.on:
        hosts = [h.strip() for h in args.on.split(",") if h.strip()]
        unknown = [h for h in hosts if h not in config.names]
        if unknown:
            return bad(f"--on: no host {', '.join(unknown)} in {config.path}")
        simulated = [h for h in hosts if config.host(h).transport == "sim"]
        if simulated:
            return bad(f"--on: {', '.join(simulated)} simulated; profile measures real hosts")
    if not hosts:
        return bad(f"no real host to profile in {config.path}")
    if args.scenario == "server" and args.qps is None:
        return bad("--scenario server needs --qps")
    try:
        options = parse_options(args.option)
    except ValueError as exc:
        return bad(f"--option: {exc}")
    try:  # ModelError covers DeclarationError
        declared = load_workloads(getattr(args, "workloads", None))
        features = _features(models, options, declared)
    except ModelError as exc:
        return bad(f"--models/--option: {exc}")
    try:
        existing = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        return bad(f"--out: cannot read {args.out}: {exc}")
    if existing and not existing.startswith(",".join(COLUMNS[:3])):
        return bad(f"--out: {args.out} exists and is not an edgetop profile CSV")
    runs = plan_runs(
        hosts, models, batches, args.scenario, done_keys(existing), options_text(options)
    )
    skipped = len(hosts) * len(models) * len(batches) - len(runs)
    if skipped:
        out.print(f"{skipped} run(s) already in {args.out}: skipped")
    settings = SweepSettings(
        args.duration,
        args.min_queries,
        args.qps,
        options,
        getattr(args, "accept_new_hosts", False),
        declared={m: declared[m].worker_fields() for m in models if m in declared},
    )
    failures: list[RunOutcome] = []
    with args.out.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if not existing:
            writer.writeheader()
            handle.flush()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as progress:
            task = progress.add_task("profiling", total=len(runs))

            def on_outcome(outcome: RunOutcome) -> None:
                run = outcome.run
                if outcome.row is not None:
                    writer.writerow(outcome.row)
                    handle.flush()  # an interrupted sweep keeps every finished row
                    progress.console.print(
                        f"{run.host} {run.model} batch {run.batch}: "
                        f"p50 {outcome.row['p50_ms']:.2f} ms, "
                        f"p99 {outcome.row['p99_ms']:.2f} ms, "
                        f"{outcome.row['throughput']:.1f} samples/s",
                        markup=False,
                        highlight=False,
                    )
                else:
                    failures.append(outcome)
                    progress.console.print(
                        f"{run.host} {run.model} batch {run.batch}: failed: {outcome.error}",
                        markup=False,
                        highlight=False,
                        style="red",
                    )
                progress.advance(task)

            asyncio.run(run_sweep(config, runs, features, settings, on_outcome))
    return EXIT_SOME_FAILED if failures else EXIT_OK
