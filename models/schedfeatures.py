"""The scheduler's input schema: one row per (workload, batch, device in its current state).

Shared by the training-data generator, the network and the live decision, so the three can
never disagree on what a column means. Pure numpy, no torch: the controller builds rows for
a thousand devices without building a model.

Conventions:
- Sizes and times enter as natural logs: latency is multiplicative in them, and a log keeps
  a 1,000x range (DLRM to SSD, Orin Nano to A100) in a range a small network fits well.
- A workload's family enters as its structure (attention, convolution, embedding lookups,
  detection head) rather than a one-hot of names, so a family the network never saw (GPT-2,
  a language model) still lands on columns it learned (attention).
- The request's offered rate (samples/s, None for a closed loop) enters as a log and as the
  share of the device's peak it asks for.
- Two roofline columns (compute-bound time and memory-bound time at peak) carry the physics
  the network would otherwise have to rediscover; they matter most for unseen workloads.
- The co-runners' mix (schema 3): utilisation reads 1.0 beside a closed-loop co-runner whether
  it runs 1 ms or 100 ms batches, yet the newcomer's wait is set by those batch times. Four
  columns summarise the deployments already on the device (`corunner_mix`): the open-loop load
  they offer, how many closed loops there are, their summed batch time and the
  utilisation-weighted mean batch time of all of them. Training and the live decision build
  them with the same function from the same kind of record (`CoRunner`).
- Schema 4 adds the open co-runners' measured busy share: what their workers report as the
  share of time spent executing batches. Utilisation reads 1.0 beside a closed loop and the
  open load above is read off latencies that include queueing; the busy share is the open
  work's real claim on the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgetop.models.workload import WorkloadFeatures

SCHEMA_VERSION = 4

# family -> (attention, convolution, embedding, detection head)
FAMILY_STRUCTURE: dict[str, tuple[float, float, float, float]] = {
    "conv": (0.0, 1.0, 0.0, 0.0),
    "detector": (0.0, 1.0, 0.0, 1.0),
    "transformer": (1.0, 0.0, 0.0, 0.0),
    "language-model": (1.0, 0.0, 1.0, 0.0),
    "recommender": (0.0, 0.0, 1.0, 0.0),
}
DEVICE_KINDS = ("gpu-server", "jetson", "cpu")

WORKLOAD_COLUMNS = (
    "log_gflops",
    "log_param_bytes",
    "log_activation_bytes",
    "log_input_bytes",
    "log_arithmetic_intensity",
    "has_attention",
    "has_convolution",
    "has_embedding",
    "has_detection_head",
    "log_batch",
)
DEVICE_COLUMNS = (
    "log_peak_tflops",
    "log_mem_bw_gbs",
    "log_mem_total_gib",
    "mem_free_fraction",
    "util",
    "colocated",
    "temp_norm",
    "throttled",
    "power_fraction",
    "edge",
    *(f"kind_{k}" for k in DEVICE_KINDS),
    # The co-runners' mix (schema 3; CorunnerMix): without it held-out p99 within 10% was 57%.
    "corunner_open_load",
    "corunner_closed",
    "log1p_corunner_closed_ms",
    "log1p_corunner_weighted_ms",
    # The open co-runners' busy share (schema 4): held-out p99 within 10% 82.3% -> 84.3%.
    "corunner_open_busy",
)
# The request's own rate: an open-loop stream's queueing on a device depends on the share of
# it the stream asks for (schema 1 lacked these, and held-out p99 within 10% was 40%).
REQUEST_COLUMNS = ("open_loop", "log_qps", "log_offered_share")
JOINT_COLUMNS = ("log_compute_ms", "log_memory_ms", "memory_need_fraction", *REQUEST_COLUMNS)
FEATURE_NAMES: tuple[str, ...] = (*WORKLOAD_COLUMNS, *DEVICE_COLUMNS, *JOINT_COLUMNS)

_GIB = float(1 << 30)
# Open load beyond this is "hopelessly overloaded" whatever its figure: keep the column bounded.
MAX_OPEN_LOAD = 4.0
# A closed loop starved by open load still gets a sliver of the device (core/perfmodel.py).
_CLOSED_FLOOR = 0.02


@dataclass(frozen=True)
class CoRunner:
    """A deployment already on a device, as the co-runner columns see it."""

    scenario: str  # "server", "singlestream" or "offline"
    batch: int
    qps: float | None  # samples/s it is served at (open loop); None: a closed loop
    batch_ms: float  # time one of its batches takes there (measured p50, else an estimate)
    busy: float | None = None  # measured share of the device it keeps busy; None: not known

    @property
    def open(self) -> bool:
        # As the performance model: offline always runs flat out; anything else with a rate
        # is open arrivals.
        return self.scenario != "offline" and self.qps is not None

    @property
    def load(self) -> float:
        """Share of the device its arrivals keep busy (open loops only; may exceed 1)."""
        if not self.open:
            return 0.0
        load = (self.qps or 0.0) / max(self.batch, 1) * max(self.batch_ms, 0.0) / 1000.0
        # A paced single stream keeps one query in flight: at most the whole device.
        return min(load, 1.0) if self.scenario == "singlestream" else load

    @property
    def busy_share(self) -> float:
        """Share of the device it keeps busy: measured if known, else its load (at most 1)."""
        if not self.open:
            return 0.0
        return min(max(self.busy if self.busy is not None else self.load, 0.0), 1.0)


@dataclass(frozen=True)
class CorunnerMix:
    """The five co-runner columns, before their logs (`corunner_mix`)."""

    open_load: float = 0.0  # sum of the open co-runners' offered load (may exceed 1)
    closed: int = 0  # closed-loop co-runners (offline, or single-stream without a rate)
    closed_ms: float = 0.0  # their summed batch time: the cycle a closed loop shares
    weighted_ms: float = 0.0  # utilisation-weighted mean batch time of all co-runners
    open_busy: float = 0.0  # the open co-runners' summed busy share, at most 1


def corunner_mix(corunners: Sequence[CoRunner]) -> CorunnerMix:
    """The co-runner columns of a device running `corunners`.

    Weights of the mean: an open co-runner's offered load; the closed loops share what the
    open ones leave (at least a sliver) in proportion to their batch times, as they take turns.
    """
    open_load = sum(c.load for c in corunners)
    closed = [c for c in corunners if not c.open]
    closed_ms = sum(max(c.batch_ms, 0.0) for c in closed)
    left = max(1.0 - open_load, _CLOSED_FLOOR)
    weights = [
        c.load if c.open else (left * max(c.batch_ms, 0.0) / closed_ms if closed_ms > 0 else 0.0)
        for c in corunners
    ]
    total = sum(weights)
    pairs = zip(weights, corunners)  # noqa: B905  (shipped to hosts on Python 3.8)
    weighted = sum(w * max(c.batch_ms, 0.0) for w, c in pairs) / total if total > 0 else 0.0
    open_busy = min(sum(c.busy_share for c in corunners), 1.0)
    return CorunnerMix(open_load, len(closed), closed_ms, weighted, open_busy)


def mix_columns(mix: CorunnerMix) -> tuple[float, float, float, float, float]:
    """The co-runner columns' values (the last five of DEVICE_COLUMNS)."""
    return (
        min(max(mix.open_load, 0.0), MAX_OPEN_LOAD),
        float(mix.closed),
        math.log1p(max(mix.closed_ms, 0.0)),
        math.log1p(max(mix.weighted_ms, 0.0)),
        min(max(mix.open_busy, 0.0), 1.0),
    )


