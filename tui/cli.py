"""The `edgetop` command line (DESIGN.md section 8 is the contract).

Exit status: 0 success, 1 the job ran but some host failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from edgetop import __version__
from edgetop.core.checks import platform_summary, version_drift
from edgetop.core.config import ConfigError, FleetConfig, find_hosts_file, load_config
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.monitor import FleetMonitor
from edgetop.core.profile import SCENARIOS
from edgetop.core.report import fleet_dict
from edgetop.models.catalog import CatalogError, load_catalog
from edgetop.models.declared import DeclarationError, load_workloads
from edgetop.tui import format as fmt

EXIT_OK, EXIT_FLEET_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_TIMEOUT_S = 20.0


def _bounded(limit: float, unit: str) -> Callable[[str], float]:
    """An argparse type: a finite number in (0, limit], its unit named in the error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {unit}, got {text!r}") from None
        if not 0 < value <= limit:
            raise argparse.ArgumentTypeError(f"must be above 0 and at most {limit:g} {unit}")
        return value

    return parse


_positive = _bounded(3600, "seconds")
_rate = _bounded(1e6, "queries per second")
_latency = _bounded(3.6e6, "milliseconds")


def _whole(high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number in [1, high], `what` it counts named in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole {what}, got {text!r}") from None
        if not 1 <= value <= high:
            raise argparse.ArgumentTypeError(f"must be 1 to {high}, got {value}")
        return value

    return parse


_batch = _whole(4096, "batch size")
_queries = _whole(1_000_000, "number of queries")


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for every host (default %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--hosts",
        type=Path,
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="fleet file (default: ./hosts.toml, then ~/.config/edgetop/hosts.toml)",
    )
    common.add_argument(
        "--workloads",
        type=Path,
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="declared (non-torch) models (default: ./workloads.toml if there is one)",
    )
    common.add_argument(
        "--accept-new-hosts",
        action="store_true",
        default=argparse.SUPPRESS,
        help="accept and record unknown SSH host keys (changed keys are still refused)",
    )

    parser = argparse.ArgumentParser(
        prog="edgetop",
        parents=[common],
        description="One terminal for a hybrid cloud-edge AI fleet.",
    )
    parser.add_argument("--version", action="version", version=f"edgetop {__version__}")
    parser.add_argument(
        "--auto",
        action="store_true",
        help="unattended: no TTY, fleet status as JSON lines on stdout",
    )
    parser.add_argument("--log", type=Path, metavar="FILE", help="with --auto: also append to FILE")
    parser.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="where deployments and decisions are kept"
    )
    parser.add_argument(
        "--interval",
        type=float,
        metavar="S",
        help="with --auto: seconds between auto-pilot rounds (default 2)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    snapshot = commands.add_parser(
        "snapshot", parents=[common], help="reach every host once and print the fleet"
    )
    snapshot.add_argument("--json", action="store_true", help="machine-readable output")
    _add_timeout(snapshot)

    models = commands.add_parser(
        "models", parents=[common], help="the workload catalog with its features"
    )
    models.add_argument("--json", action="store_true", help="machine-readable output")

    profile = commands.add_parser(
        "profile", parents=[common], help="measure workloads on the fleet's hosts (resumable)"
    )
    profile.add_argument(
        "--models", required=True, metavar="A,B", help="catalog names or package.module:function"
    )
    profile.add_argument("--batch", default="1", metavar="1,8", help="batch sizes (default 1)")
    profile.add_argument("--scenario", default="singlestream", choices=SCENARIOS)
    profile.add_argument("--qps", type=_rate, help="server scenario: target queries/s")
    profile.add_argument(
        "--duration",
        type=_positive,
        default=10.0,
        help="seconds measured per run (default %(default)s)",
    )
    profile.add_argument(
        "--min-queries",
        type=_queries,
        metavar="N",
        help="run past --duration until N queries completed (a p99 wants ~100), at most 10x",
    )
    profile.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. seq_len=128 or image_size=160 (repeatable)",
    )
    profile.add_argument("--on", metavar="HOST,...", help="only these hosts (default: all)")
    profile.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="CSV",
        help="rows are appended; runs already in it are skipped",
    )

    _add_scheduler_commands(commands, common)
    _add_deploy_commands(commands, common)
    _add_partition_command(commands, common)

    hosts = commands.add_parser("hosts", help="fleet housekeeping")
    hosts_commands = hosts.add_subparsers(dest="hosts_command", metavar="ACTION", required=True)
    check = hosts_commands.add_parser(
        "check", parents=[common], help="reachability, auth, versions, collectors, drift"
    )
    _add_timeout(check)
    return parser


