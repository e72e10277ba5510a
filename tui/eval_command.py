"""`edgetop eval`: the seed experiment, every policy side by side (core/evaluation.py).

Prints markdown tables (per load level, then over all loads) and, with `--json FILE`, writes
every number. `--quick` runs fewer requests and seeds (within a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgetop.core.config import FleetConfig
from edgetop.core.evaluation import EvalConfig, EvalResult, parse_fleet, quick, run_evaluation
from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.hosteval import (
    LEVELS,
    SCENARIO,
    SLO_SLACK,
    Choice,
    HostRequest,
    PolicyScore,
    PredictedRow,
    compare_policies,
    idle,
    make_requests,
    measurements,
    predict_on_fleet,
    score_predictions,
    seen_rows,
    unseen_rows,
)
from edgetop.core.live import host_slots
from edgetop.core.measured import MeasuredDataError, load_measured
from edgetop.core.monitor import FleetMonitor
from edgetop.core.placement import Fleet, Policy
from edgetop.core.policies import BASELINES
from edgetop.core.profile import COLUMNS, Run, done_keys, parse_batches, plan_runs
from edgetop.core.profiler import RunOutcome, SweepSettings, run_sweep
from edgetop.core.profiles import UnknownProfileError
from edgetop.core.recommend import LearnedPolicy
from edgetop.core.statestore import default_state_dir
from edgetop.core.training import FULL, QUICK, Accuracy, default_data, train
from edgetop.models.catalog import load_catalog
from edgetop.models.declared import load_workloads
from edgetop.models.errors import ModelError
from edgetop.models.predictor import PredictorError, load_default
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.link import HostStatus
from edgetop.tui.profile_command import _features

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
POLICY_ORDER = ("learned", "random", "round-robin", "least-loaded", "weighted-score", "oracle")


def cmd_eval(args: argparse.Namespace, out: Console, err: Console) -> int:
    def bad(message: str) -> int:
        err.print(f"edgetop eval: error: {message}", markup=False, soft_wrap=True)
        return EXIT_BAD_INPUT

    config = EvalConfig()
    if args.fleet:
        try:
            config = EvalConfig(fleet=parse_fleet(args.fleet))
        except (ValueError, UnknownProfileError) as exc:
            return bad(f"--fleet: {exc}")
    if args.seeds < 1:
        return bad(f"--seeds must be at least 1, got {args.seeds}")
    if args.first_seed < 0:
        return bad(f"--first-seed must be at least 0, got {args.first_seed}")
    config = EvalConfig(fleet=config.fleet, seeds=args.seeds, first_seed=args.first_seed)
    if args.quick:
        config = quick(config)
    try:
        predictor = load_default()
    except PredictorError as exc:
        return bad(str(exc))
    factories: dict[str, Callable[[int], Policy]] = {
        "learned": lambda seed: LearnedPolicy(predictor),
        **BASELINES,  # type: ignore[dict-item]
    }
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("simulating (load x seed)", total=len(config.loads) * config.seeds)
        result = run_evaluation(
            config,
            factories,
            load_catalog(),
            lambda done, total: progress.update(task, completed=done),
        )
    out.out(markdown(result, predictor.version), highlight=False)
    if args.json is not None:
        data = result.to_dict()
        data["experiment"]["predictor"] = predictor.version
        try:
            Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            return bad(f"--json: cannot write {args.json}: {exc}")
        err.print(f"results written to {args.json}", markup=False, highlight=False)
    return EXIT_OK


# --- `edgetop eval --hosts`: the same questions on the real testbed (core/hosteval.py) ---

DEFAULT_SEEN = "mobilenetv2,resnet50"  # small enough for AMP4EC's 0.4 CPU / 512 MiB hosts
DEFAULT_UNSEEN = "yolov5s"  # held out of all training; ~185 MiB at batch 1
REFUSED_COLUMNS = ("host", "model", "batch", "reason")
# The worker's refusal when a model does not fit (remote/worker.py MemoryRefusal): an outcome
# of the experiment (that host cannot serve the request), not a failure of the fleet.
MEMORY_REFUSAL = "not enough memory"
FLEET_POLICY_ORDER = (*(p for p in POLICY_ORDER if p != "oracle"), "oracle")


def _names(text: str | None, default: str) -> list[str]:
    return [m.strip() for m in (text or default).split(",") if m.strip()]


def _read_refused(path: Path) -> list[tuple[str, str, int, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            (r["host"], r["model"], int(r["batch"]), r["reason"])
            for r in csv.DictReader(handle)
            if (r.get("batch") or "").isdigit()
        ]


def _profile_phase(
    config: FleetConfig,
    runs: list[Run],
    features: Mapping[str, WorkloadFeatures],
    settings: SweepSettings,
    paths: tuple[Path, Path],
    err: Console,
) -> list[RunOutcome]:
    """Measure `runs` (core.profiler, one at a time), appending rows to the profile CSV and
    memory refusals to the refused CSV as each finishes; the other failures are returned."""
    csv_path, refused_path = paths
    failures: list[RunOutcome] = []
    if not runs:
        return failures
    with (
        csv_path.open("a", newline="", encoding="utf-8") as rows_file,
        refused_path.open("a", newline="", encoding="utf-8") as refused_file,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as progress,  # fmt: skip
    ):
        rows = csv.DictWriter(rows_file, fieldnames=COLUMNS)
        refused = csv.DictWriter(refused_file, fieldnames=REFUSED_COLUMNS)
        if rows_file.tell() == 0:
            rows.writeheader()
        if refused_file.tell() == 0:
            refused.writeheader()
        task = progress.add_task("profiling", total=len(runs))

        def on_outcome(outcome: RunOutcome) -> None:
            run = outcome.run
            what = f"{run.host} {run.model} batch {run.batch}"
            if outcome.row is not None:
                rows.writerow(outcome.row)
                rows_file.flush()  # an interrupted evaluation keeps every finished run
                p50, p99 = outcome.row["p50_ms"], outcome.row["p99_ms"]
                note = f"{what}: p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            elif MEMORY_REFUSAL in (outcome.error or ""):
                refused.writerow({"host": run.host, "model": run.model, "batch": run.batch,
                                  "reason": outcome.error})  # fmt: skip
                refused_file.flush()
                note = f"{what}: does not fit: {outcome.error}"
            else:
                failures.append(outcome)
                note = f"{what}: failed: {outcome.error}"
            progress.console.print(note, markup=False, highlight=False)
            progress.advance(task)

        asyncio.run(run_sweep(config, runs, features, settings, on_outcome))
    return failures


async def _settled(config: FleetConfig, accept_new_hosts: bool, timeout: float) -> FleetSnapshot:
    async with FleetMonitor(config, accept_new_hosts=accept_new_hosts) as monitor:
        await monitor.wait_for(lambda s: s.all_settled, timeout)
        return monitor.snapshot


def cmd_eval_fleet(
    config: FleetConfig, args: argparse.Namespace, out: Console, err: Console
) -> int:
    """Profile seen and unseen models on the fleet's real hosts, train on the seen ones, then
    score the predictor and every policy on the unseen ones against what was measured."""

    def bad(message: str) -> int:
        err.print(f"edgetop eval --hosts: error: {message}", markup=False, soft_wrap=True)
        return EXIT_BAD_INPUT

    started = time.perf_counter()
    try:
        batches = parse_batches(args.batch)
    except ValueError as exc:
        return bad(f"--batch: {exc}")
    seen, unseen = _names(args.models, DEFAULT_SEEN), _names(args.unseen, DEFAULT_UNSEEN)
    if not seen or not unseen:
        return bad("--models and --unseen each need at least one model")
    both = sorted(set(seen) & set(unseen))
    if both:
        return bad(f"{', '.join(both)} cannot be both trained on (--models) and unseen (--unseen)")
    if args.seeds < 1:
        return bad(f"--seeds must be at least 1, got {args.seeds}")
    hosts = [h.name for h in config.hosts if h.transport != "sim"]
    if not hosts:
        return bad(f"no real host in {config.path}: the evaluation measures real hosts")
    work = args.work_dir or default_state_dir() / "eval-hosts"
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return bad(f"--work-dir: cannot create {work}: {exc}")
    csv_path, refused_path = work / "profile.csv", work / "refused.csv"
    try:
        existing = csv_path.read_text(encoding="utf-8") if csv_path.exists() else ""
        refused_before = _read_refused(refused_path)
    except (OSError, UnicodeDecodeError, KeyError, ValueError) as exc:
        return bad(f"--work-dir: cannot read {work}: {exc}")
    if existing and not existing.startswith(",".join(COLUMNS[:3])):
        return bad(f"--work-dir: {csv_path} is not an edgetop profile CSV")
    try:
        declared = load_workloads(getattr(args, "workloads", None))
        features = dict(_features([*seen, *unseen], {}, declared))
    except ModelError as exc:
        return bad(f"--models/--unseen: {exc}")
    accept = getattr(args, "accept_new_hosts", False)

    # 1. Profile: every model x batch x host not yet measured (or refused) in the work dir.
    done = done_keys(existing) | {(h, m, str(b), SCENARIO, "") for h, m, b, _ in refused_before}
    runs = plan_runs(hosts, [*seen, *unseen], batches, SCENARIO, done)
    skipped = len(hosts) * (len(seen) + len(unseen)) * len(batches) - len(runs)
    if skipped:
        out.print(f"{skipped} run(s) already measured or refused in {work}: skipped", markup=False)
    settings = SweepSettings(args.duration, args.min_queries, accept_new_hosts=accept)
    failures = _profile_phase(config, runs, features, settings, (csv_path, refused_path), err)
    text = csv_path.read_text(encoding="utf-8") if csv_path.exists() else ""

    # 2. Train on generated rows plus the seen models' measured rows.
    try:
        measured = seen_rows(load_measured([csv_path]).rows, unseen) if text else None
    except MeasuredDataError as exc:
        return bad(f"--work-dir: {exc}")
    measured = measured if measured is not None and len(measured) else None
    seed = 0
    err.print("training the predictor", markup=False)
    data, generated_unseen = default_data(seed, args.quick)
    # The leave-one-family-out ensembles train() also fits are not reported here: minimal.
    train_settings = replace(QUICK if args.quick else FULL, family_members=1, family_epochs=1)
    report = train(data, generated_unseen, seed, measured=measured, settings=train_settings)
    predictor = report.predictor
    with contextlib.suppress(OSError):  # a copy to inspect; the evaluation does not need it
        predictor.save(work / "weights.npz")

    # 3. The predictor on the unseen models' measured rows.
    catalog = {**load_catalog(), **features}
    try:
        rows, x = unseen_rows(text, set(unseen), catalog, str(csv_path))
    except MeasuredDataError as exc:
        return bad(f"--work-dir: {exc}")
    if rows:
        prediction = predictor.predict(x)
        paired, scores = score_predictions(
            rows, prediction.p50_ms, prediction.p99_ms, prediction.confidence
        )
    else:
        paired, scores = [], {}

    # 4. The policies on the fleet as it is now, judged by the measurements.
    snapshot = asyncio.run(_settled(config, accept, getattr(args, "timeout", 20.0)))
    views = [h for h in snapshot.hosts if h.name in hosts]
    unreachable = [h.name for h in views if not (h.answered and h.status is HostStatus.ONLINE)]
    fleet = idle(Fleet.build([s for h in views for s in host_slots(h, config, catalog)]))
    # The same rows as the learned policy predicts them when it decides (the hosts idle): on a
    # loopback testbed the profiled utilisation is the shared machine's, so the two differ.
    at_decision = predict_on_fleet(rows, fleet, predictor, catalog)
    paired_decision, scores_decision = score_predictions(
        rows, *at_decision, np.full(len(rows), np.nan)
    )
    outcomes = measurements(text, _read_refused(refused_path))
    requests = make_requests(outcomes, unseen, batches, hosts)
    factories: dict[str, Callable[[int], Policy]] = {
        "learned": lambda _seed: LearnedPolicy(predictor),
        **{k: v for k, v in BASELINES.items() if k != "oracle"},  # type: ignore[misc]
    }
    policy_scores, choices = compare_policies(
        requests, fleet, factories, catalog, outcomes, hosts, args.seeds
    )
    result = FleetEval(
        hosts=tuple(views), seen=tuple(seen), unseen=tuple(unseen), batches=tuple(batches),
        duration_s=args.duration, seeds=args.seeds, predictor=predictor.version,
        trained_rows=0 if measured is None else len(measured), paired=tuple(paired),
        scores=scores, paired_decision=tuple(paired_decision), scores_decision=scores_decision,
        requests=tuple(requests), choices=tuple(choices),
        policies=policy_scores, failures=tuple(f"{o.run.host} {o.run.model} batch "
                                               f"{o.run.batch}: {o.error}" for o in failures),
        unreachable=tuple(unreachable), work_dir=str(work),
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    out.out(fleet_markdown(result), highlight=False)
    if args.json is not None:
        try:
            Path(args.json).write_text(json.dumps(fleet_dict(result), indent=2) + "\n", "utf-8")
        except OSError as exc:
            return bad(f"--json: cannot write {args.json}: {exc}")
        err.print(f"results written to {args.json}", markup=False, highlight=False)
    if failures or unreachable:
        return EXIT_FAILED
    return EXIT_OK


@dataclass(frozen=True)
class FleetEval:
    """Everything one `eval --hosts` found, for the table and the JSON."""

    hosts: tuple[HostView, ...]
    seen: tuple[str, ...]
    unseen: tuple[str, ...]
    batches: tuple[int, ...]
    duration_s: float
    seeds: int
    predictor: str
    trained_rows: int
    paired: tuple[PredictedRow, ...]
    scores: Mapping[str, Mapping[str, Accuracy]]  # at each row's profiled telemetry
    paired_decision: tuple[PredictedRow, ...]  # the same rows on the fleet the policies saw
    scores_decision: Mapping[str, Mapping[str, Accuracy]]
    requests: tuple[HostRequest, ...]
    choices: tuple[Choice, ...]
    policies: Mapping[str, PolicyScore]
    failures: tuple[str, ...]
    unreachable: tuple[str, ...]
    work_dir: str
    seconds: float


def _host_shape(view: HostView) -> str:
    quota = f"{view.cpu_quota:g} CPU" if view.cpu_quota else "all CPUs"
    memory = f"{view.mem_limit / (1 << 20):,.0f} MiB" if view.mem_limit else "no memory limit"
    return f"{view.name} ({quota}, {memory})"


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _share_text(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value * 100:.0f}"


def fleet_markdown(r: FleetEval) -> str:
    lines = [
        f"Hosts: {', '.join(_host_shape(h) for h in r.hosts)}. Trained on generated rows plus "
        f"{r.trained_rows} measured row(s) of {', '.join(r.seen)}; unseen: {', '.join(r.unseen)}. "
        f"Batch {', '.join(map(str, r.batches))}, {SCENARIO}, {r.duration_s:g} s per run. "
        f"Predictor {r.predictor}.",
        "",
        "Predictor on the unseen models' measured rows (n = rows: host x batch):",
        "",
        "| model | device state | n | p50 within 10% | p50 MAPE % | p50 Spearman "
        "| p99 within 10% | p99 MAPE % | p99 Spearman |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for state, scores in (("as profiled", r.scores), ("at decision", r.scores_decision)):
        for name, s in scores.items():
            p50, p99 = s["p50"], s["p99"]
            lines.append(
                f"| {name} | {state} | {p99.rows} | {_share_text(p50.within_10pct)} % | "
                f"{_share_text(p50.mape)} | {_f(p50.spearman, 2)} | "
                f"{_share_text(p99.within_10pct)} % | {_share_text(p99.mape)} | "
                f"{_f(p99.spearman, 2)} |"
            )
    lines += [
        "",
        "(as profiled: each row's telemetry when it was measured, as training featurises rows; "
        "at decision: the host as the policies saw it, idle)",
        "",
        "| host | model | batch | p50 ms measured | p50 ms predicted | p99 ms measured "
        "| p99 ms predicted | confidence | p50 / p99 ms predicted at decision |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p, d in zip(r.paired, r.paired_decision, strict=True):
        lines.append(
            f"| {p.host} | {p.model} | {p.batch} | {_f(p.p50_ms)} | {_f(p.predicted_p50_ms)} | "
            f"{_f(p.p99_ms)} | {_f(p.predicted_p99_ms)} | {p.confidence:.2f} | "
            f"{_f(d.predicted_p50_ms)} / {_f(d.predicted_p99_ms)} |"
        )
    lines += [
        "",
        f"Policies on {len(r.requests)} request(s) of the unseen models (SLO = {SLO_SLACK:g} x "
        "the best host's measured p99 (tight) or the worst fitting host's (loose)); success = "
        "the chosen host's measured p99 <= SLO, among requests some host met; decided on the "
        f"hosts idle, as each model was measured; {r.seeds} seed(s):",
        "",
        "| policy | success % | tight % | loose % | placed % | p50 ms | p99 ms | p99 / best "
        "| samples/s | regret % | decide ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = [p for p in FLEET_POLICY_ORDER if p in r.policies]
    names += [p for p in r.policies if p not in names]
    for name in names:
        s = r.policies[name]
        lines.append(
            f"| {name} | {_share_text(s.success)} | {_share_text(s.by_level['tight'])} | "
            f"{_share_text(s.by_level['loose'])} | {_share_text(s.placed)} | {_f(s.p50_ms)} | "
            f"{_f(s.p99_ms)} | {_f(s.p99_over_best, 2)} | {_f(s.throughput)} | "
            f"{_share_text(s.regret)} | {_f(s.decision_ms, 3)} |"
        )
    lines += ["", "Choices (seed 0; host: outcome):", ""]
    lines += ["| model | batch | level | SLO ms | " + " | ".join(names) + " |"]
    lines += ["|---|---|---|---|" + "---|" * len(names)]
    for q in r.requests:
        cells = []
        for name in names:
            c = next(c for c in r.choices if c.policy == name and c.request == q and c.seed == 0)
            cells.append(f"{c.host or '-'}: {c.outcome}")
        lines.append(
            f"| {q.model} | {q.batch} | {q.level} | {_f(q.slo_ms)} | {' | '.join(cells)} |"
        )
    unplaced: dict[tuple[str, str], list[str]] = {}
    for c in r.choices:
        if c.seed == 0 and c.why:
            unplaced.setdefault((c.policy, c.why), []).append(
                f"{c.request.level} batch {c.request.batch}"
            )
    for (policy, why), which in unplaced.items():
        lines.append(f"\n{policy} placed {', '.join(which)} nowhere: {why}")
    for problem in r.failures:
        lines.append(f"\nfailed: {problem}")
    for host in r.unreachable:
        lines.append(f"\nunreachable at decision time: {host}")
    lines += ["", f"({r.seconds:.0f} s; work dir {r.work_dir})"]
    return "\n".join(lines) + "\n"


def _finite(x: float) -> float | None:
    return None if not math.isfinite(x) else x


def _accuracy_dict(a: Accuracy) -> dict[str, float | int | None]:
    def num(x: float) -> float | None:
        return None if not math.isfinite(x) else round(x, 6)

    return {"within_10pct": num(a.within_10pct), "mape": num(a.mape),
            "spearman": num(a.spearman), "rows": a.rows}  # fmt: skip


def fleet_dict(r: FleetEval) -> dict[str, Any]:
    """The JSON of `eval --hosts --json`: `policies.<name>` has the simulated eval's keys."""
    return {
        "experiment": {
            "hosts": [
                {
                    "name": h.name,
                    "cpu_quota": h.cpu_quota,
                    "mem_limit": h.mem_limit,
                    # what the agent reported at decision time; the policies decide on the
                    # hosts idle (core.hosteval.idle), as every request was measured
                    "util_reported": next((d.util for d in h.devices), None),
                }
                for h in r.hosts
            ],
            "seen_models": list(r.seen),
            "unseen_models": list(r.unseen),
            "batches": list(r.batches),
            "scenario": SCENARIO,
            "duration_s": r.duration_s,
            "seeds": r.seeds,
            "slo_slack": SLO_SLACK,
            "levels": list(LEVELS),
            "predictor": r.predictor,
            "measured_rows_trained": r.trained_rows,
            "success": "share of requests some host could meet where the chosen host's "
            "measured p99 met the SLO",
            "work_dir": r.work_dir,
            "seconds": round(r.seconds, 1),
        },
        "predictor": {
            name: {q: _accuracy_dict(a) for q, a in s.items()} for name, s in r.scores.items()
        },
        "predictor_at_decision": {
            name: {q: _accuracy_dict(a) for q, a in s.items()}
            for name, s in r.scores_decision.items()
        },
        "rows": [
            {
                **asdict(p),
                "predicted_p50_ms_at_decision": _finite(d.predicted_p50_ms),
                "predicted_p99_ms_at_decision": _finite(d.predicted_p99_ms),
            }
            for p, d in zip(r.paired, r.paired_decision, strict=True)
        ],
        "requests": [
            {
                **asdict(q),
                "choices": {
                    c.policy: {
                        "host": c.host,
                        "outcome": c.outcome,
                        "measured_p99_ms": c.measured_p99_ms,
                        "predicted_p99_ms": c.predicted_p99_ms,
                        "why_not_placed": c.why,
                    }
                    for c in r.choices
                    if c.request == q and c.seed == 0
                },
            }
            for q in r.requests
        ],
        "policies": {name: s.to_dict() for name, s in r.policies.items()},
        "failures": list(r.failures),
        "unreachable": list(r.unreachable),
    }


