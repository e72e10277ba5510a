"""`edgetop deploy | ps | stop`: the deployment lifecycle from a script, on the same state
directory as the interface and `--auto` (`--state-dir`, else the XDG state directory).

- `deploy MODEL --batch N --slo MS`: without `--host`, the scheduler's recommendation on the
  live fleet picks the device (the audit log says which recommendation was followed); with
  `--host H[/DEVICE]` the operator overrides it (the log says what was overridden, and a
  device the scheduler turned down is warned about). Exit 0 running, 1 when the worker failed
  (or no device qualifies), 2 on bad input.
- `ps`: every deployment of the state with what its worker measures now (hosts that answer
  within `--timeout`). Simulated hosts get their deployments placed again first: a sim
  deployment only "runs" in the process that simulates its host. Then the pipelines the
  fleet's ssh/local hosts report (`edgetop partition --deploy` starts them), one line each
  with its stages (`pipelines` in `--json`).
- `stop ID`: the deployment is stopped in the state, then its worker on its host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgetop.core.advisor import live_recommendation
from edgetop.core.config import ConfigError, FleetConfig
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.lifecycle import Deployment, LifecycleError, Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.orchestrator import (
    NOT_STOPPED_YET,
    Orchestrator,
    OrchestratorError,
    OrchestratorSettings,
    measured,
    recommendation_detail,
)
from edgetop.core.pipelineview import PipelineView, pipelines
from edgetop.core.placement import Recommendation, Request, fmt_ms
from edgetop.core.statestore import StateError, StateStore, default_state_dir
from edgetop.models.errors import ModelError
from edgetop.tui import format as fmt
from edgetop.tui.recommend_command import resolve_model

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
REJECTIONS_SHOWN = 5


class BadInput(Exception):
    """Reported as one line, exit 2."""


def _store(args: argparse.Namespace) -> StateStore:
    """The state directory, checked readable (a corrupt file is bad input, named)."""
    store = StateStore(args.state_dir or default_state_dir())
    try:
        store.load()
    except StateError as exc:
        raise BadInput(str(exc)) from None
    return store


def _run(name: str, err: Console, body: Callable[[], int]) -> int:
    try:
        return body()
    except (
        BadInput,
        StateError,
        LifecycleError,
        OrchestratorError,
        ConfigError,
        ModelError,
    ) as exc:
        err.print(f"edgetop {name}: error: {exc}", markup=False, soft_wrap=True)
        return EXIT_BAD_INPUT


def _monitor(config: FleetConfig, args: argparse.Namespace) -> FleetMonitor:
    return FleetMonitor(config, accept_new_hosts=getattr(args, "accept_new_hosts", False))


def _settings(args: argparse.Namespace) -> OrchestratorSettings:
    return OrchestratorSettings(accept_new_hosts=getattr(args, "accept_new_hosts", False))


# -- deploy ------------------------------------------------------------------------------------


def parse_where(text: str, config: FleetConfig) -> tuple[str, str | None]:
    """`H` or `H/DEVICE`; the host must be in the fleet file (UnknownHostError names them)."""
    host, _, device = text.partition("/")
    config.host(host)
    if "/" in text and not device:
        raise BadInput(f"--host {text!r}: the device after '/' is empty")
    return host, device or None


def _default_device(
    host: str, config: FleetConfig, snapshot: FleetSnapshot, rec: Recommendation | None
) -> str:
    """The recommended device on `host` if any, else its first accelerator, else its CPU."""
    for c in rec.candidates if rec else ():
        if c.host == host:
            return c.device
    view = snapshot.host(host)
    if view.answered:
        accelerators = view.accelerators()
        return accelerators[0].id if accelerators else "cpu"
    return "cpu" if config.host(host).kind == "cpu" else "gpu0"


def cmd_deploy(config: FleetConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    def body() -> int:
        store = _store(args)
        workload = resolve_model(args.model, getattr(args, "workloads", None))
        host, device = parse_where(args.host, config) if args.host else (None, None)
        request = Request(
            args.model, workload, args.batch, args.slo, args.scenario, args.qps, args.objective
        )
        return asyncio.run(_deploy(config, args, store, request, host, device, out, err))

    return _run("deploy", err, body)


async def _deploy(
    config: FleetConfig,
    args: argparse.Namespace,
    store: StateStore,
    request: Request,
    host: str | None,
    device: str | None,
    out: Console,
    err: Console,
) -> int:
    async with _monitor(config, args) as monitor:
        orch = Orchestrator(config, monitor, store, settings=_settings(args))
        orch.place_simulated()  # what already "runs" on sim hosts loads them, as in the UI
        await monitor.wait_for(lambda s: s.all_settled, args.timeout)
        snapshot = monitor.snapshot
        rec, why_none = live_recommendation(request, snapshot, config)
        if host is None:
            if rec is None:
                raise BadInput(
                    f"no recommendation without usable weights ({why_none}); "
                    "name a device with --host"
                )
            if rec.chosen is None:
                err.print("edgetop deploy: no device qualifies; nothing was started", markup=False)
                for x in list(rec.rejected)[:REJECTIONS_SHOWN]:
                    err.print(f"  {x.host}/{x.device}: {x.reason}", markup=False, soft_wrap=True)
                return EXIT_FAILED
            host, device = rec.chosen.host, rec.chosen.device
        where = Where(host, device or _default_device(host, config, snapshot, rec))
        orch.check_where(where)
        action, detail, warning = recommendation_detail(rec, where)
        if warning:
            err.print(f"edgetop deploy: warning: {warning}", markup=False, soft_wrap=True)
        d = await orch.deploy(request, where, "operator", rec)
        reading = measured(monitor.snapshot, d)
    ok = d.status is Status.RUNNING
    if args.json:
        data: dict[str, Any] = {"deployment": d.to_dict(), "decision": action, **detail}
        if warning:
            data["warning"] = warning
        if why_none:
            data["no_recommendation"] = why_none
        if reading is not None:
            data["measured"] = {
                "p50_ms": reading.p50_ms,
                "p99_ms": reading.p99_ms,
                "throughput": reading.throughput,
            }
        print(json.dumps(data, indent=2))
    elif ok:
        latency = ""
        if reading is not None and reading.p99_ms is not None:
            latency = f" (p50 {fmt.ms(reading.p50_ms)}, p99 {fmt.ms(reading.p99_ms)})"
        out.print(f"{d.id}: running on {where}{latency}", markup=False)
        out.print(_decision_line(action, detail), markup=False, soft_wrap=True)
    if not ok:
        err.print(f"edgetop deploy: {d.id} failed: {d.reason}", markup=False, soft_wrap=True)
    return EXIT_OK if ok else EXIT_FAILED


def _decision_line(action: str, detail: dict[str, Any]) -> str:
    def pred(c: dict[str, Any]) -> str:
        conf = "" if c.get("confidence") is None else f", confidence {c['confidence']:.2f}"
        p99 = "-" if c.get("p99_ms") is None else f"{fmt_ms(c['p99_ms'])} ms"
        trial = ", a trial: not cleared with headroom" if c.get("trial") else ""
        return f"{c['host']}/{c['device']} (predicted p99 {p99}{conf}{trial})"

    if action == "accept":
        return f"followed the recommendation: {pred(detail['followed'])}"
    if action == "override":
        chosen = detail.get("overrode")
        return "operator override" + (f"; recommended was {pred(chosen)}" if chosen else "")
    return "placed by the operator (no recommendation)"


# -- ps ----------------------------------------------------------------------------------------


def _row(d: Deployment, snapshot: FleetSnapshot | None) -> dict[str, Any]:
    r = measured(snapshot, d) if snapshot is not None and d.status.active else None
    return {
        "id": d.id,
        "model": d.model,
        "batch": d.batch,
        "scenario": d.scenario,
        "slo_ms": d.slo_ms,
        "where": None if d.where is None else str(d.where),
        "moving_to": None if d.moving_to is None else str(d.moving_to),
        "status": d.status.value,
        "worker": d.worker,
        "p50_ms": None if r is None else r.p50_ms,
        "p99_ms": None if r is None else r.p99_ms,
        "throughput": None if r is None else r.throughput,
        "reason": d.reason,
        "updated": d.updated,
    }


def _observed(config: FleetConfig, d: Deployment) -> bool:
    return d.status.active and d.where is not None and d.where.host in config.names


async def _measure(
    config: FleetConfig, args: argparse.Namespace, store: StateStore, ds: tuple[Deployment, ...]
) -> FleetSnapshot:
    """A snapshot once every host settled and every answering host reports the workers."""
    wanted = [d for d in ds if _observed(config, d)]
    hosts = {d.id: d.where.host for d in wanted if d.where is not None}

    def ready(s: FleetSnapshot) -> bool:
        return s.all_settled and all(
            measured(s, d) is not None for d in wanted if s.host(hosts[d.id]).answered
        )

    async with _monitor(config, args) as monitor:
        Orchestrator(config, monitor, store, settings=_settings(args)).place_simulated(wanted)
        await monitor.wait_for(ready, args.timeout)
        return monitor.snapshot


def _may_run_pipelines(config: FleetConfig) -> bool:
    """Stages run only on ssh and local hosts (a simulated host runs none)."""
    return any(h.transport in ("ssh", "local") for h in config.hosts)


def pipeline_dict(p: PipelineView) -> dict[str, Any]:
    """A pipeline as `ps --json` lists it: end-to-end figures are its head stage's."""
    return {
        "id": p.label,
        "model": p.model,
        "status": p.status,
        "reason": p.reason,
        "route": p.route,
        "p50_ms": p.p50_ms,
        "p99_ms": p.p99_ms,
        "throughput": p.throughput,
        "stages": [
            {
                "index": s.index,
                "host": s.host,
                "hosts": list(s.hosts),
                "blocks": s.blocks,
                "state": s.state,
                "p50_ms": s.p50_ms,
                "p99_ms": s.p99_ms,
                "throughput": s.throughput,
                "reason": s.reason,
            }
            for s in p.stages
        ],
    }


