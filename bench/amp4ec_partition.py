"""AMP4EC's validation on the OpenSSH testbed: monolithic vs partitioned, latency and throughput.

Three loopback hosts, each a real sshd in its own cgroup, shaped like AMP4EC's containers: tb1
"high" (1 CPU / 1 GiB), tb2 and tb3 "low" (0.4 CPU / 512 MiB). For each model (MobileNetV2 and
ResNet-50 at 224x224, batch 1), every configuration runs through the real pipeline
(core/pipeline.py: stage processes in the hosts' cgroups, tensors over SSH forwarding):

- mono-low, mono-high: the whole model as one stage on tb2, on tb1;
- amp4ec-replicas: AMP4EC's weighted-score TaskScheduler over three whole-model replicas;
- amp4ec-partition: AMP4EC's compute-proportional split over tb1, tb2, tb3, requests
  dispatched by the TaskScheduler (one pipeline: its only target);
- edgetop-partition: core.partition's exact throughput-optimal split over the same hosts.

Device speeds for both partitioners are measured here, not typed in: each host's effective
GFLOP/s is the model's FLOPs over its monolithic p50 (tb3 takes tb2's, same shape). Latency:
one request at a time (p50/p99); throughput: `--concurrency` requests in flight (closed loop).
Prints a markdown table with the ratios against mono-low and mono-high. Needs root.

    python bench/amp4ec_partition.py [--duration 8] [--models mobilenetv2,resnet50]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from testbed import script_testbed  # noqa: E402

from edgetop.core.config import FleetConfig, parse_config  # noqa: E402
from edgetop.core.partition import StageDevice, amp4ec_partition, partition  # noqa: E402
from edgetop.core.pipeline import Pipeline, StageSpec, deploy_pipeline, stages_of  # noqa: E402
from edgetop.core.taskscheduler import TaskScheduler  # noqa: E402
from edgetop.models.blockcost import block_costs  # noqa: E402
from edgetop.models.zoo import get_model  # noqa: E402
from edgetop.remote.loadgen import SlidingWindow, WindowStats  # noqa: E402

MIB = 1 << 20
HOSTS = [(1.0, 1024 * MIB), (0.4, 512 * MIB), (0.4, 512 * MIB)]  # high, low, low
CLAIM = "AMP4EC: up to 78% lower latency, up to 414% higher throughput than monolithic"


@dataclass(frozen=True)
class Measured:
    config: str
    stages: str
    compute_ms: str  # each stage's own compute p50 (its metrics), pipeline order
    latency: WindowStats
    throughput: WindowStats


async def drive(
    targets: Mapping[str, Pipeline], state: object, duration: float, concurrency: int
) -> WindowStats:
    """Closed loop for `duration` s; each request goes where AMP4EC's scheduler says."""
    scheduler = TaskScheduler(targets)
    window = SlidingWindow(window_s=duration * 10, max_records=1_000_000)
    start = time.monotonic()
    window.start(start)

    async def lane() -> None:
        while time.monotonic() - start < duration:
            name = scheduler.pick(time.monotonic())
            scheduler.started(name)
            t0 = time.monotonic()
            await targets[name].infer(state)
            t1 = time.monotonic()
            scheduler.finished(name, t1 - t0)
            window.record(t1, t1 - t0)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return window.stats(time.monotonic())


async def measure(
    name: str,
    pipelines: Mapping[str, Pipeline],
    state: object,
    args: argparse.Namespace,
) -> Measured:
    for pipeline in pipelines.values():  # warm-up: first calls pay for lazy init
        for _ in range(3):
            await pipeline.infer(state)
    latency = await drive(pipelines, state, args.duration, 1)
    throughput = await drive(pipelines, state, args.duration, args.concurrency)
    stages = " + ".join(
        " > ".join(f"{s.spec.host}[{s.spec.first}:{s.spec.stop}]" for s in p.stages)
        for p in pipelines.values()
    )
    await asyncio.sleep(1.5)  # one more metrics line from every stage
    compute = []
    for pipeline in pipelines.values():
        infos = await pipeline.describe()
        compute.append(
            " > ".join(_ms((i.get("metrics") or {}).get("compute_p50_ms")) for i in infos)
        )
    computed = " + ".join(compute)
    print(f"  {name}: {stages} (compute {computed}) p50 {latency.p50_ms:.1f} ms, "
          f"{throughput.throughput:.2f}/s")  # fmt: skip
    return Measured(name, stages, computed, latency, throughput)


