"""The performance model: latency and throughput of workloads on a simulated device.

It is the ground truth of everything simulated (sim hosts, the scheduler's training data, the
oracle baseline), so it is deterministic: percentiles are the expected values of the
distribution the model implies; a simulator that wants noise adds it itself.

One batch of `b` samples alone on a device (docs/perf-model.md has the derivation):

    service = overhead / clock + max(compute, memory)
    compute = gflops * (b + b_half) / (peak * clock * efficiency)     # work / (peak * eff(b))
    memory  = (params * B + fusion * traffic * b * B / 4) / (bw * bw_scale * mem_efficiency)

where eff(b) = efficiency * b / (b + b_half) rises with the batch (b_half: the batch whose live
activations reach the device's `half_mib`), B is the bytes per element
of the precision the device serves (INT8 where it has INT8 tensor cores, else FP16, else FP32),
`fusion` the share of op outputs that reach DRAM after layer fusion, and clock / bw_scale come
from the power mode and thermal throttling. `efficiency` and `half_mib` are calibration constants
per (device, family), fitted to MLPerf Inference (see EFFICIENCY below and core/calibration.py).

Several placements on one device share it by time slicing:
- open placements (server with a qps; a singlestream paced at a qps) are served first: M/G/1
  waiting time over all of them plus the residual of a closed-loop batch in service;
- closed loops (offline; a singlestream or server without qps, one query in flight) take what
  the open ones leave, one batch each in turn;
- every co-runner slows a batch a little more (context switches, cache and DRAM interference).
A device whose open placements offer more than it can serve is overloaded: the queue grows
for the whole observation window, so latencies are huge but finite.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from edgetop.core.profiles import DeviceProfile
from edgetop.models.schedfeatures import DeviceFeatures
from edgetop.models.workload import WorkloadFeatures

__all__ = [
    "CLASS_EFFICIENCY",
    "DEVICE_CLASSES",
    "EFFICIENCY",
    "ORIGINS",
    "SCENARIOS",
    "BatchTime",
    "DeviceClass",
    "DeviceCondition",
    "DeviceOutcome",
    "Efficiency",
    "Link",
    "PerfModel",
    "Performance",
    "Placement",
    "PowerMode",
    "device_features",
    "evaluate",
    "power_mode",
    "service_ms",
    "serving_precision",
    "transfer_ms",
    "wire_bytes",
]

SCENARIOS = ("singlestream", "server", "offline")
ORIGINS = ("edge", "cloud", "local")  # local: the client sits on the device (no transfer)

_MIB = 1 << 20
_GIB = 1 << 30


@dataclass(frozen=True)
class Placement:
    """One deployment on a device: a workload at a batch size under a load scenario."""

    workload: WorkloadFeatures
    batch: int
    scenario: str = "server"
    qps: float | None = None  # offered samples/s. None: one query in flight (closed loop)


@dataclass(frozen=True)
class DeviceCondition:
    power_mode: str | None = None  # None: the profile's default mode
    temp_c: float | None = None  # None: the steady-state temperature the load implies
    ambient_c: float = 25.0
    origin: str = "edge"  # where queries come from: "edge", "cloud" or "local" (no transfer)


@dataclass(frozen=True)
class Performance:
    """One placement on the device, in the device's current state."""

    p50_ms: float  # end to end per query: queueing + compute + input transfer
    p90_ms: float
    p99_ms: float
    service_ms: float  # one batch, alone, in this condition (no queueing, no transfer)
    throughput: float  # samples/s it achieves
    util: float  # share of the device's time it takes (0..1)
    memory_bytes: int  # workload at its batch plus the runtime/context overhead
    transfer_ms: float
    queue_ms: float = 0.0  # mean wait for the device (others' batches, own queue)


@dataclass(frozen=True)
class DeviceOutcome:
    performances: tuple[Performance, ...]  # same order as the placements
    util: float  # 0..1 compute busy in total
    bw_util: float  # 0..1 memory bandwidth busy
    mem_used_bytes: int  # incl. runtime/context overhead per deployment and the idle footprint
    mem_total_bytes: int
    power_w: float
    temp_c: float
    throttled: bool
    overloaded: bool  # offered load beyond capacity: latencies are huge but finite
    fits: bool  # all placements fit in memory
    power_mode: str = ""
    power_fraction: float = 1.0  # mode budget / top-mode budget
    open_util: float = 0.0  # load offered by the open placements (> 1: overloaded)
    mem_idle_bytes: int = 0  # part of mem_used an idle device already shows (OS on a Jetson)
    clock_factor: float = 1.0  # compute clock relative to the top mode, cool


# --- constants: per device class ----------------------------------------------------------


