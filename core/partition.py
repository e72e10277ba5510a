"""Split a model's ordered blocks into pipeline stages over devices: exact, by dynamic programming.

Pure: no I/O, no torch. The inputs are the blocks' costs (models/blockcost.py), the devices in
the order the pipeline runs through them (`--on a,b,c`), and the links between them.

Cost model (per batch of `batch` samples; docs/partitioning.md explains the choices):
- a stage's compute: batch x its blocks' GFLOPs per sample / the device's effective GFLOP/s;
- its transfer: link latency + batch x the last block's output bytes / link bandwidth, sent to
  the next stage (none after the last stage); the input reaches the first stage the same way
  from `origin` (the client);
- its memory: the parameters of its blocks + `activation_factor` x batch x the largest peak
  activation among its blocks + `overhead_bytes` (the stage process's Python and torch); it
  must fit in the device's memory.
Stages compute and send concurrently (a stage sends batch k while computing batch k+1), so the
pipeline's period is its slowest resource: `bottleneck_ms` = max(input transfer, every stage's
compute, every transfer); `latency_ms` = input transfer + every compute and transfer;
`throughput` = batch x 1000 / bottleneck_ms samples per second.

`partition` is exact over all split points: devices keep their order, any device may take
no block (it is skipped), every stage must fit. The throughput objective minimises the
bottleneck, then, among plans with that bottleneck, the latency; the latency objective
minimises the latency, then the bottleneck. `amp4ec_partition` is AMP4EC's own heuristic
(blocks split so each device's share of FLOPs is proportional to its compute), evaluated with
the same cost model so the two compare like for like.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edgetop.models.blockcost import BlockCost
from edgetop.remote.errors import EdgetopError
from edgetop.remote.worker import ACTIVATION_FACTOR

__all__ = [
    "DEFAULT_LINK",
    "LOCAL_LINK",
    "OBJECTIVES",
    "RUNTIME_OVERHEAD_BYTES",
    "BlockCost",
    "Link",
    "MemoryModel",
    "PartitionError",
    "PartitionPlan",
    "Stage",
    "StageDevice",
    "amp4ec_partition",
    "evaluate",
    "partition",
]

Objective = Literal["throughput", "latency"]
OBJECTIVES: tuple[str, ...] = ("throughput", "latency")
MIB = 1 << 20
# What a stage process holds before any model: Python, torch and the zoo, measured as about
# 240 MiB on the testbed's CPU hosts (docs/benchmarks.md, `edgetop profile` on AMP4EC hosts).
RUNTIME_OVERHEAD_BYTES = 240 * MIB
_REL_TOL = 1e-9  # float sums taken in different orders differ in the last bits


class PartitionError(EdgetopError, ValueError):
    """No plan exists (nothing fits), or the inputs are unusable; the message says which."""


@dataclass(frozen=True)
class StageDevice:
    """A host (or one of its devices) as a pipeline stage sees it."""

    host: str
    gflops_per_s: float  # effective compute on this workload, not the datasheet peak
    memory_bytes: int  # what a stage there may use (cgroup limit or device memory)


@dataclass(frozen=True)
class Link:
    """A network path: time to send n bytes = latency_s + n / bandwidth_bytes_s."""

    bandwidth_bytes_s: float
    latency_s: float

    def seconds(self, nbytes: float) -> float:
        return self.latency_s + nbytes / self.bandwidth_bytes_s


# 1 Gbit/s Ethernet with 0.5 ms of software latency (SSH forwarding, TCP, serialisation): the
# documented default between two hosts. Two stages on one host still cross a local socket.
DEFAULT_LINK = Link(bandwidth_bytes_s=125e6, latency_s=0.5e-3)
LOCAL_LINK = Link(bandwidth_bytes_s=2e9, latency_s=0.05e-3)

LinkSpec = Link | Mapping[tuple[str, str], Link] | Callable[[str, str], Link]


@dataclass(frozen=True)
class MemoryModel:
    """How much a stage needs beyond its weights (defaults: the inference worker's own rule)."""

    activation_factor: float = ACTIVATION_FACTOR
    overhead_bytes: int = RUNTIME_OVERHEAD_BYTES

    def stage_bytes(self, blocks: Sequence[BlockCost], batch: int) -> int:
        params = sum(b.param_bytes for b in blocks)
        return self.bytes_for(params, max((b.peak_bytes for b in blocks), default=0), batch)

    def bytes_for(self, param_bytes: int, peak_bytes: int, batch: int) -> int:
        return int(param_bytes + self.activation_factor * batch * peak_bytes + self.overhead_bytes)


@dataclass(frozen=True)
class Stage:
    """blocks[first:stop] on `host`; transfer_ms sends its output to the next stage."""

    host: str
    first: int
    stop: int
    compute_ms: float
    transfer_ms: float
    memory_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "first": self.first,
            "stop": self.stop,
            "compute_ms": self.compute_ms,
            "transfer_ms": self.transfer_ms,
            "memory_bytes": self.memory_bytes,
        }


