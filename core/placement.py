"""The vocabulary of a placement decision: a request, the candidate devices, the answer.

Every policy (the learned one and each baseline) reads a `Fleet` and answers a
`Recommendation`, so the evaluation, `edgetop recommend` and `--auto` treat them alike. All
values are frozen and pure. A `Fleet` carries, next to its slots, the numbers every decision
reads as numpy columns (the scheduler's device matrix, free memory, utilisation...): built once
per fleet state, so a decision over 1,000 devices never rebuilds 1,000 rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, overload

import numpy as np

from edgetop.core.perfmodel import DEVICE_CLASSES, transfer_ms
from edgetop.core.profiles import PROFILES
from edgetop.models.schedfeatures import (
    DEVICE_COLUMNS,
    MIX_COLUMNS,
    CoRunner,
    CorunnerMix,
    DeviceFeatures,
    corunner_mix,
    device_matrix,
    mix_columns,
    roofline_ms,
)
from edgetop.models.workload import WorkloadFeatures

OBJECTIVES = ("latency", "throughput", "energy", "balance")
# Where queries come from unless a decision says otherwise (DecisionSettings.origin, the
# training rows' origin): co-runners' transfer is taken from there.
DEFAULT_ORIGIN = "edge"
GIB = float(1 << 30)

# Runtime/context memory a deployment holds beyond its weights and activations (CUDA context,
# inference runtime, allocator slack): the performance model's figures per device class.
RUNTIME_OVERHEAD_BYTES: Mapping[str, int] = MappingProxyType(
    {kind: cls.runtime_bytes for kind, cls in DEVICE_CLASSES.items()}
)

# Transfer time depends only on the device's class (which link reaches it).
_REPRESENTATIVE = {p.kind: p for p in reversed(PROFILES.values())}

# Positions of the live-state columns in a device_matrix row (models/schedfeatures.py).
COL_MEM_FREE_FRACTION = DEVICE_COLUMNS.index("mem_free_fraction")
COL_UTIL = DEVICE_COLUMNS.index("util")
COL_COLOCATED = DEVICE_COLUMNS.index("colocated")
COL_TEMP = DEVICE_COLUMNS.index("temp_norm")
COL_MIX = MIX_COLUMNS  # the co-runner columns (schemas 3 and 4)


@dataclass(frozen=True)
class Request:
    """Deploy `workload` at `batch` so that its p99 stays under `slo_ms`."""

    model: str
    workload: WorkloadFeatures
    batch: int
    slo_ms: float  # p99 bound
    scenario: str = "server"
    qps: float | None = None  # offered samples/s (server); None: unknown
    objective: str = "latency"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r}: one of {', '.join(OBJECTIVES)}")
        if self.batch < 1 or not self.slo_ms > 0:
            raise ValueError("batch must be >= 1 and slo_ms > 0")


@dataclass(frozen=True)
class Deployment:
    """A deployment running (or planned) on a device; observed latencies when known."""

    id: str
    model: str
    batch: int
    workload: WorkloadFeatures | None = None  # None: a model edgetop has no features for
    scenario: str = "server"
    qps: float | None = None
    slo_ms: float | None = None
    p50_ms: float | None = None  # observed
    p99_ms: float | None = None
    host: str = ""
    device: str = ""
    busy: float | None = None  # observed share of the device its worker keeps busy

    @property
    def key(self) -> str:
        return f"{self.host}/{self.device}"


@dataclass(frozen=True)
class DeviceSlot:
    """One device a request could go to, as the scheduler sees it now."""

    host: str
    device: str  # device id on the host ("gpu0", "cpu")
    features: DeviceFeatures
    profile: str | None = None  # core.profiles name when known (sim hosts, mapped GPUs)
    deployments: tuple[Deployment, ...] = ()
    online: bool = True
    reason: str | None = None  # why it cannot take work (offline, stale, unknown device)
    busy_power_w: float | None = None  # power when busy (TDP): the energy objective
    power_mode: str | None = None

    @property
    def key(self) -> str:
        return f"{self.host}/{self.device}"


def link_transfer_ms(
    workload: WorkloadFeatures, batch: int, kind: str, origin: str = DEFAULT_ORIGIN
) -> float:
    """Input transfer of one query to a device of `kind` from `origin`: the performance model's
    network assumptions, which depend only on the link that reaches the device."""
    link = _REPRESENTATIVE["gpu-server" if kind == "gpu-server" else "jetson"]
    return transfer_ms(workload, batch, link, origin)


def device_ms(
    p50_ms: np.ndarray | float, transfer_ms: np.ndarray | float, floor_ms: np.ndarray | float
) -> np.ndarray:
    """The device time of one batch behind an end-to-end p50: the p50 less the input
    transfer, at least `floor_ms` (its roofline time: an observed p50 can undercut the
    modelled transfer). Waiting and contention stay in: on a busy device an overestimate, on
    the safe side."""
    return np.maximum(np.asarray(p50_ms, dtype=np.float64) - transfer_ms, floor_ms)


def idle_rows(rows: np.ndarray) -> np.ndarray:
    """Device rows (a device_matrix) as the devices would be with nothing running: no load,
    no co-runners, all memory free; capability, throttling and power mode as they are, the
    temperature to the nearest 10 °C (so that devices alike have the same row)."""
    out = np.array(rows, dtype=np.float64, copy=True)
    out[:, COL_UTIL] = 0.0
    out[:, COL_COLOCATED] = 0.0
    out[:, COL_MEM_FREE_FRACTION] = 1.0
    out[:, COL_MIX] = 0.0
    out[:, COL_TEMP] = np.round(out[:, COL_TEMP], 1)  # temp_c / 100
    return out


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct rows of `rows`, the index of each row among them): predict once per kind
    of row. Compares the rows' bytes, ~7x faster than np.unique(axis=0)."""
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first], inverse.reshape(-1)