OBJECTIVES = ("latency", "throughput", "energy", "balance")


def _add_scheduler_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """train, recommend and eval: the learned scheduler's commands."""
    train = commands.add_parser(
        "train", parents=[common], help="refit the scheduler; prints held-out accuracy"
    )
    train.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        metavar="CSV",
        help="rows measured by `edgetop profile` to train on as well (repeatable)",
    )
    train.add_argument(
        "--out", type=Path, metavar="FILE", help="where the weights go (default: the state dir)"
    )
    train.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    train.add_argument("--quick", action="store_true", help="fewer rows and epochs (a smoke run)")

    recommend = commands.add_parser(
        "recommend", parents=[common], help="ranked placements for a model, with reasons"
    )
    recommend.add_argument("model", metavar="MODEL", help="catalog name or package.module:function")
    recommend.add_argument("--batch", type=_batch, required=True, help="batch size")
    recommend.add_argument(
        "--slo", type=_latency, required=True, metavar="MS", help="p99 latency bound"
    )
    recommend.add_argument("--scenario", default="server", choices=SCENARIOS)
    recommend.add_argument("--qps", type=_rate, help="offered queries/s (server scenario)")
    recommend.add_argument("--objective", default="latency", choices=OBJECTIVES)
    recommend.add_argument("--top", type=int, default=5, help="candidates shown (default 5)")
    recommend.add_argument("--json", action="store_true", help="machine-readable output")
    _add_timeout(recommend)

    evaluate = commands.add_parser(
        "eval", parents=[common], help="the seed experiment: every policy side by side"
    )
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    evaluate.add_argument("--quick", action="store_true", help="a run that fits in a minute")
    evaluate.add_argument("--seeds", type=int, default=5, help="independent runs (default 5)")
    evaluate.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="N",
        help="simulated run: seeds N .. N+seeds-1 (default 0; another N gives fresh streams)",
    )
    evaluate.add_argument(
        "--fleet",
        metavar="SPEC",
        help="simulated fleet, e.g. a100-40gb*2,v100-16gb,jetson-agx-xavier*3 (the default)",
    )
    # With --hosts: profile on the real hosts, train, judge predictor and policies on unseen models.
    evaluate.add_argument(
        "--models", metavar="A,B", help="with --hosts: models trained on (mobilenetv2,resnet50)"
    )
    evaluate.add_argument(
        "--unseen", metavar="A,B", help="with --hosts: held-out models evaluated on (yolov5s)"
    )
    evaluate.add_argument(
        "--batch", default="1,8", metavar="1,8", help="with --hosts: batch sizes (default 1,8)"
    )
    evaluate.add_argument(
        "--duration",
        type=_positive,
        default=10.0,
        help="with --hosts: seconds measured per run (default %(default)s)",
    )
    evaluate.add_argument(
        "--min-queries",
        type=_queries,
        metavar="N",
        help="with --hosts: run past --duration until N queries completed, at most 10x",
    )
    evaluate.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="with --hosts: profile CSV kept here, resumable (default: state dir/eval-hosts)",
    )
    _add_timeout(evaluate)


def _add_deploy_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """deploy, ps and stop: the deployment lifecycle on the shared state directory."""
    state = argparse.ArgumentParser(add_help=False, parents=[common])
    state.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="where deployments and decisions are kept (default: the XDG state dir)",
    )
    timeout = argparse.ArgumentParser(add_help=False)
    _add_timeout(timeout)
    deploy = commands.add_parser(
        "deploy",
        parents=[state, timeout],
        help="start a model where the scheduler (or --host) puts it",
    )
    deploy.add_argument("model", metavar="MODEL", help="catalog name or package.module:function")
    deploy.add_argument("--batch", type=_batch, required=True, help="batch size")
    deploy.add_argument("--slo", type=_latency, required=True, metavar="MS", help="p99 bound")
    deploy.add_argument("--scenario", default="server", choices=SCENARIOS)
    deploy.add_argument("--qps", type=_rate, help="offered queries/s (server scenario)")
    deploy.add_argument("--objective", default="latency", choices=OBJECTIVES)
    deploy.add_argument(
        "--host", metavar="H[/DEVICE]", help="override the recommendation: run it there"
    )
    deploy.add_argument("--json", action="store_true", help="machine-readable output")
    ps = commands.add_parser(
        "ps", parents=[state, timeout], help="deployments with their measured latency"
    )
    ps.add_argument("--json", action="store_true", help="machine-readable output")
    stop = commands.add_parser("stop", parents=[state], help="stop a deployment")
    stop.add_argument("id", metavar="ID", help="the deployment's id (see `edgetop ps`)")