@dataclass(frozen=True)
class PartitionPlan:
    """Stages in pipeline order with the predicted period, latency and throughput."""

    model: str
    objective: str  # "throughput" | "latency" | "amp4ec" (the baseline's split)
    batch: int
    stages: tuple[Stage, ...]
    bottleneck_ms: float
    latency_ms: float
    throughput: float  # samples per second
    input_ms: float = 0.0  # the input's trip from the client to the first stage

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "objective": self.objective,
            "batch": self.batch,
            "stages": [s.to_dict() for s in self.stages],
            "input_ms": self.input_ms,
            "bottleneck_ms": self.bottleneck_ms,
            "latency_ms": self.latency_ms,
            "throughput": self.throughput,
        }


# ---- shared pieces --------------------------------------------------------------------------


def _link_fn(link: LinkSpec, default: Link) -> Callable[[str, str], Link]:
    if isinstance(link, Link):
        return lambda a, b: link
    if isinstance(link, Mapping):
        table = link
        return lambda a, b: table.get((a, b)) or table.get((b, a)) or default
    return link


def _check(
    blocks: Sequence[BlockCost], devices: Sequence[StageDevice], batch: int, input_bytes: float
) -> None:
    if not blocks:
        raise PartitionError("the model has no blocks to place")
    if not devices:
        raise PartitionError("no device to place the model on")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise PartitionError(f"batch must be a positive integer, not {batch!r}")
    if not input_bytes >= 0:
        raise PartitionError(f"input_bytes must be >= 0, not {input_bytes!r}")
    for d in devices:
        if not (d.gflops_per_s > 0 and math.isfinite(d.gflops_per_s)):
            raise PartitionError(f"{d.host}: effective compute must be a positive number")
        if d.memory_bytes <= 0:
            raise PartitionError(f"{d.host}: memory must be positive")


class _Costs:
    """Prefix sums and per-(device, span) figures, shared by the DP and the evaluator."""

    def __init__(
        self,
        blocks: Sequence[BlockCost],
        devices: Sequence[StageDevice],
        batch: int,
        input_bytes: float,
        link: Callable[[str, str], Link],
        origin: str,
        memory: MemoryModel,
    ) -> None:
        self.blocks, self.devices, self.batch = blocks, devices, batch
        self.memory, self.link = memory, link
        self.flops = [0.0]
        for b in blocks:
            self.flops.append(self.flops[-1] + b.gflops)
        self.input_ms = [1000 * link(origin, d.host).seconds(batch * input_bytes) for d in devices]
        self._rows: dict[int, list[int]] = {}  # first -> stage bytes for every stop

    def compute_ms(self, device: int, first: int, stop: int) -> float:
        work = self.batch * (self.flops[stop] - self.flops[first])
        return 1000 * work / self.devices[device].gflops_per_s

    def stage_bytes(self, first: int, stop: int) -> int:
        row = self._rows.get(first)
        if row is None:  # one pass per first block keeps the DP at O(n^2) memory checks
            row = self._rows[first] = [0] * (first + 1)
            params, peak = 0, 0
            for b in self.blocks[first:]:
                params, peak = params + b.param_bytes, max(peak, b.peak_bytes)
                row.append(self.memory.bytes_for(params, peak, self.batch))
        return row[stop]

    def fits(self, device: int, first: int, stop: int) -> bool:
        return self.stage_bytes(first, stop) <= self.devices[device].memory_bytes

    def transfer_ms(self, sender: int, receiver: int, stop: int) -> float:
        nbytes = self.batch * self.blocks[stop - 1].out_bytes
        a, b = self.devices[sender].host, self.devices[receiver].host
        return 1000 * self.link(a, b).seconds(nbytes)


