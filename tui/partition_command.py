"""`edgetop partition MODEL --on A,B,C`: split a model into pipeline stages over those hosts.

Each host's capability, and where its figures came from (printed beside them):
- compute: with `--profile CSV`, the host's own `edgetop profile` rows for this model
  (throughput in samples/s x GFLOPs per sample; the row at `--batch` if there is one, else
  the best); otherwise, for a sim host, its device profile's FP32 peak x DEVICE_EFFICIENCY,
  and for a real host its CPU share (cgroup quota, else core count) x PER_CORE_GFLOPS;
- memory: a sim host's device memory, a real host's cgroup limit, else its total memory;
- links: `--link-mbps` / `--link-ms` between every pair (default 1 Gbit/s, 0.5 ms).
Sim hosts need no connection; real hosts are reached once (like `edgetop snapshot`) for their
hello. The plan comes from core/partition.py; AMP4EC's proportional split is shown beside it.
With `--deploy` the plan is started as a pipeline (core/pipeline.py), timed over `--requests`
requests, compared with the prediction and stopped: its stages pass tensors through this
process, so the pipeline lives as long as the command.

Exit status: 0 a plan (and, with --deploy, a run), 1 a host did not answer, no split fits or
the deployed pipeline failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgetop.core.config import FleetConfig, HostConfig
from edgetop.core.fleet import HostView
from edgetop.core.partition import (
    DEFAULT_LINK,
    Link,
    PartitionError,
    PartitionPlan,
    StageDevice,
    amp4ec_partition,
    partition,
)
from edgetop.core.profile import options_text, parse_options
from edgetop.core.profiles import get_profile
from edgetop.models.blockcost import BlockCost, block_costs
from edgetop.models.errors import ModelError
from edgetop.remote.errors import EdgetopError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# Effective eager-PyTorch FP32 compute of one CPU core: between MobileNetV2's 33 and
# ResNet-50's 94 GFLOP/s measured on one testbed core (docs/benchmarks.md, `edgetop profile`
# on AMP4EC-shaped hosts). `--profile` replaces it with the host's own measurement.
PER_CORE_GFLOPS = 50.0
# Share of a GPU's FP32 datasheet peak that eager batch inference reaches (an assumption, not
# a measurement: sim hosts have nothing to measure).
DEVICE_EFFICIENCY = 0.3
MIB = 1 << 20


@dataclass(frozen=True)
class Capability:
    """A host as the partitioner sees it, and where each figure came from."""

    device: StageDevice
    compute_source: str
    memory_source: str


def _profile_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(text.splitlines())
    needed = {"host", "model", "batch", "options", "gflops", "throughput"}
    if reader.fieldnames is None or not needed <= set(reader.fieldnames):
        raise ValueError("not an edgetop profile CSV (needs " + ", ".join(sorted(needed)) + ")")
    return list(reader)


def _measured(
    rows: Sequence[Mapping[str, str]], host: str, model: str, options: str, batch: int
) -> tuple[float, str] | None:
    """GFLOP/s from the host's profile rows for the model: the row at `batch`, else the best."""
    found: list[tuple[bool, float, str]] = []
    for row in rows:
        if (row.get("host"), row.get("model"), row.get("options") or "") != (host, model, options):
            continue
        try:
            rate, gflops, at = float(row["throughput"]), float(row["gflops"]), int(row["batch"])
        except (TypeError, ValueError):
            continue  # a run that failed has no throughput
        if rate > 0 and gflops > 0:
            why = f"profile: {rate:g} samples/s at batch {at} x {gflops:g} GFLOP"
            found.append((at == batch, rate * gflops, why))
    if not found:
        return None
    _, value, why = max(found)
    return value, why


def capability(
    host: HostConfig,
    view: HostView | None,
    rows: Sequence[Mapping[str, str]],
    model: str,
    options: str,
    batch: int,
) -> Capability:
    """The host's effective compute and memory; ValueError when nothing tells them."""
    measured = _measured(rows, host.name, model, options, batch)
    if host.transport == "sim":
        profile = get_profile(host.device or "")
        gflops = profile.fp32_tflops * 1000 * DEVICE_EFFICIENCY
        compute = (
            f"device profile {profile.name}: FP32 {profile.fp32_tflops:g} TFLOP/s x "
            f"{DEVICE_EFFICIENCY:g}"
        )
        memory, memory_source = profile.memory_bytes, f"device profile {profile.name}"
    else:
        hello = view.hello if view is not None else None
        if hello is None:
            raise ValueError(f"{host.name} did not answer: its capability is unknown")
        cores = hello.cpu_quota or hello.cpu_count
        if not cores:
            raise ValueError(f"{host.name} reports neither a CPU quota nor a core count")
        what = "cgroup quota" if hello.cpu_quota else "cores"
        gflops = cores * PER_CORE_GFLOPS
        compute = f"CPU: {cores:g} ({what}) x {PER_CORE_GFLOPS:g} GFLOP/s per core"
        if hello.mem_limit:
            memory, memory_source = hello.mem_limit, "cgroup limit"
        elif hello.mem_total:
            memory, memory_source = hello.mem_total, "host memory"
        else:
            raise ValueError(f"{host.name} reports no memory figure")
    if measured is not None:
        gflops, compute = measured
    return Capability(StageDevice(host.name, gflops, int(memory)), compute, memory_source)