def corunner(dep: Deployment, device: DeviceFeatures, origin: str = DEFAULT_ORIGIN) -> CoRunner:
    """`dep` as a co-runner on `device`. Its batch time is its measured p50 less the input
    transfer the link implies (the p50 a worker reports is a batch with the queueing it sees
    there; on a cloud server reached over the WAN the transfer would be most of it), at least
    the roofline time. Before any measurement: the roofline lower bound of its workload on the
    device (no performance model: the live decision must not lean on the simulator's physics);
    a model edgetop has no features for: its p50 as is, else 0. Its rate is its `qps` unless it
    runs offline (always a closed loop)."""
    measured = dep.p50_ms if dep.p50_ms is not None and dep.p50_ms > 0 else None
    if dep.workload is None:
        batch_ms = float(measured or 0.0)
    else:
        batch_ms = roofline_ms(dep.workload, dep.batch, device)
        if measured is not None:
            transfer = link_transfer_ms(dep.workload, dep.batch, device.kind, origin)
            batch_ms = float(device_ms(measured, transfer, batch_ms))
    qps = None if dep.scenario == "offline" else dep.qps
    return CoRunner(dep.scenario, max(dep.batch, 1), qps, batch_ms, dep.busy)


def deployments_mix(
    deployments: Sequence[Deployment], device: DeviceFeatures, origin: str = DEFAULT_ORIGIN
) -> CorunnerMix:
    """The co-runner columns of `device` running `deployments`."""
    return corunner_mix([corunner(d, device, origin) for d in deployments])


def with_corunners(
    features: DeviceFeatures, deployments: Sequence[Deployment], origin: str = DEFAULT_ORIGIN
) -> DeviceFeatures:
    """`features` with its co-runner columns set from the deployments running there: what every
    builder of a DeviceSlot (live fleet, simulated evaluation, training rows) calls."""
    return features.with_mix(deployments_mix(deployments, features, origin))