def _plan(
    costs: _Costs, model: str, objective: str, spans: Sequence[tuple[int, int, int]]
) -> PartitionPlan:
    """The plan for (device index, first, stop) spans in pipeline order."""
    stages = []
    for k, (d, first, stop) in enumerate(spans):
        last = k == len(spans) - 1
        stages.append(
            Stage(
                host=costs.devices[d].host,
                first=first,
                stop=stop,
                compute_ms=costs.compute_ms(d, first, stop),
                transfer_ms=0.0 if last else costs.transfer_ms(d, spans[k + 1][0], stop),
                memory_bytes=costs.stage_bytes(first, stop),
            )
        )
    input_ms = costs.input_ms[spans[0][0]]
    bottleneck = max([input_ms, *(s.compute_ms for s in stages), *(s.transfer_ms for s in stages)])
    latency = input_ms + sum(s.compute_ms + s.transfer_ms for s in stages)
    return PartitionPlan(
        model=model,
        objective=objective,
        batch=costs.batch,
        stages=tuple(stages),
        bottleneck_ms=bottleneck,
        latency_ms=latency,
        throughput=costs.batch * 1000 / bottleneck if bottleneck > 0 else math.inf,
        input_ms=input_ms,
    )


def evaluate(
    blocks: Sequence[BlockCost],
    devices: Sequence[StageDevice],
    spans: Sequence[tuple[int, int, int]],
    *,
    objective: str = "given",
    batch: int = 1,
    input_bytes: float = 0,
    link: LinkSpec = DEFAULT_LINK,
    default_link: Link = DEFAULT_LINK,
    origin: str = "client",
    memory: MemoryModel | None = None,
    model: str = "",
) -> PartitionPlan:
    """The cost model applied to a given split: (device index, first, stop) per stage, in
    pipeline order, covering every block once. Memory is reported, not enforced."""
    _check(blocks, devices, batch, input_bytes)
    covered = [i for _, first, stop in spans for i in range(first, stop)]
    if covered != list(range(len(blocks))) or any(a >= b for _, a, b in spans):
        raise PartitionError("the stages must cover every block once, in order, none empty")
    order = [d for d, _, _ in spans]
    if order != sorted(set(order)) or not all(0 <= d < len(devices) for d in order):
        raise PartitionError("stages must use distinct devices in the given order")
    costs = _Costs(
        blocks, devices, batch, input_bytes, _link_fn(link, default_link), origin,
        memory or MemoryModel(),
    )  # fmt: skip
    return _plan(costs, model, objective, spans)


# ---- the exact partitioner ----------------------------------------------------------------


def partition(
    blocks: Sequence[BlockCost],
    devices: Sequence[StageDevice],
    *,
    objective: str = "throughput",
    batch: int = 1,
    input_bytes: float = 0,
    link: LinkSpec = DEFAULT_LINK,
    default_link: Link = DEFAULT_LINK,
    origin: str = "client",
    memory: MemoryModel | None = None,
    model: str = "",
) -> PartitionPlan:
    """The optimal split of `blocks` over `devices` (used in this order, any may be skipped)
    for `objective`; PartitionError when no split fits every stage's memory."""
    if objective not in OBJECTIVES:
        raise PartitionError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    _check(blocks, devices, batch, input_bytes)
    costs = _Costs(
        blocks, devices, batch, input_bytes, _link_fn(link, default_link), origin,
        memory or MemoryModel(),
    )  # fmt: skip
    if objective == "latency":
        spans = _solve(costs, "sum")
    else:
        # Two exact passes: the least bottleneck, then the least latency among plans whose
        # every resource stays within it (a lexicographic DP would not be exact here).
        spans = _solve(costs, "max")
        if spans is not None:
            cap = _plan(costs, model, objective, spans).bottleneck_ms * (1 + _REL_TOL)
            spans = _solve(costs, "sum", cap=cap)
    if spans is None:
        raise PartitionError(_no_fit_message(costs))
    return _plan(costs, model, objective, spans)