def _pct(mean: float, ci: float) -> str:
    if not math.isfinite(mean):
        return "-"
    return f"{mean * 100:.1f} ± {ci * 100:.1f}" if ci > 0 else f"{mean * 100:.1f}"


def _num(mean: float, ci: float, digits: int = 1) -> str:
    if not math.isfinite(mean):
        return "-"
    text = f"{mean:,.{digits}f}"
    return f"{text} ± {ci:,.{digits}f}" if ci > 0 else text


HEADER = (
    "| policy | load | success % | unseen % | raw % | violated % | p50 ms | p99 ms | p99/SLO "
    "| goodput/s | regret % | decide ms |"
)

RULE = "|" + "---|" * (HEADER.count("|") - 1)


def _row(policy: str, load: str, m: dict) -> str:  # type: ignore[type-arg]
    cells = (
        policy,
        load,
        _pct(m["success"].mean, m["success"].ci),
        _pct(m["success_unseen"].mean, m["success_unseen"].ci),
        _pct(m["success_raw"].mean, m["success_raw"].ci),
        _pct(m["violated"].mean, m["violated"].ci),
        _num(m["p50_ms"].mean, m["p50_ms"].ci),
        _num(m["p99_ms"].mean, m["p99_ms"].ci),
        _num(m["slo_ratio"].mean, m["slo_ratio"].ci, 2),
        _num(m["throughput"].mean, m["throughput"].ci, 0),
        _pct(m["regret"].mean, m["regret"].ci),
        _num(m["decision_ms"].mean, m["decision_ms"].ci, 3),
    )
    return "| " + " | ".join(cells) + " |"


