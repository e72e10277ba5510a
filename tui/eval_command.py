"""`edgetop eval`: the seed experiment, every policy side by side (core/evaluation.py).

Prints markdown tables (per load level, then over all loads) and, with `--json FILE`, writes
every number. `--quick` runs fewer requests and seeds (within a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgetop.core.config import FleetConfig
from edgetop.core.evaluation import EvalConfig, EvalResult, parse_fleet, quick, run_evaluation
from edgetop.core.placement import Policy
from edgetop.core.policies import BASELINES
from edgetop.core.profiles import UnknownProfileError
from edgetop.core.recommend import LearnedPolicy
from edgetop.models.catalog import load_catalog
from edgetop.models.predictor import PredictorError, load_default

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
    config = EvalConfig(fleet=config.fleet, seeds=args.seeds)
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


def cmd_eval_fleet(
    config: FleetConfig, args: argparse.Namespace, out: Console, err: Console
) -> int:
    err.print(
        "edgetop eval --hosts: not yet: the evaluation on a real fleet (profile zoo models on "
        "the hosts, train, measure the policy on unseen models) is not implemented; run "
        "`edgetop eval` without --hosts for the simulated experiment",
        markup=False,
        soft_wrap=True,
    )
    return EXIT_BAD_INPUT


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
        f"{c.seeds} seed(s) per load; mean ± 95% CI over seeds. Predictor {predictor_version}.",
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