def _solve(
    costs: _Costs, combine: Literal["max", "sum"], cap: float = math.inf
) -> list[tuple[int, int, int]] | None:
    """DP over (device that runs the stage ending at block j): best[k][j] is the best value of
    blocks[:j] placed with its last stage on device k, outgoing transfer not yet counted.
    With combine="sum" (latency) ties go to the smaller bottleneck; every term must be <= cap.
    O(devices^2 x blocks^2) evaluations of prefix sums."""
    n, m = len(costs.blocks), len(costs.devices)
    inf = (math.inf, math.inf)
    # value = (primary, secondary): max -> (bottleneck, 0); sum -> (latency, bottleneck)
    best = [[inf] * (n + 1) for _ in range(m)]
    back: list[list[tuple[int, int] | None]] = [[None] * (n + 1) for _ in range(m)]

    def join(prefix: tuple[float, float], *terms: float) -> tuple[float, float]:
        if max(terms) > cap:
            return inf
        if combine == "max":
            return (max(prefix[0], *terms), 0.0)
        return (prefix[0] + sum(terms), max(prefix[1], *terms))

    for k in range(m):
        for stop in range(1, n + 1):
            if not costs.fits(k, 0, stop):
                break  # memory only grows with the span
            value = join((0.0, 0.0), costs.input_ms[k], costs.compute_ms(k, 0, stop))
            if value < best[k][stop]:
                best[k][stop], back[k][stop] = value, None
    for k in range(1, m):
        for first in range(1, n):
            for stop in range(first + 1, n + 1):
                if not costs.fits(k, first, stop):
                    break
                compute = costs.compute_ms(k, first, stop)
                for prev in range(k):
                    prefix = best[prev][first]
                    if prefix[0] == math.inf:
                        continue
                    transfer = costs.transfer_ms(prev, k, first)
                    value = join(prefix, compute, transfer)
                    if value < best[k][stop]:
                        best[k][stop], back[k][stop] = value, (prev, first)
    ends = [k for k in range(m) if best[k][n][0] < math.inf]
    if not ends:
        return None
    k, stop = min(ends, key=lambda d: best[d][n]), n
    spans: list[tuple[int, int, int]] = []
    while True:
        step = back[k][stop]
        first = 0 if step is None else step[1]
        spans.append((k, first, stop))
        if step is None:
            return spans[::-1]
        k, stop = step


def _no_fit_message(costs: _Costs) -> str:
    blocks, devices = costs.blocks, costs.devices
    largest = max(devices, key=lambda d: d.memory_bytes)
    worst = max(range(len(blocks)), key=lambda i: costs.stage_bytes(i, i + 1))
    need = costs.stage_bytes(worst, worst + 1)
    whole = costs.stage_bytes(0, len(blocks))
    hosts = ", ".join(f"{d.host} {_mib(d.memory_bytes)}" for d in devices)
    if need > largest.memory_bytes:
        return (
            f"no split fits: block {worst} ({blocks[worst].name}) alone needs {_mib(need)} at "
            f"batch {costs.batch}, more than the largest device ({largest.host}, "
            f"{_mib(largest.memory_bytes)}); devices: {hosts}"
        )
    return (
        f"no split of the {len(blocks)} blocks fits these devices in this order (the whole "
        f"model needs {_mib(whole)} at batch {costs.batch}, each stage "
        f"{_mib(costs.memory.overhead_bytes)} of runtime on top of its weights); "
        f"devices: {hosts}"
    )


def _mib(nbytes: float) -> str:
    return f"{nbytes / MIB:,.0f} MiB"


# ---- AMP4EC's heuristic, for comparison -------------------------------------------------------


def amp4ec_partition(
    blocks: Sequence[BlockCost],
    devices: Sequence[StageDevice],
    *,
    batch: int = 1,
    input_bytes: float = 0,
    link: LinkSpec = DEFAULT_LINK,
    default_link: Link = DEFAULT_LINK,
    origin: str = "client",
    memory: MemoryModel | None = None,
    model: str = "",
    check_memory: bool = True,
) -> PartitionPlan:
    """AMP4EC's resource-proportional split: device i's stage ends at the block boundary whose
    cumulative FLOPs are nearest to the devices' cumulative compute share up to i. Links and
    memory play no part in the split; with `check_memory` a stage that does not fit raises."""
    _check(blocks, devices, batch, input_bytes)
    flops = [0.0]
    for b in blocks:
        flops.append(flops[-1] + b.gflops)
    total_compute = sum(d.gflops_per_s for d in devices)
    spans: list[tuple[int, int, int]] = []
    first, share = 0, 0.0
    for k, device in enumerate(devices):
        share += device.gflops_per_s / total_compute
        if k == len(devices) - 1:
            stop = len(blocks)
        else:
            target = share * flops[-1]
            stop = min(range(first, len(blocks) + 1), key=lambda j: abs(flops[j] - target))
        if stop > first:
            spans.append((k, first, stop))
            first = stop
    plan = evaluate(
        blocks, devices, spans, objective="amp4ec", batch=batch, input_bytes=input_bytes,
        link=link, default_link=default_link, origin=origin, memory=memory, model=model,
    )  # fmt: skip
    if check_memory:
        for stage, (k, _, _) in zip(plan.stages, spans):  # noqa: B905 - one stage per span
            limit = devices[k].memory_bytes
            if stage.memory_bytes > limit:
                raise PartitionError(
                    f"AMP4EC's split does not fit: the stage on {stage.host} (blocks "
                    f"{stage.first}-{stage.stop - 1}) needs {_mib(stage.memory_bytes)}, it has "
                    f"{_mib(limit)}"
                )
    return plan