def print_pipelines(views: tuple[PipelineView, ...], out: Console) -> None:
    """One line a pipeline: id, model, status, end-to-end figures, then its stages."""

    def num(x: float | None) -> str:
        return "-" if x is None else fmt_ms(x)

    for p in views:
        line = Text(f"pipeline {p.label}  {p.model or '?'}  ")
        line.append(p.status, style=_STATUS_STYLE.get(p.status, "yellow"))
        line.append(f"  p50 {num(p.p50_ms)} ms  p99 {num(p.p99_ms)} ms  ")
        line.append("-" if p.throughput is None else f"{p.throughput:,.0f}/s")
        stages = " → ".join(f"{s.index}:{s.host} [{s.blocks or '?'}] {s.state}" for s in p.stages)
        line.append(f"  stages {stages}")
        if p.reason:
            line.append(f"  ({p.reason})", style="yellow")
        out.print(line, soft_wrap=True)


def cmd_ps(config: FleetConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    def body() -> int:
        store = _store(args)
        ds = store.load()
        snapshot = None
        if any(_observed(config, d) for d in ds) or _may_run_pipelines(config):
            snapshot = asyncio.run(_measure(config, args, store, ds))
        rows = [_row(d, snapshot) for d in ds]
        views = pipelines(snapshot) if snapshot is not None else ()
        if args.json:
            listed = [pipeline_dict(p) for p in views]
            print(json.dumps({"deployments": rows, "pipelines": listed}, indent=2))
        else:
            if rows or not views:
                _print_ps(rows, out)
            print_pipelines(views, out)
        return EXIT_OK

    return _run("ps", err, body)


_STATUS_STYLE = {
    "running": "green",
    "degraded": "yellow",
    "failed": "red",
    "moving": "cyan",
    "stopped": "dim",
}


def _print_ps(rows: list[dict[str, Any]], out: Console) -> None:
    if not rows:
        out.print("no deployments")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    # What names a deployment is never cut; the reason wraps; the rest squeezes.
    keep = {
        "id": max(len(r["id"]) for r in rows),
        "where": max(len(r["where"] or "-") for r in rows),
        "status": len("degraded"),
    }
    for column in (
        "id",
        "model",
        "batch",
        "scenario",
        "SLO ms",
        "where",
        "status",
        "p50 ms",
        "p99 ms",
        "tput/s",
        "reason",
    ):
        table.add_column(column, no_wrap=column != "reason", min_width=keep.get(column))

    def num(x: float | None) -> str:
        return "-" if x is None else fmt_ms(x)

    for r in rows:
        where = r["where"] or "-"
        if r["moving_to"]:
            where += f" -> {r['moving_to']}"
        tput = "-" if r["throughput"] is None else f"{r['throughput']:,.0f}"
        table.add_row(
            Text(r["id"]),
            Text(r["model"]),
            str(r["batch"]),
            r["scenario"],
            num(r["slo_ms"]),
            Text(where),
            Text(r["status"], style=_STATUS_STYLE.get(r["status"], "")),
            num(r["p50_ms"]),
            num(r["p99_ms"]),
            tput,
            Text(r["reason"] or ""),
        )
    out.print(table)


# -- stop --------------------------------------------------------------------------------------


def cmd_stop(config: FleetConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    def body() -> int:
        store = _store(args)
        orch = Orchestrator(config, _monitor(config, args), store, settings=_settings(args))
        before = orch.get(args.id)
        if before.status is Status.STOPPED:
            out.print(f"{before.id} is already stopped", markup=False)
            return EXIT_OK
        d = asyncio.run(orch.stop(args.id, "operator"))
        if NOT_STOPPED_YET in (d.reason or ""):
            err.print(
                f"edgetop stop: {d.id} is stopped in the state but {d.reason}",
                markup=False,
                soft_wrap=True,
            )
            return EXIT_FAILED
        where = f" on {before.where}" if before.where else ""
        out.print(f"{d.id}: stopped (was {before.status.value}{where})", markup=False)
        return EXIT_OK

    return _run("stop", err, body)