@dataclass(frozen=True)
class DeviceClass:
    """What a whole class of devices shares. Typical figures, not measurements (assumptions
    documented in docs/perf-model.md); the per-device calibration absorbs the rest."""

    overhead_ms: float  # per batch: kernel launches, runtime, host sync (at full clock)
    mem_efficiency: float  # share of peak DRAM bandwidth a streaming kernel sustains
    jitter_p90: float  # p90 / p50 of one batch's service time on an idle device
    jitter_p99: float  # p99 / p50
    runtime_bytes: int  # per deployment: CUDA context, inference runtime, allocator slack
    idle_bytes: int  # of the device memory an idle device already uses (OS on a Jetson)
    ctx_slowdown: float  # batch slowdown per unit of co-runners' busy share (time slicing)
    bw_slowdown: float  # batch slowdown per unit of co-runners' DRAM share (shared memory)
    full_load_c: float  # steady temperature at TDP with 25 °C ambient (cooling design point)
    throttle_c: float  # above this the governor lowers clocks
    clock_floor: float  # lowest clock factor thermal throttling goes to


DEVICE_CLASSES: Mapping[str, DeviceClass] = MappingProxyType(
    {
        "gpu-server": DeviceClass(
            overhead_ms=0.10,
            mem_efficiency=0.80,
            jitter_p90=1.03,
            jitter_p99=1.08,
            runtime_bytes=512 * _MIB,
            idle_bytes=0,
            ctx_slowdown=0.05,
            bw_slowdown=0.15,
            full_load_c=72.0,
            throttle_c=88.0,
            clock_floor=0.5,
        ),
        "jetson": DeviceClass(
            overhead_ms=0.20,
            mem_efficiency=0.70,
            jitter_p90=1.04,
            jitter_p99=1.12,
            runtime_bytes=384 * _MIB,
            idle_bytes=1 * _GIB,  # L4T userspace in the unified memory
            ctx_slowdown=0.08,
            bw_slowdown=0.30,  # GPU, DLAs and CPUs share one LPDDR
            full_load_c=68.0,
            throttle_c=82.0,
            clock_floor=0.4,
        ),
        "cpu": DeviceClass(
            overhead_ms=0.20,
            mem_efficiency=0.60,
            jitter_p90=1.08,
            jitter_p99=1.30,
            runtime_bytes=128 * _MIB,
            idle_bytes=2 * _GIB,  # OS and services
            ctx_slowdown=0.10,
            bw_slowdown=0.30,
            full_load_c=70.0,
            throttle_c=95.0,
            clock_floor=0.6,
        ),
    }
)

# Share of the op outputs (activation_traffic_bytes) that reach DRAM once the runtime fuses
# layers (conv+BN+ReLU, GEMM+bias+GELU, ...). Assumption, chosen so that no MLPerf row is
# memory-bound at the calibration batch; the compute efficiency is fitted on top of it.
FUSED_TRAFFIC: Mapping[str, float] = MappingProxyType(
    {"conv": 0.35, "detector": 0.35, "transformer": 0.5, "language-model": 0.5}
)
DEFAULT_FUSED_TRAFFIC = 0.5

# Power modes: a lower budget scales the clocks as (budget/top)^CLOCK_EXP and the memory
# bandwidth less, (budget/top)^BW_EXP (EMC clocks drop less than GPU clocks in nvpmodel tables;
# e.g. Xavier NX 10 W runs its GPU at ~0.75 of the 15 W clock).
CLOCK_EXP = 0.7
BW_EXP = 0.3
# Busy power: a device busy with batches that fill it draws its whole budget; one that runs
# small batches (low occupancy b/(b+b_half)) draws ACTIVITY_FLOOR of the dynamic range.
ACTIVITY_FLOOR = 0.5
# Thermal throttle given an explicit temperature: clock = 1 - slope * (T - threshold).
THROTTLE_SLOPE = 0.03
OVERLOAD_WINDOW_S = 60.0  # an overloaded queue grows for this long (one observation window)
_EPS_OPEN = 0.01  # M/G/1 denominator floor: waits cap at 100x the residual before overload
_EPS_CLOSED = 0.02  # share a starved closed loop still gets (finite latencies)
_Z90 = 1.2816  # standard normal quantiles, to read a service-time CV off the jitter
_Z99 = 2.3263


# --- network -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    gbit_s: float
    rtt_ms: float


# Assumed links (not measurements): an edge LAN, the WAN between edge and cloud, and the
# datacenter network between a cloud client and a cloud GPU server.
EDGE_LAN = Link(gbit_s=1.0, rtt_ms=0.5)
WAN = Link(gbit_s=0.5, rtt_ms=20.0)
DATACENTER = Link(gbit_s=10.0, rtt_ms=0.1)