def _input_bytes(model: str, options: Mapping[str, Any]) -> int:
    from edgetop.models.zoo import get_model

    inputs = get_model(model).make_input(1, device="meta", **options)
    return sum(t.numel() * t.element_size() for t in inputs)


def _hellos(config: FleetConfig, names: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    """Reach the real hosts among `names` once; sim hosts are not contacted."""
    real = tuple(config.host(n) for n in names if config.host(n).transport != "sim")
    if not real:
        return {}
    from edgetop.tui.cli import _settle

    snapshot = asyncio.run(_settle(replace(config, hosts=real), args))
    return {h.name: h for h in snapshot.hosts}


def cmd_partition(config: FleetConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    def fail(code: int, message: str) -> int:
        err.print(f"edgetop partition: error: {message}", markup=False, soft_wrap=True)
        return code

    names = [n.strip() for n in args.on.split(",") if n.strip()]
    if not names:
        return fail(EXIT_BAD_INPUT, "--on: no host named")
    unknown = [n for n in names if n not in config.names]
    if unknown:
        return fail(EXIT_BAD_INPUT, f"--on: no host {', '.join(unknown)} in {config.path}")
    if len(set(names)) != len(names):
        return fail(EXIT_BAD_INPUT, "--on: a host is named twice")
    try:
        options = parse_options(args.option)
    except ValueError as exc:
        return fail(EXIT_BAD_INPUT, f"--option: {exc}")
    rows: list[dict[str, str]] = []
    if args.profile is not None:
        try:
            rows = _profile_rows(args.profile.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return fail(EXIT_BAD_INPUT, f"--profile: {args.profile}: {exc}")
    try:
        blocks = block_costs(args.model, batch=1, **options)
        input_bytes = _input_bytes(args.model, options)
    except ModelError as exc:
        return fail(EXIT_BAD_INPUT, str(exc))
    if args.deploy and any(config.host(n).transport == "sim" for n in names):
        return fail(EXIT_BAD_INPUT, "--deploy: simulated hosts cannot run pipeline stages")
    views = _hellos(config, names, args)
    opts = options_text(options)
    try:
        caps = [
            capability(config.host(n), views.get(n), rows, args.model, opts, args.batch)
            for n in names
        ]
    except ValueError as exc:
        return fail(EXIT_FAILED, str(exc))
    link = Link(
        DEFAULT_LINK.bandwidth_bytes_s if args.link_mbps is None else args.link_mbps * 1e6 / 8,
        DEFAULT_LINK.latency_s if args.link_ms is None else args.link_ms / 1000,
    )
    devices = [c.device for c in caps]
    common = dict(batch=args.batch, input_bytes=input_bytes, link=link, model=args.model)
    try:
        plan = partition(blocks, devices, objective=args.objective, **common)  # type: ignore[arg-type]
    except PartitionError as exc:
        return fail(EXIT_FAILED, str(exc))
    try:
        baseline: PartitionPlan | str = amp4ec_partition(blocks, devices, **common)  # type: ignore[arg-type]
    except PartitionError as exc:
        baseline = str(exc)
    if args.json:
        print(json.dumps(plan_dict(plan, blocks, caps, link, baseline), indent=2))
    else:
        _print(out, plan, blocks, caps, link, baseline)
    if args.deploy:
        return deploy_and_measure(config, plan, options, args, out, err)
    return EXIT_OK


def plan_dict(
    plan: PartitionPlan,
    blocks: Sequence[BlockCost],
    caps: Sequence[Capability],
    link: Link,
    baseline: PartitionPlan | str,
) -> dict[str, Any]:
    """The plan as JSON: stages[] with their blocks' names, hosts with their figures' sources."""
    data = plan.to_dict()
    for stage in data["stages"]:
        stage["blocks"] = [b.name for b in blocks[stage["first"] : stage["stop"]]]
    data["hosts"] = [
        {
            "host": c.device.host,
            "gflops_per_s": c.device.gflops_per_s,
            "compute_source": c.compute_source,
            "memory_bytes": c.device.memory_bytes,
            "memory_source": c.memory_source,
        }
        for c in caps
    ]
    data["link"] = {"bandwidth_bytes_s": link.bandwidth_bytes_s, "latency_s": link.latency_s}
    data["blocks"] = len(blocks)
    data["amp4ec"] = (
        baseline.to_dict() if isinstance(baseline, PartitionPlan) else {"error": baseline}
    )
    return data


def _block_range(blocks: Sequence[BlockCost], first: int, stop: int) -> tuple[str, str]:
    span = f"{first}" if stop - first == 1 else f"{first}-{stop - 1}"
    names = (
        blocks[first].name
        if stop - first == 1
        else f"{blocks[first].name} .. {blocks[stop - 1].name}"
    )
    return span, names


def _summary(plan: PartitionPlan) -> str:
    return (
        f"bottleneck {plan.bottleneck_ms:,.2f} ms, latency {plan.latency_ms:,.2f} ms, "
        f"throughput {plan.throughput:,.1f} samples/s"
    )


def _print(
    out: Console,
    plan: PartitionPlan,
    blocks: Sequence[BlockCost],
    caps: Sequence[Capability],
    link: Link,
    baseline: PartitionPlan | str,
) -> None:
    out.print(
        f"{plan.model}: {len(blocks)} blocks, batch {plan.batch}, objective {plan.objective}, "
        f"links {link.bandwidth_bytes_s * 8 / 1e6:g} Mbit/s + {link.latency_s * 1000:g} ms",
        markup=False,
    )
    hosts = Table(box=None, header_style="bold")
    for column in ("host", "GFLOP/s", "from", "memory", "from "):
        hosts.add_column(column, no_wrap=column == "host")
    for c in caps:
        hosts.add_row(
            Text(c.device.host),
            f"{c.device.gflops_per_s:,.1f}",
            Text(c.compute_source),
            f"{c.device.memory_bytes / MIB:,.0f} MiB",
            Text(c.memory_source),
        )
    out.print(hosts)
    stages = Table(box=None, header_style="bold")
    for column in ("stage", "host", "blocks", "names", "compute ms", "transfer ms", "memory"):
        stages.add_column(column, no_wrap=column != "names")
    for i, s in enumerate(plan.stages):
        span, names = _block_range(blocks, s.first, s.stop)
        stages.add_row(
            str(i), Text(s.host), span, Text(names), f"{s.compute_ms:,.2f}",
            f"{s.transfer_ms:,.2f}" if i < len(plan.stages) - 1 else "-",
            f"{s.memory_bytes / MIB:,.0f} MiB",
        )  # fmt: skip
    out.print(stages)
    skipped = [c.device.host for c in caps if c.device.host not in {s.host for s in plan.stages}]
    if skipped:
        out.print(f"not used (no gain from them): {', '.join(skipped)}", markup=False)
    out.print(f"input {plan.input_ms:,.2f} ms; {_summary(plan)}", markup=False)
    if isinstance(baseline, PartitionPlan):
        split = ", ".join(
            f"{s.host} {_block_range(blocks, s.first, s.stop)[0]}" for s in baseline.stages
        )
        out.print(f"AMP4EC's proportional split ({split}): {_summary(baseline)}", markup=False)
    else:
        out.print(f"AMP4EC's proportional split: {baseline}", markup=False)


def deploy_and_measure(
    config: FleetConfig,
    plan: PartitionPlan,
    options: Mapping[str, Any],
    args: argparse.Namespace,
    out: Console,
    err: Console,
) -> int:
    """The `--deploy` hook: start the plan with core/pipeline.py, time `--requests` requests
    at the plan's batch, print measured beside predicted, stop the pipeline."""
    from edgetop.core.pipeline import PipelineBroken, deploy_pipeline
    from edgetop.models.zoo import get_model

    inputs = get_model(plan.model).make_input(plan.batch, **options)
    state = inputs[0] if len(inputs) == 1 else inputs

    async def run() -> Any:
        pipeline = await deploy_pipeline(
            config, plan, options=options, accept_new=getattr(args, "accept_new_hosts", False)
        )
        try:
            try:
                return await pipeline.run(state, requests=args.requests, samples=plan.batch)
            except PipelineBroken as exc:
                # A stage died: the model is repartitioned over the hosts that remain, once.
                err.print(f"edgetop partition: {exc}; repartitioning", markup=False)
                pipeline = await pipeline.recover()
                hosts = ", ".join(s.spec.host for s in pipeline.stages)
                err.print(f"edgetop partition: running again on {hosts}", markup=False)
                return await pipeline.run(state, requests=args.requests, samples=plan.batch)
        finally:
            await pipeline.close()

    try:
        result = asyncio.run(run())
    except EdgetopError as exc:
        err.print(f"edgetop partition: pipeline failed: {exc}", markup=False, soft_wrap=True)
        return EXIT_FAILED
    stats = result.stats

    def num(value: float | None, unit: str) -> str:
        return "-" if value is None else f"{value:,.2f} {unit}"

    out.print(
        f"measured over {args.requests} request(s): p50 {num(stats.p50_ms, 'ms')}, p99 "
        f"{num(stats.p99_ms, 'ms')}, {num(stats.throughput, 'samples/s')} (predicted: latency "
        f"{plan.latency_ms:,.2f} ms, {plan.throughput:,.1f} samples/s at full pipeline)",
        markup=False,
    )
    return EXIT_OK