MIX_COLUMNS = slice(len(DEVICE_COLUMNS) - 5, len(DEVICE_COLUMNS))


@dataclass(frozen=True)
class DeviceFeatures:
    """A device as the scheduler sees it: its static capability plus its live state."""

    kind: str  # one of DEVICE_KINDS
    peak_tflops: float  # dense peak at the precision it serves (INT8 TOPS, else FP16, else FP32)
    mem_bw_gbs: float
    mem_total_bytes: int
    mem_free_bytes: int
    util: float = 0.0  # 0..1 share of compute already busy (co-located work)
    colocated: int = 0  # deployments already running on it
    temp_c: float = 40.0
    throttled: bool = False
    power_fraction: float = 1.0  # power-mode budget over the device's top mode
    edge: bool = False  # at the edge (Jetson, CPU box) rather than a cloud GPU server
    # The co-runners' mix (CorunnerMix); 0 where nothing is known of them.
    corunner_open_load: float = 0.0
    corunner_closed: int = 0
    corunner_closed_ms: float = 0.0
    corunner_weighted_ms: float = 0.0
    corunner_open_busy: float = 0.0

    @property
    def mix(self) -> CorunnerMix:
        return CorunnerMix(
            self.corunner_open_load,
            self.corunner_closed,
            self.corunner_closed_ms,
            self.corunner_weighted_ms,
            self.corunner_open_busy,
        )

    def with_mix(self, mix: CorunnerMix) -> DeviceFeatures:
        return replace(
            self,
            corunner_open_load=mix.open_load,
            corunner_closed=mix.closed,
            corunner_closed_ms=mix.closed_ms,
            corunner_weighted_ms=mix.weighted_ms,
            corunner_open_busy=mix.open_busy,
        )