def markdown(result: EvalResult, predictor_version: str) -> str:
    c = result.config
    policies = [p for p in POLICY_ORDER if p in result.results] + [
        p for p in result.results if p not in POLICY_ORDER
    ]
    lines = [
        f"Simulated fleet: {', '.join(_counted(c.fleet))}; {c.requests} requests per run, "
        f"{c.seeds} seed(s) per load (seeds {c.first_seed}-{c.first_seed + c.seeds - 1}); "
        f"mean ± 95% CI over seeds. Predictor {predictor_version}.",
        "success = placed and SLO met for life, among feasible requests (those some device of "
        "the fleet could serve when idle); raw = among all requests; violated = placed "
        "deployments that missed their SLO; p50/p99 = geometric means over placed deployments "
        "(p99: each one's worst over its life); goodput = samples/s of deployments that met "
        "their SLO; regret = 1 - success / oracle success.",
        "",
        HEADER,
        RULE,
    ]
    for policy in policies:
        for load, metrics in result.results[policy].items():
            lines.append(_row(policy, load, metrics))  # type: ignore[arg-type]
    lines += ["", "All loads together:", "", HEADER, RULE]
    for policy in policies:
        overall = {
            m: result.overall(policy, m) for m in next(iter(result.results[policy].values()))
        }
        lines.append(_row(policy, "all", overall))  # type: ignore[arg-type]
    lines.append("")
    lines.append(f"({result.seconds:.0f} s)")
    return "\n".join(lines) + "\n"


def _counted(fleet: tuple[str, ...]) -> list[str]:
    seen: dict[str, int] = {}
    for name in fleet:
        seen[name] = seen.get(name, 0) + 1
    return [f"{n} x{k}" if k > 1 else n for n, k in seen.items()]