def _ms(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "-"


async def run_model(
    config: FleetConfig, model: str, hosts: list[tuple[str, int]], args: argparse.Namespace
) -> list[Measured]:
    blocks = block_costs(model)
    gflops = sum(b.gflops for b in blocks)
    (state,) = get_model(model).make_input(1)
    common = {"model": model, "state_dir": args.state, "cache_dir": args.cache}
    results: list[Measured] = []
    speeds: dict[str, float] = {}

    async def run(name: str, layouts: Mapping[str, list[StageSpec]]) -> Measured:
        pipelines: dict[str, Pipeline] = {}
        try:
            for key, specs in layouts.items():
                pipelines[key] = await deploy_pipeline(config, specs, **common)
            result = await measure(name, pipelines, state, args)
        finally:
            for pipeline in pipelines.values():
                await pipeline.close()
        results.append(result)
        return result

    (high, _), (low, _), (low2, _) = hosts
    for label, host in (("mono-low", low), ("mono-high", high)):
        done = await run(label, {host: [StageSpec(host, 0, len(blocks))]})
        speeds[host] = gflops / (done.latency.p50_ms / 1000)
    speeds[low2] = speeds[low]
    devices = [StageDevice(h, speeds[h], mem) for h, mem in hosts]
    await run("amp4ec-replicas", {h: [StageSpec(h, 0, len(blocks))] for h, _ in hosts})
    amp = amp4ec_partition(blocks, devices, model=model, check_memory=False)
    await run("amp4ec-partition", {"amp4ec": list(stages_of(amp))})
    ours = partition(blocks, devices, objective="throughput", model=model)
    same = " (the same split as AMP4EC's)" if stages_of(ours) == stages_of(amp) else ""
    await run("edgetop-partition" + same, {"edgetop": list(stages_of(ours))})
    return results


def table(model: str, results: list[Measured]) -> str:
    base = {r.config: r for r in results}
    low, high = base["mono-low"], base["mono-high"]  # + is better in both ratio columns

    def lat_gain(r: Measured, ref: Measured) -> str:
        return f"{(1 - r.latency.p50_ms / ref.latency.p50_ms) * 100:+.0f}%"

    def tput_gain(r: Measured, ref: Measured) -> str:
        return f"{(r.throughput.throughput / ref.throughput.throughput - 1) * 100:+.0f}%"

    lines = [
        f"\n**{model}** (batch 1, 224x224)\n",
        "| configuration | stages | stage compute p50 ms | p50 ms | p99 ms | samples/s "
        "| lower p50 vs low / high | more throughput vs low / high |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.config} | {r.stages} | {r.compute_ms} | {r.latency.p50_ms:.1f} | "
            f"{r.latency.p99_ms:.1f} | "
            f"{r.throughput.throughput:.2f} | {lat_gain(r, low)} / {lat_gain(r, high)} | "
            f"{tput_gain(r, low)} / {tput_gain(r, high)} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace, config: FleetConfig, hosts: list) -> str:
    named = [(h.name, h.mem_limit) for h in hosts]
    out = []
    for model in args.models.split(","):
        print(f"{model}:")
        out.append(table(model, await run_model(config, model, named, args)))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=4, help="in flight for throughput")
    parser.add_argument("--models", default="mobilenetv2,resnet50")
    args = parser.parse_args()
    with script_testbed(HOSTS) as (hosts, fleet, work):
        args.state, args.cache = str(work / "state"), str(work / "cache")
        config = parse_config(fleet.read_text(), fleet)
        report = asyncio.run(main_async(args, config, hosts))
    print(report)
    print(f"\n{CLAIM}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