def _link(profile: DeviceProfile, origin: str) -> Link | None:
    cloud_device = profile.kind == "gpu-server"
    if origin == "local":
        return None
    if origin == "edge":
        return WAN if cloud_device else EDGE_LAN
    if origin == "cloud":
        return DATACENTER if cloud_device else WAN
    raise ValueError(f"unknown origin {origin!r}; valid: {', '.join(ORIGINS)}")


def wire_bytes(workload: WorkloadFeatures) -> int:
    """Bytes one sample's input takes on the wire. Images travel as 8-bit pixels (the catalog
    counts float32 tensors); token ids and dense features as they are. No compression."""
    if any(len(shape) == 4 for shape in workload.input_shape):
        return max(workload.input_bytes // 4, 1)
    return workload.input_bytes


def transfer_ms(
    workload: WorkloadFeatures, batch: int, profile: DeviceProfile, origin: str = "edge"
) -> float:
    """Input transfer of one query (a batch) from `origin` to the device: RTT + bytes / rate."""
    link = _link(profile, origin)
    if link is None:
        return 0.0
    return link.rtt_ms + wire_bytes(workload) * batch * 8 / (link.gbit_s * 1e6)


# --- calibration constants ---------------------------------------------------------------


@dataclass(frozen=True)
class Efficiency:
    """Compute efficiency of one family on one device, and where the numbers come from.

    `compute`: the share of the dense peak reached at large batch. `half_mib`: a batch reaches
    half of it when its live activations (activation_bytes * batch, a proxy for the parallel
    work in one kernel) are this many MiB; so a model with small activations needs a larger
    batch to fill the device than one with large activations."""

    compute: float
    half_mib: float
    source: str

    def b_half(self, workload: WorkloadFeatures) -> float:
        """The batch at which `workload` reaches half the large-batch efficiency."""
        return self.half_mib * _MIB / max(workload.activation_bytes, 1)


# fmt: off
# (profile, family) -> Efficiency(compute, half_mib, source). Generated, do not edit by hand:
# `python -m edgetop.core.calibration --fit --write` refits and rewrites both tables. Sources
# (docs/perf-model.md explains each):
#   mlperf      fitted exactly to the device's MLPerf SingleStream p90 and Offline rows
#   mlperf-off  efficiency fitted to Offline rows only (DLRM); half_mib: the device's geomean
#   rank1       no MLPerf row: log efficiency = device term + family term, least squares over
#               the MLPerf fits; half_mib: geomean of the class's fits of that family
#   v100        V100 (no MLPerf data): family terms of rank1, device term set so that resnet50
#               matches the target derived from reference_points.csv via T4
#   sibling     Orin Nano: Orin NX's constants (same Ampere GPU; its own peak and bandwidth)
#   assumed     CPU box: conv efficiency 0.8 of its FP32 figure, resnet50 b_half 0.5
#   lm          language models: the device's transformer efficiency x padding factor 0.439
#               (no padding to skip, unlike MLPerf's BERT harness)
#   custom      geomean of the device's conv, transformer and detector entries
#   class       (CLASS_EFFICIENCY) geomean over the profiles of that kind
EFFICIENCY: Mapping[tuple[str, str], Efficiency] = MappingProxyType({
    ("a100-40gb", "conv"): Efficiency(0.4451, 136.3, "mlperf"),
    ("a100-40gb", "transformer"): Efficiency(1.141, 98.52, "mlperf"),
    ("a100-40gb", "detector"): Efficiency(0.5914, 98.49, "mlperf"),
    ("a100-40gb", "recommender"): Efficiency(0.5627, 109.8, "mlperf-off"),
    ("a100-40gb", "language-model"): Efficiency(0.5003, 98.52, "lm"),
    ("a100-40gb", "custom"): Efficiency(0.6697, 109.8, "custom"),
    ("a100-80gb", "conv"): Efficiency(0.55, 152.2, "mlperf"),
    ("a100-80gb", "transformer"): Efficiency(1.27, 96.87, "mlperf"),
    ("a100-80gb", "detector"): Efficiency(0.7545, 55.25, "rank1"),
    ("a100-80gb", "recommender"): Efficiency(0.6324, 84.43, "rank1"),
    ("a100-80gb", "language-model"): Efficiency(0.5569, 96.87, "lm"),
    ("a100-80gb", "custom"): Efficiency(0.8077, 93.39, "custom"),
    ("a100-sxm4-40gb", "conv"): Efficiency(0.5262, 158.1, "mlperf"),
    ("a100-sxm4-40gb", "transformer"): Efficiency(1.34, 118.7, "mlperf"),
    ("a100-sxm4-40gb", "detector"): Efficiency(0.6813, 102.3, "mlperf"),
    ("a100-sxm4-40gb", "recommender"): Efficiency(0.6616, 124.3, "mlperf-off"),
    ("a100-sxm4-40gb", "language-model"): Efficiency(0.5876, 118.7, "lm"),
    ("a100-sxm4-40gb", "custom"): Efficiency(0.7832, 124.3, "custom"),
    ("v100-16gb", "conv"): Efficiency(0.6502, 114.5, "v100"),
    ("v100-16gb", "transformer"): Efficiency(1.316, 85.59, "v100"),
    ("v100-16gb", "detector"): Efficiency(0.835, 55.25, "v100"),
    ("v100-16gb", "recommender"): Efficiency(0.6999, 84.43, "v100"),
    ("v100-16gb", "language-model"): Efficiency(0.5771, 85.59, "lm"),
    ("v100-16gb", "custom"): Efficiency(0.894, 81.51, "custom"),
    ("t4", "conv"): Efficiency(0.3879, 52.36, "mlperf"),
    ("t4", "transformer"): Efficiency(0.8459, 47.37, "mlperf"),
    ("t4", "detector"): Efficiency(0.4518, 16.74, "mlperf"),
    ("t4", "recommender"): Efficiency(0.3579, 34.63, "mlperf-off"),
    ("t4", "language-model"): Efficiency(0.3709, 47.37, "lm"),
    ("t4", "custom"): Efficiency(0.5293, 34.63, "custom"),
    ("jetson-agx-xavier", "conv"): Efficiency(0.5929, 35.6, "mlperf"),
    ("jetson-agx-xavier", "transformer"): Efficiency(0.7415, 49.49, "mlperf"),
    ("jetson-agx-xavier", "detector"): Efficiency(0.6985, 71.43, "mlperf"),
    ("jetson-agx-xavier", "recommender"): Efficiency(0.5282, 34.45, "rank1"),
    ("jetson-agx-xavier", "language-model"): Efficiency(0.3252, 49.49, "lm"),
    ("jetson-agx-xavier", "custom"): Efficiency(0.6747, 50.11, "custom"),
    ("jetson-xavier-nx", "conv"): Efficiency(0.4324, 23.6, "mlperf"),
    ("jetson-xavier-nx", "transformer"): Efficiency(0.6216, 39.94, "mlperf"),
    ("jetson-xavier-nx", "detector"): Efficiency(0.5557, 37.04, "mlperf"),
    ("jetson-xavier-nx", "recommender"): Efficiency(0.4154, 34.45, "rank1"),
    ("jetson-xavier-nx", "language-model"): Efficiency(0.2726, 39.94, "lm"),
    ("jetson-xavier-nx", "custom"): Efficiency(0.5306, 32.68, "custom"),
    ("jetson-agx-orin", "conv"): Efficiency(0.4243, 20.42, "mlperf"),
    ("jetson-agx-orin", "transformer"): Efficiency(1.044, 54.61, "mlperf"),
    ("jetson-agx-orin", "detector"): Efficiency(0.6009, 51.44, "rank1"),
    ("jetson-agx-orin", "recommender"): Efficiency(0.5036, 34.45, "rank1"),
    ("jetson-agx-orin", "language-model"): Efficiency(0.4578, 54.61, "lm"),
    ("jetson-agx-orin", "custom"): Efficiency(0.6433, 38.57, "custom"),
    ("jetson-orin-nx", "conv"): Efficiency(0.4348, 13.39, "mlperf"),
    ("jetson-orin-nx", "transformer"): Efficiency(0.8405, 35.84, "mlperf"),
    ("jetson-orin-nx", "detector"): Efficiency(0.5458, 51.44, "rank1"),
    ("jetson-orin-nx", "recommender"): Efficiency(0.4575, 34.45, "rank1"),
    ("jetson-orin-nx", "language-model"): Efficiency(0.3686, 35.84, "lm"),
    ("jetson-orin-nx", "custom"): Efficiency(0.5843, 29.12, "custom"),
    ("jetson-orin-nano", "conv"): Efficiency(0.4348, 13.39, "sibling"),
    ("jetson-orin-nano", "transformer"): Efficiency(0.8405, 35.84, "sibling"),
    ("jetson-orin-nano", "detector"): Efficiency(0.5458, 51.44, "sibling"),
    ("jetson-orin-nano", "recommender"): Efficiency(0.4575, 34.45, "sibling"),
    ("jetson-orin-nano", "language-model"): Efficiency(0.3686, 35.84, "lm"),
    ("jetson-orin-nano", "custom"): Efficiency(0.5843, 29.12, "custom"),
    ("cpu-8c", "conv"): Efficiency(0.8, 5.36, "assumed"),
    ("cpu-8c", "transformer"): Efficiency(1.619, 5.36, "assumed"),
    ("cpu-8c", "detector"): Efficiency(1.027, 5.36, "assumed"),
    ("cpu-8c", "recommender"): Efficiency(0.8612, 5.36, "assumed"),
    ("cpu-8c", "language-model"): Efficiency(0.7099, 5.36, "lm"),
    ("cpu-8c", "custom"): Efficiency(1.1, 5.36, "custom"),
})

# (device kind, family) -> Efficiency: for a profile not in EFFICIENCY.
CLASS_EFFICIENCY: Mapping[tuple[str, str], Efficiency] = MappingProxyType({
    ("cpu", "conv"): Efficiency(0.8, 5.36, "class"),
    ("cpu", "transformer"): Efficiency(1.619, 5.36, "class"),
    ("cpu", "detector"): Efficiency(1.027, 5.36, "class"),
    ("cpu", "recommender"): Efficiency(0.8612, 5.36, "class"),
    ("cpu", "language-model"): Efficiency(0.7099, 5.36, "class"),
    ("cpu", "custom"): Efficiency(1.1, 5.36, "class"),
    ("gpu-server", "conv"): Efficiency(0.5039, 114.5, "class"),
    ("gpu-server", "transformer"): Efficiency(1.167, 85.59, "class"),
    ("gpu-server", "detector"): Efficiency(0.6485, 55.25, "class"),
    ("gpu-server", "recommender"): Efficiency(0.5677, 80.45, "class"),
    ("gpu-server", "language-model"): Efficiency(0.5116, 85.59, "class"),
    ("gpu-server", "custom"): Efficiency(0.7251, 81.51, "class"),
    ("jetson", "conv"): Efficiency(0.4599, 19.84, "class"),
    ("jetson", "transformer"): Efficiency(0.8059, 42.5, "class"),
    ("jetson", "detector"): Efficiency(0.5866, 51.44, "class"),
    ("jetson", "recommender"): Efficiency(0.4708, 34.45, "class"),
    ("jetson", "language-model"): Efficiency(0.3534, 42.5, "class"),
    ("jetson", "custom"): Efficiency(0.6013, 35.14, "class"),
})
# fmt: on

_FALLBACK_EFFICIENCY = Efficiency(0.3, 8.0, "assumed: no calibration for this device class")


# --- precision and power modes -----------------------------------------------------------


def serving_precision(profile: DeviceProfile) -> tuple[str, float, int]:
    """(precision, dense peak in TFLOPS/TOPS, bytes per element) the device serves at: INT8
    where it has INT8 tensor cores (a TensorRT-class INT8 deployment), else FP16, else FP32."""
    if profile.int8_tops:
        return "int8", profile.int8_tops, 1
    if profile.fp16_tflops:
        return "fp16", profile.fp16_tflops, 2
    return "fp32", profile.fp32_tflops, 4


@dataclass(frozen=True)
class PowerMode:
    name: str
    budget_w: float
    clock: float  # compute clock factor against the top mode
    bw: float  # memory bandwidth factor against the top mode
    fraction: float  # budget / top-mode budget


_WATTS = re.compile(r"^(\d+(?:\.\d+)?)\s*W$", re.IGNORECASE)


def _budget_w(profile: DeviceProfile, mode: str) -> float:
    # MAXN and "default" are the uncapped mode: the board's TDP. "15W" budgets 15 W.
    match = _WATTS.match(mode)
    return min(float(match.group(1)), profile.tdp_w) if match else profile.tdp_w


def power_mode(profile: DeviceProfile, mode: str | None = None) -> PowerMode:
    """The power mode `mode` (None: the default) of `profile`, with its scaling factors."""
    name = profile.default_power_mode if mode is None else mode
    if name not in profile.power_modes:
        raise ValueError(
            f"{profile.name} has no power mode {name!r}; valid: {', '.join(profile.power_modes)}"
        )
    top = _budget_w(profile, profile.power_modes[0])
    ratio = _budget_w(profile, name) / top
    return PowerMode(name, _budget_w(profile, name), ratio**CLOCK_EXP, ratio**BW_EXP, ratio)


# --- the model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchTime:
    """One batch alone on the device (PerfModel.batch_time)."""

    service_ms: float
    memory_ms: float
    occupancy: float  # b / (b + b_half): how fully one batch fills the device


@dataclass(frozen=True)
class _Thermal:
    temp_c: float
    throttled: bool
    clock: float  # throttle clock factor (1: not throttled)
    power_w: float


def _validate(placement: Placement) -> None:
    if not isinstance(placement.batch, int) or placement.batch < 1:
        raise ValueError(f"batch must be a positive integer, got {placement.batch!r}")
    if placement.scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {placement.scenario!r}; valid: {', '.join(SCENARIOS)}")
    qps = placement.qps
    if qps is not None and not (qps >= 0 and math.isfinite(qps)):
        raise ValueError(f"qps must be a finite rate >= 0 samples/s, got {qps!r}")


def _wait_quantile(mean_ms: float, q: float) -> float:
    """q-quantile of a wait taken as exponential with the M/G/1 mean: Kingman's heavy-traffic
    limit, and a figure that only grows with the mean (an atom at zero would not)."""
    return mean_ms * -math.log(1.0 - q)


class PerfModel:
    """The model with one table of efficiencies. `evaluate` and friends at module level use
    the shipped tables; the calibration builds its own to fit them."""

    def __init__(
        self,
        efficiency: Mapping[tuple[str, str], Efficiency] = EFFICIENCY,
        class_efficiency: Mapping[tuple[str, str], Efficiency] = CLASS_EFFICIENCY,
    ) -> None:
        self.efficiency_table = efficiency
        self.class_table = class_efficiency

    def efficiency(self, profile: DeviceProfile, family: str) -> Efficiency:
        found = self.efficiency_table.get((profile.name, family))
        if found is None:
            found = self.class_table.get((profile.kind, family))
        if found is None and family != "custom":
            return self.efficiency(profile, "custom")
        return found or _FALLBACK_EFFICIENCY

    def batch_time(
        self,
        workload: WorkloadFeatures,
        batch: int,
        profile: DeviceProfile,
        clock: float = 1.0,
        bw: float = 1.0,
    ) -> BatchTime:
        cls = DEVICE_CLASSES[profile.kind]
        eff = self.efficiency(profile, workload.family)
        _, peak, elem = serving_precision(profile)
        b_half = eff.b_half(workload)
        compute = workload.gflops * (batch + b_half) / (peak * clock * eff.compute)
        fusion = FUSED_TRAFFIC.get(workload.family, DEFAULT_FUSED_TRAFFIC)
        traffic = workload.params * elem + fusion * workload.activation_traffic_bytes * batch * (
            elem / 4
        )
        memory = traffic / (profile.memory_bw_gbs * bw * cls.mem_efficiency * 1e6)
        service = cls.overhead_ms / clock + max(compute, memory)
        return BatchTime(service, memory, batch / (batch + b_half))

    def service_ms(
        self,
        workload: WorkloadFeatures,
        batch: int,
        profile: DeviceProfile,
        power_mode_name: str | None = None,
    ) -> float:
        mode = power_mode(profile, power_mode_name)
        return self.batch_time(workload, batch, profile, mode.clock, mode.bw).service_ms

    def evaluate(
        self,
        profile: DeviceProfile,
        placements: Sequence[Placement],
        condition: DeviceCondition = DeviceCondition(),
    ) -> DeviceOutcome:
        for placement in placements:
            _validate(placement)
        if condition.origin not in ORIGINS:
            raise ValueError(f"unknown origin {condition.origin!r}; valid: {', '.join(ORIGINS)}")
        cls = DEVICE_CLASSES[profile.kind]
        mode = power_mode(profile, condition.power_mode)
        times = [
            self.batch_time(p.workload, p.batch, profile, mode.clock, mode.bw) for p in placements
        ]
        # Interference and busy power from the cool device: throttling stretches every batch
        # alike, so the pressure a co-runner puts on the others is read before it.
        pressure = _pressure(placements, times)
        thermal = self._thermal(profile, cls, mode, pressure.activity, condition)
        if thermal.clock < 1.0:
            clock, bw = mode.clock * thermal.clock, mode.bw * math.sqrt(thermal.clock)
            times = [self.batch_time(p.workload, p.batch, profile, clock, bw) for p in placements]
        perfs, util, bw_util, open_util = _share(
            cls, profile, placements, times, pressure, condition
        )
        mem_used = cls.idle_bytes + sum(p.memory_bytes for p in perfs)
        return DeviceOutcome(
            performances=perfs,
            util=util,
            bw_util=bw_util,
            mem_used_bytes=mem_used,
            mem_total_bytes=profile.memory_bytes,
            power_w=thermal.power_w,
            temp_c=thermal.temp_c,
            throttled=thermal.throttled,
            overloaded=open_util > 1.0,
            fits=mem_used <= profile.memory_bytes,
            power_mode=mode.name,
            power_fraction=mode.fraction,
            open_util=open_util,
            mem_idle_bytes=cls.idle_bytes,
            clock_factor=mode.clock * thermal.clock,
        )

    @staticmethod
    def _thermal(
        profile: DeviceProfile,
        cls: DeviceClass,
        mode: PowerMode,
        activity: float,
        condition: DeviceCondition,
    ) -> _Thermal:
        """Power at the mode's clocks, the temperature it settles at, and the throttle.

        Busy power rises with the busy share and with how fully the batches fill the device.
        Steady state: T = ambient + R * P, with R such that TDP gives `full_load_c` at 25 °C.
        Above the threshold the governor lowers clocks until T sits at the threshold (dynamic
        power ~ clock^2 at a fixed load), down to the class's floor. An explicit temperature
        overrides the steady state: clocks drop linearly with the excess."""
        idle = min(profile.idle_power_w, mode.budget_w)
        dynamic = (mode.budget_w - idle) * activity
        resistance = (cls.full_load_c - 25.0) / profile.tdp_w
        if condition.temp_c is not None:
            temp = condition.temp_c
            excess = temp - cls.throttle_c
            clock = max(cls.clock_floor, 1.0 - THROTTLE_SLOPE * excess) if excess > 0 else 1.0
            return _Thermal(temp, excess > 0, clock, idle + dynamic * clock * clock)
        steady = condition.ambient_c + resistance * (idle + dynamic)
        if steady <= cls.throttle_c:
            return _Thermal(steady, False, 1.0, idle + dynamic)
        allowed = (cls.throttle_c - condition.ambient_c) / resistance - idle
        clock = math.sqrt(max(allowed, 0.0) / dynamic) if dynamic > 0 else 1.0
        clock = max(cls.clock_floor, min(clock, 1.0))
        power = idle + dynamic * clock * clock
        return _Thermal(
            max(cls.throttle_c, condition.ambient_c + resistance * power), True, clock, power
        )


def _is_open(placement: Placement) -> bool:
    # Offline always runs as fast as it can; anything else with a rate is open arrivals.
    return placement.scenario != "offline" and placement.qps is not None


@dataclass(frozen=True)
class _Pressure:
    """What the co-runners put on each placement, and the device's power activity. Closed
    loops count as fully busy (they take whatever is left), so adding a placement can only
    raise every figure here: the model never makes a placement faster by adding another."""

    ctx: tuple[float, ...]  # co-runners' busy share, per placement
    bw: tuple[float, ...]  # co-runners' DRAM share, per placement
    activity: float  # 0..1 of the dynamic power range


def _pressure(placements: Sequence[Placement], times: Sequence[BatchTime]) -> _Pressure:
    n = len(placements)
    busy = [
        _batch_rate(p, t.service_ms) * t.service_ms if _is_open(p) else 0.0
        for p, t in zip(placements, times, strict=True)
    ]
    mem = [min(t.memory_ms / t.service_ms, 1.0) for t in times]
    # Small batches do not light up the whole device: busy power scales with occupancy.
    intensity = [ACTIVITY_FLOOR + (1.0 - ACTIVITY_FLOOR) * t.occupancy for t in times]
    closed = [i for i, p in enumerate(placements) if not _is_open(p)]
    open_busy = sum(busy)
    open_bw = sum(u * m for u, m in zip(busy, mem, strict=True))
    ctx, bw = [], []
    for i in range(n):
        others = [j for j in closed if j != i]
        ctx.append(open_busy - busy[i] + (1.0 if others else 0.0))
        bw.append(open_bw - busy[i] * mem[i] + max((mem[j] for j in others), default=0.0))
    activity = sum(u * k for u, k in zip(busy, intensity, strict=True))
    activity += max((intensity[j] for j in closed), default=0.0)
    return _Pressure(tuple(ctx), tuple(bw), min(activity, 1.0))


def _batch_rate(placement: Placement, service: float) -> float:
    """Batches per ms a placement offers. A paced singlestream keeps one query in flight, so it
    cannot offer more than one batch per service time."""
    rate = (placement.qps or 0.0) / placement.batch / 1000.0
    if placement.scenario == "singlestream":
        rate = min(rate, 1.0 / service)
    return rate


def _share(
    cls: DeviceClass,
    profile: DeviceProfile,
    placements: Sequence[Placement],
    times: Sequence[BatchTime],
    pressure: _Pressure,
    condition: DeviceCondition,
) -> tuple[tuple[Performance, ...], float, float, float]:
    """Each placement's latency percentiles, throughput and busy share on the shared device;
    returns (performances, util, bw_util, open_util)."""
    base = [t.service_ms for t in times]
    mem_frac = [min(t.memory_ms / t.service_ms, 1.0) for t in times]
    service = [
        s * (1.0 + cls.ctx_slowdown * min(c, 1.0) + cls.bw_slowdown * min(b, 1.0))
        for s, c, b in zip(base, pressure.ctx, pressure.bw, strict=True)
    ]
    # A service-time CV consistent with the jitter percentiles (normal approximation).
    cv2 = ((cls.jitter_p99 - 1.0) / _Z99) ** 2
    open_idx = [i for i, p in enumerate(placements) if _is_open(p)]
    closed_idx = [i for i, p in enumerate(placements) if not _is_open(p)]
    rate = {i: _batch_rate(placements[i], service[i]) for i in open_idx}
    open_util = sum(rate[i] * service[i] for i in open_idx)
    residual_open = sum(rate[i] * service[i] ** 2 * (1.0 + cv2) / 2.0 for i in open_idx)
    closed_sum = sum(service[i] for i in closed_idx)
    # Residual of the closed-loop batch an open arrival finds in service (non-preemptive: open
    # work goes first, but a batch already running finishes): uniform up to the longest closed
    # batch (mean residual_closed), a conservative figure another closed loop can only raise.
    residual_closed = max((service[i] for i in closed_idx), default=0.0) / 2.0
    left = max(1.0 - open_util, _EPS_CLOSED)
    jitter = (1.0, cls.jitter_p90, cls.jitter_p99)
    quantiles = (0.5, 0.9, 0.99)
    perfs: list[Performance] = []
    utils: list[float] = []
    for i, p in enumerate(placements):
        s = service[i]
        transfer = transfer_ms(p.workload, p.batch, profile, condition.origin)
        if i in rate:
            own_residual, own_util = 0.0, 0.0
            if p.scenario == "singlestream":  # one in flight: never queues behind itself
                own_residual = rate[i] * s**2 * (1.0 + cv2) / 2.0
                own_util = rate[i] * s
            load = open_util - own_util
            wait = (residual_open - own_residual) / max(1.0 - load, _EPS_OPEN)
            backlog = max(load - 1.0, 0.0) * OVERLOAD_WINDOW_S * 1000.0
            lat = [
                transfer + s * j + _wait_quantile(wait, q) + residual_closed * 2 * q + backlog * q
                for j, q in zip(jitter, quantiles, strict=True)
            ]
            queue = wait + residual_closed + backlog / 2
            served = 1.0 / max(open_util, 1.0)
            if p.scenario == "singlestream":
                throughput = min(p.qps or 0.0, p.batch * 1000.0 / (s + queue))
                util = throughput / p.batch / 1000.0 * s
            else:
                throughput = (p.qps or 0.0) * served
                util = rate[i] * s * served
        else:
            others = closed_sum - s
            lat = [transfer + (s * j + others) / left for j in jitter]
            cycle = closed_sum / left
            queue = cycle - s
            throughput = p.batch * 1000.0 / cycle
            util = left * s / closed_sum
        utils.append(util)
        perfs.append(
            Performance(
                p50_ms=lat[0],
                p90_ms=lat[1],
                p99_ms=lat[2],
                service_ms=base[i],
                throughput=throughput,
                util=util,
                memory_bytes=p.workload.memory_bytes_at(p.batch) + cls.runtime_bytes,
                transfer_ms=transfer,
                queue_ms=queue,
            )
        )
    util_total = min(sum(utils), 1.0)
    bw_util = min(sum(u * m for u, m in zip(utils, mem_frac, strict=True)), 1.0)
    return tuple(perfs), util_total, bw_util, open_util


DEFAULT_MODEL = PerfModel()


def evaluate(
    profile: DeviceProfile,
    placements: Sequence[Placement],
    condition: DeviceCondition = DeviceCondition(),
) -> DeviceOutcome:
    """The device running `placements` in `condition`: each placement's latency percentiles
    and throughput, and the device's utilisation, memory, power and temperature."""
    return DEFAULT_MODEL.evaluate(profile, placements, condition)


def service_ms(
    workload: WorkloadFeatures,
    batch: int,
    profile: DeviceProfile,
    power_mode: str | None = None,
) -> float:
    """One batch alone on a cool device in `power_mode`: no queueing, no transfer."""
    return DEFAULT_MODEL.service_ms(workload, batch, profile, power_mode)


def device_features(
    profile: DeviceProfile,
    outcome: DeviceOutcome,
    condition: DeviceCondition = DeviceCondition(),
) -> DeviceFeatures:
    """What the scheduler sees of this device in this state (its static capability plus the
    telemetry the outcome implies)."""
    _, peak, _ = serving_precision(profile)
    return DeviceFeatures(
        kind=profile.kind,
        peak_tflops=peak,
        mem_bw_gbs=profile.memory_bw_gbs,
        mem_total_bytes=profile.memory_bytes,
        mem_free_bytes=max(profile.memory_bytes - outcome.mem_used_bytes, 0),
        util=outcome.util,
        colocated=len(outcome.performances),
        temp_c=outcome.temp_c,
        throttled=outcome.throttled,
        power_fraction=power_mode(profile, condition.power_mode).fraction,
        edge=profile.kind != "gpu-server",
    )