def _add_partition_command(commands: Any, common: argparse.ArgumentParser) -> None:
    """partition: split a model into pipeline stages over named hosts (tui/partition_command)."""
    part = commands.add_parser(
        "partition", parents=[common], help="split a model across those hosts (a pipeline plan)"
    )
    part.add_argument("model", metavar="MODEL", help="catalog name or package.module:function")
    part.add_argument("--on", required=True, metavar="A,B,C", help="hosts, in pipeline order")
    part.add_argument("--objective", default="throughput", choices=("throughput", "latency"))
    part.add_argument("--batch", type=_batch, default=1, help="batch size (default 1)")
    part.add_argument(
        "--profile", type=Path, metavar="CSV", help="`edgetop profile` rows: measured compute"
    )
    part.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="model option"
    )
    part.add_argument(
        "--link-mbps", type=_bounded(1e7, "Mbit/s"), help="link bandwidth (default 1000)"
    )
    part.add_argument(
        "--link-ms", type=_bounded(1e4, "milliseconds"), help="link latency (default 0.5)"
    )
    part.add_argument("--json", action="store_true", help="machine-readable output")
    part.add_argument("--deploy", action="store_true", help="start it, time it, stop it")
    part.add_argument("--requests", type=int, default=20, help="with --deploy (default 20)")
    _add_timeout(part)


def _load(args: argparse.Namespace) -> FleetConfig:
    path = find_hosts_file(getattr(args, "hosts", None), Path.cwd(), Path.home())
    return load_config(path)


async def _settle(config: FleetConfig, args: argparse.Namespace) -> FleetSnapshot:
    async with FleetMonitor(config, accept_new_hosts=getattr(args, "accept_new_hosts", False)) as m:
        await m.wait_for(lambda s: s.all_settled, args.timeout)
        return m.snapshot


def _unanswered_reason(timeout: float) -> str:
    return f"no answer within {timeout:g} s"


def cmd_snapshot(config: FleetConfig, args: argparse.Namespace, out: Console) -> int:
    snap = asyncio.run(_settle(config, args))
    now = time.time()
    if args.json:
        data = fleet_dict(snap, now)
        for host in data["hosts"]:
            if host["status"] == "connecting":
                host["reason"] = _unanswered_reason(args.timeout)
        print(json.dumps(data, indent=2))
    else:
        table = Table(
            "host",
            "status",
            "device",
            "util",
            "memory",
            "temp",
            "power",
            "quota",
            box=None,
            header_style="bold",
        )
        for host in snap.hosts:
            status = host.status.value
            if not host.answered:
                reason = host.reason or _unanswered_reason(args.timeout)
                table.add_row(host.name, f"[red]{status}[/]", reason, "", "", "", "", "")
                continue
            for i, d in enumerate(host.devices):
                table.add_row(
                    host.name if i == 0 else "",
                    status if i == 0 else "",
                    d.name or d.id,
                    fmt.pct(d.util),
                    fmt.mem(d.mem_used, d.mem_total),
                    fmt.temp(d.temp_c),
                    fmt.watts(d.power_w, d.power_limit_w),
                    fmt.quota(host.cpu_quota, host.mem_limit) if i == 0 else "",
                )
        out.print(table)
    return EXIT_OK if snap.all_answered else EXIT_FLEET_FAILED