def set_mix(rows: np.ndarray, corunners: Sequence[Sequence[CoRunner]]) -> np.ndarray:
    """Device rows (a device_matrix, one row per entry of `corunners`) with their co-runner
    columns recomputed for those co-runners: a device with a deployment added or taken away."""
    out = np.array(rows, dtype=np.float64, copy=True)
    for k, group in enumerate(corunners):
        out[k, COL_MIX] = mix_columns(corunner_mix(group))
    return out


def _group(slot: DeviceSlot) -> str:
    f = slot.features
    return slot.profile or f"{f.kind}:{f.peak_tflops:.3g}:{f.mem_total_bytes}"


def runtime_overhead(kind: str) -> int:
    return RUNTIME_OVERHEAD_BYTES.get(kind, RUNTIME_OVERHEAD_BYTES["gpu-server"])


def memory_need(workload: WorkloadFeatures, batch: int, kind: str) -> int:
    """Bytes a new deployment takes on a device of `kind`."""
    return workload.memory_bytes_at(batch) + runtime_overhead(kind)


def estimated_busy_power(features: DeviceFeatures) -> float:
    """A device's busy power when nothing better is known: a rough W per peak TFLOPS by class
    (the energy objective only compares devices, so the scale matters less than the order)."""
    per_tflops = {"gpu-server": 0.5, "jetson": 0.6, "cpu": 200.0}.get(features.kind, 1.0)
    return max(5.0, per_tflops * features.peak_tflops)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Fleet:
    """The devices a decision chooses among, with their columns precomputed.

    Build with `Fleet.build(slots)`; `replace(i, slot)` makes the next fleet state by rebuilding
    only the rows that changed (the simulator places one deployment at a time).
    """

    slots: tuple[DeviceSlot, ...]
    matrix: np.ndarray  # models.schedfeatures.device_matrix of the slots' features
    mem_free: np.ndarray  # bytes
    mem_total: np.ndarray
    util: np.ndarray  # 0..1
    colocated: np.ndarray
    online: np.ndarray  # bool
    busy_power_w: np.ndarray
    overhead: np.ndarray  # runtime bytes a new deployment needs there
    cloud: np.ndarray  # bool: a cloud GPU server (queries reach it over the WAN from the edge)
    groups: tuple[str, ...]  # devices alike (their profile): corrections carry over within one
    index: Mapping[str, int] = field(repr=False)
    # The devices as they would be idle (idle_rows), each distinct row once, and each device's
    # row among them: a request's alone-row features are built once per kind of device.
    idle_matrix: np.ndarray = field(repr=False)
    idle_index: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, slots: Sequence[DeviceSlot]) -> Fleet:
        slots = tuple(slots)
        feats = [s.features for s in slots]
        matrix = device_matrix(feats)
        idle, which = distinct_rows(idle_rows(matrix))
        return cls(
            slots=slots,
            matrix=_frozen(matrix),
            mem_free=_frozen(np.array([f.mem_free_bytes for f in feats], dtype=np.float64)),
            mem_total=_frozen(np.array([f.mem_total_bytes for f in feats], dtype=np.float64)),
            util=_frozen(np.array([min(max(f.util, 0.0), 1.0) for f in feats], dtype=np.float64)),
            colocated=_frozen(np.array([len(s.deployments) for s in slots], dtype=np.float64)),
            online=_frozen(np.array([s.online for s in slots], dtype=bool)),
            busy_power_w=_frozen(
                np.array(
                    [s.busy_power_w or estimated_busy_power(s.features) for s in slots],
                    dtype=np.float64,
                )
            ),
            overhead=_frozen(np.array([runtime_overhead(f.kind) for f in feats], dtype=np.float64)),
            cloud=_frozen(np.array([f.kind == "gpu-server" for f in feats], dtype=bool)),
            groups=tuple(_group(s) for s in slots),
            index=MappingProxyType({s.key: i for i, s in enumerate(slots)}),
            idle_matrix=_frozen(idle),
            idle_index=_frozen(which),
        )

    def __len__(self) -> int:
        return len(self.slots)

    def replace(self, changes: Mapping[int, DeviceSlot]) -> Fleet:
        """The same fleet with some slots changed; only their rows are recomputed."""
        if not changes:
            return self
        slots = list(self.slots)
        for i, slot in changes.items():
            slots[i] = slot
        idx = list(changes)
        part = Fleet.build([slots[i] for i in idx])

        def merged(full: np.ndarray, rows: np.ndarray) -> np.ndarray:
            out = full.copy()
            out[idx] = rows
            return _frozen(out)

        matrix = merged(self.matrix, part.matrix)
        idle, which = distinct_rows(idle_rows(matrix))
        return Fleet(
            slots=tuple(slots),
            matrix=matrix,
            mem_free=merged(self.mem_free, part.mem_free),
            mem_total=merged(self.mem_total, part.mem_total),
            util=merged(self.util, part.util),
            colocated=merged(self.colocated, part.colocated),
            online=merged(self.online, part.online),
            busy_power_w=merged(self.busy_power_w, part.busy_power_w),
            overhead=merged(self.overhead, part.overhead),
            cloud=merged(self.cloud, part.cloud),
            groups=tuple(_group(s) for s in slots),
            index=self.index
            if all(slots[i].key == self.slots[i].key for i in idx)
            else MappingProxyType({s.key: i for i, s in enumerate(slots)}),
            idle_matrix=_frozen(idle),
            idle_index=_frozen(which),
        )

    def need(self, workload: WorkloadFeatures, batch: int) -> np.ndarray:
        """Bytes the deployment would take on each device."""
        return workload.memory_bytes_at(batch) + self.overhead

    def transfer_ms(self, workload: WorkloadFeatures, batch: int, origin: str) -> np.ndarray:
        """Input transfer of one query to each device from `origin`: the performance model's
        network assumptions (from the edge: a WAN to cloud servers, a LAN to edge devices),
        which depend only on the link that reaches the device."""
        return np.where(
            self.cloud,
            link_transfer_ms(workload, batch, "gpu-server", origin),
            link_transfer_ms(workload, batch, "jetson", origin),
        )

    def admissible(self, workload: WorkloadFeatures, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(online, fits): the two checks every policy makes, as boolean columns."""
        return self.online, self.need(workload, batch) <= self.mem_free


@dataclass(frozen=True)
class Candidate:
    host: str
    device: str
    index: int  # position in the Fleet the recommendation was made from
    p50_ms: float | None  # None: the policy does not predict latency (most baselines)
    p99_ms: float | None
    confidence: float | None
    reason: str
    score: float | None = None  # the policy's ranking value (lower is better for learned)
    # Predicted to miss the SLO, offered because the prediction is too unsure to refuse on
    # and no device is predicted to meet it (core.recommend, DecisionSettings.trial_sigmas).
    trial: bool = False

    @property
    def key(self) -> str:
        return f"{self.host}/{self.device}"


@dataclass(frozen=True)
class Rejected:
    host: str
    device: str
    reason: str


class LazyRejections(Sequence[Rejected]):
    """Rejected devices whose reasons are formatted only when read.

    A decision over 1,000 devices may reject hundreds; the hot path stores their indices and
    a formatter, and `edgetop recommend` pays for the strings when it prints them.
    """

    __slots__ = ("_format", "_indices", "_slots")

    def __init__(
        self,
        slots: tuple[DeviceSlot, ...],
        indices: Sequence[int],
        format_reason: Callable[[int], str],
    ) -> None:
        self._slots = slots
        self._indices = tuple(map(int, indices))
        self._format = format_reason

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, i: int) -> Rejected: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Rejected]: ...
    def __getitem__(self, i: int | slice) -> Rejected | Sequence[Rejected]:
        if isinstance(i, slice):
            return tuple(self._one(j) for j in self._indices[i])
        return self._one(self._indices[i])

    def __iter__(self) -> Iterator[Rejected]:
        return (self._one(j) for j in self._indices)

    def _one(self, j: int) -> Rejected:
        slot = self._slots[j]
        return Rejected(slot.host, slot.device, self._format(j))

    def __repr__(self) -> str:
        return f"LazyRejections({len(self)} devices)"


@dataclass(frozen=True)
class Recommendation:
    policy: str
    request: Request
    candidates: tuple[Candidate, ...]  # ranked, best first
    rejected: Sequence[Rejected] = ()

    @property
    def chosen(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "policy": self.policy,
            "request": {
                "model": r.model,
                "batch": r.batch,
                "slo_ms": r.slo_ms,
                "scenario": r.scenario,
                "qps": r.qps,
                "objective": r.objective,
            },
            "chosen": None if self.chosen is None else self.chosen.key,
            "candidates": [
                {
                    "host": c.host,
                    "device": c.device,
                    "p50_ms": _num(c.p50_ms),
                    "p99_ms": _num(c.p99_ms),
                    "confidence": _num(c.confidence),
                    "score": _num(c.score),
                    "trial": c.trial,
                    "reason": c.reason,
                }
                for c in self.candidates
            ],
            "rejected": [
                {"host": x.host, "device": x.device, "reason": x.reason} for x in self.rejected
            ],
        }


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


class PredictionLike(Protocol):
    """What a predictor answers: arrays of shape (n,) (models.predictor.Prediction fits)."""

    @property
    def p50_ms(self) -> np.ndarray: ...
    @property
    def p99_ms(self) -> np.ndarray: ...
    @property
    def confidence(self) -> np.ndarray: ...


class Predictor(Protocol):
    """Latency of feature rows (models.predictor.LatencyPredictor fits; tests script one)."""

    def predict(self, x: np.ndarray) -> PredictionLike: ...


def offers_load(scenario: str, qps: float | None) -> bool:
    """Whether a deployment's arrivals are open (a rate, any scenario but offline): only those
    offer a load that queues others."""
    return scenario != "offline" and bool(qps)


def offered_util(
    scenario: str, qps: float | None, batch: int, time_per_batch_ms: np.ndarray
) -> np.ndarray:
    """Share of a device a deployment's arrivals keep busy: batches per second x time per batch.

    Only open arrivals (a rate, any scenario but offline) offer a load that queues others: a
    closed loop (offline, or one query in flight without a rate) takes what the open ones
    leave, so it counts 0 here (core/perfmodel.py serves open placements first the same way).
    """
    t = np.asarray(time_per_batch_ms, dtype=np.float64)
    if offers_load(scenario, qps):
        return (qps / batch) * t / 1000.0  # type: ignore[operator]
    return np.zeros_like(t)


class Policy(Protocol):
    """A placement policy: the learned scheduler and every baseline."""

    @property
    def name(self) -> str: ...

    def decide(self, request: Request, fleet: Fleet) -> Recommendation: ...


def fmt_ms(ms: float) -> str:
    """Latency as people write it: two significant figures below 10 ms, whole ms above."""
    if not math.isfinite(ms):
        return "inf"
    return f"{ms:.2g}" if ms < 10 else f"{ms:,.0f}"


def fmt_gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def admission_reason(fleet: Fleet, i: int, need: float) -> str | None:
    """Why device i cannot take a deployment needing `need` bytes at all, or None."""
    slot = fleet.slots[i]
    if not slot.online:
        return slot.reason or "offline"
    free = float(fleet.mem_free[i])
    if need > free:
        return f"needs {fmt_gib(need)}, {fmt_gib(max(free, 0.0))} free"
    return None