def _log(x: float) -> float:
    return math.log(max(x, 1e-9))


def workload_row(workload: WorkloadFeatures, batch: int) -> np.ndarray:
    structure = FAMILY_STRUCTURE.get(workload.family, (0.0, 0.0, 0.0, 0.0))
    return np.array(
        [
            _log(workload.gflops),
            _log(workload.param_bytes),
            _log(workload.activation_bytes_at(batch)),
            _log(workload.input_bytes * batch),
            _log(workload.arithmetic_intensity),
            *structure,
            _log(batch),
        ],
        dtype=np.float64,
    )


def device_row(device: DeviceFeatures) -> np.ndarray:
    return np.array(
        [
            _log(device.peak_tflops),
            _log(device.mem_bw_gbs),
            _log(device.mem_total_bytes / _GIB),
            device.mem_free_bytes / max(device.mem_total_bytes, 1),
            min(max(device.util, 0.0), 1.0),
            float(device.colocated),
            device.temp_c / 100.0,
            1.0 if device.throttled else 0.0,
            device.power_fraction,
            1.0 if device.edge else 0.0,
            *(1.0 if device.kind == k else 0.0 for k in DEVICE_KINDS),
            *mix_columns(device.mix),
        ],
        dtype=np.float64,
    )


def device_matrix(devices: Sequence[DeviceFeatures]) -> np.ndarray:
    """Device columns for many devices; build once per fleet snapshot, reuse per request."""
    if not devices:
        return np.zeros((0, len(DEVICE_COLUMNS)))
    return np.stack([device_row(d) for d in devices])


def roofline_log_ms(
    workload: WorkloadFeatures, batch: int, log_peak: np.ndarray, log_bw: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log ms of one batch compute-bound and memory-bound at the device's peak (the roofline
    columns), from the device rows' log peak and log bandwidth."""
    # GFLOP / TFLOP/s = ms; bytes / (GB/s) = ns, so /1e6 for ms.
    log_compute_ms = _log(workload.gflops * batch) - log_peak
    traffic = workload.param_bytes + workload.activation_traffic_bytes * batch
    return log_compute_ms, _log(traffic / 1e6) - log_bw


def roofline_ms(workload: WorkloadFeatures, batch: int, device: DeviceFeatures) -> float:
    """A lower bound on one batch's time on `device`: the slower of its compute and its memory
    traffic at peak. The co-runner estimate where no latency was measured yet."""
    c, m = roofline_log_ms(
        workload, batch, np.array([_log(device.peak_tflops)]), np.array([_log(device.mem_bw_gbs)])
    )
    return float(np.exp(max(c[0], m[0])))


def feature_matrix(
    workload: WorkloadFeatures,
    batch: int,
    devices: np.ndarray,
    qps: float | np.ndarray | None = None,
) -> np.ndarray:
    """Rows for one workload at one batch on every device of `devices` (a device_matrix).
    `qps`: the offered samples/s (one value, or one per row; None or NaN: a closed loop)."""
    n = devices.shape[0]
    w = np.broadcast_to(workload_row(workload, batch), (n, len(WORKLOAD_COLUMNS)))
    log_peak = devices[:, 0]
    mem_total = np.exp(devices[:, 2]) * _GIB
    log_compute_ms, log_memory_ms = roofline_log_ms(workload, batch, log_peak, devices[:, 1])
    need = workload.memory_bytes_at(batch) / np.maximum(mem_total * devices[:, 3], 1.0)
    rate = np.broadcast_to(np.asarray(np.nan if qps is None else qps, dtype=np.float64), (n,))
    open_loop = np.isfinite(rate) & (rate > 0)
    log_qps = np.log(np.where(open_loop, rate, 1.0))
    # GFLOP/s asked for over peak TFLOP/s (x1e3); a closed loop asks for the whole device.
    log_share = np.where(open_loop, log_qps + _log(workload.gflops) - log_peak - math.log(1e3), 0.0)
    joint = np.column_stack(
        [
            log_compute_ms,
            log_memory_ms,
            np.minimum(need, 10.0),
            open_loop.astype(np.float64),
            log_qps,
            log_share,
        ]
    )
    return np.hstack([w, devices, joint])


def feature_rows(
    workload: WorkloadFeatures,
    batch: int,
    devices: Sequence[DeviceFeatures],
    qps: float | np.ndarray | None = None,
) -> np.ndarray:
    return feature_matrix(workload, batch, device_matrix(devices), qps)