def cmd_hosts_check(config: FleetConfig, args: argparse.Namespace, out: Console) -> int:
    snap = asyncio.run(_settle(config, args))
    table = Table(
        "host", "reach", "auth", "python", "platform", "collectors", box=None, header_style="bold"
    )
    for host in snap.hosts:
        status = host.status.value
        auth = {"auth-failed": "[red]refused[/]", "host-key-rejected": "[red]host key[/]"}.get(
            status, "ok" if host.hello else "-"
        )
        reach = "[green]ok[/]" if host.answered else f"[red]{status}[/]"
        if host.hello is None:
            table.add_row(
                host.name, reach, auth, "-", host.reason or _unanswered_reason(args.timeout), "-"
            )
            continue
        collectors = ", ".join(host.hello.working_collectors) or "none"
        table.add_row(
            host.name,
            reach,
            auth,
            host.hello.python or "-",
            platform_summary(host.hello),
            collectors,
        )
    out.print(table)
    drifts = version_drift(snap.hosts)
    for drift in drifts:
        out.print(f"[yellow]drift:[/] {drift}")
    if not drifts:
        out.print("no version drift across the fleet")
    return EXIT_OK if snap.all_answered else EXIT_FLEET_FAILED


def cmd_models(args: argparse.Namespace, out: Console) -> int:
    catalog = load_catalog()
    declared = load_workloads(getattr(args, "workloads", None), reserved=catalog)
    rows = [(f, "catalog") for f in catalog.values()]
    rows += [(d.features(), "declared") for d in declared.values()]
    if args.json:
        models = [{**f.to_dict(), "source": source} for f, source in rows]
        print(json.dumps({"models": models}, indent=2))
        return EXIT_OK
    table = Table(box=None, header_style="bold")
    for column in ("model", "family", "params", "GFLOPs", "activations", "input", "source"):
        table.add_column(column, no_wrap=True)
    for f, source in rows:
        shapes = ["x".join(str(d) for d in s[1:]) for s in f.input_shape]
        shape = (
            f"{shapes[0]} (x{len(shapes)})"
            if len(set(shapes)) == 1 and len(shapes) > 1
            else " + ".join(shapes)
        )
        table.add_row(
            f.name,
            f.family,
            f"{f.params / 1e6:,.1f}M",
            fmt.gflops(f.gflops),
            fmt.size(f.activation_bytes),
            shape,
            source,
        )
    out.print(table)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    if args.command in ("train", "eval") and not (args.command == "eval" and "hosts" in args):
        # Generated data and a simulated fleet: no fleet file needed.
        try:
            if args.command == "train":
                from edgetop.tui.train_command import cmd_train

                return cmd_train(args, out, err)
            from edgetop.tui.eval_command import cmd_eval

            return cmd_eval(args, out, err)
        except KeyboardInterrupt:
            return 130
    if args.command == "models":  # the catalog needs no fleet file
        try:
            return cmd_models(args, out)
        except (CatalogError, DeclarationError) as exc:
            err.print(f"edgetop: error: {exc}", markup=False)
            return EXIT_BAD_INPUT
    try:
        config = _load(args)
    except ConfigError as exc:
        err.print(f"edgetop: error: {exc}", markup=False)
        return EXIT_BAD_INPUT
    if args.log is not None and not args.auto:
        parser.error("--log goes with --auto")
    if getattr(args, "interval", None) is not None and not args.auto:
        parser.error("--interval goes with --auto")
    try:
        if args.command == "snapshot":
            return cmd_snapshot(config, args, out)
        if args.command == "profile":
            from edgetop.tui.profile_command import cmd_profile

            return cmd_profile(config, args, out, err)
        if args.command == "hosts":
            return cmd_hosts_check(config, args, out)
        if args.command == "recommend":
            from edgetop.tui.recommend_command import cmd_recommend

            return cmd_recommend(config, args, out, err)
        if args.command in ("deploy", "ps", "stop"):
            from edgetop.tui.deploy_commands import cmd_deploy, cmd_ps, cmd_stop

            command = {"deploy": cmd_deploy, "ps": cmd_ps, "stop": cmd_stop}[args.command]
            return command(config, args, out, err)
        if args.command == "partition":
            from edgetop.tui.partition_command import cmd_partition

            return cmd_partition(config, args, out, err)
        if args.command == "eval":  # with --hosts: the real fleet
            from edgetop.tui.eval_command import cmd_eval_fleet

            return cmd_eval_fleet(config, args, out, err)
        if args.auto:
            from edgetop.tui.auto import run_auto

            return run_auto(config, args)
        from edgetop.tui.app import run_app

        return run_app(config, args)
    except KeyboardInterrupt:
        return 130
