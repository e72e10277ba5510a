"""Calibration of the performance model against MLPerf Inference, and its side-by-side table.

    python -m edgetop.core.calibration --markdown      the tables of docs/perf-model.md
    python -m edgetop.core.calibration --fit           refit; print the efficiency tables
    python -m edgetop.core.calibration --fit --write   refit and rewrite them in perfmodel.py

Reference data ships in core/reference/ (copied from the project's public reference set, each
row with its source): mlperf_results.csv (MLPerf Inference v0.7/v1.1/v3.0 closed division) and
reference_points.csv (vendor README figures, not MLPerf).

How a row is compared (all on an idle, cool device, top power mode, no input transfer):
- SingleStream p90 latency: the model's p90 of a singlestream placement at batch 1.
- Offline throughput: a closed offline placement at OFFLINE_BATCH (MLPerf-like: 256 on GPU
  servers, 32 on Jetsons, halved until it fits in memory); multi-accelerator systems (x2, x8)
  are divided by their accelerator count.
- bert-99 is the catalog's bert-large (seq 384); MLPerf's harness skips the padding, which the
  fitted transformer efficiency absorbs (it exceeds the dense peak on A100s for that reason).
- dlrm-99: one MLPerf sample aggregates 100-700 user-item pairs (270 on average in the MLPerf
  reference trace); our catalog dlrm sample is one pair, so MLPerf samples/s = pairs/s / 270.
  The catalog DLRM's embedding tables are scaled down; the gathers of the real 1 TB model are
  absorbed by the fitted recommender efficiency.
- Jetson Offline rows use the GPU and both DLAs; the fitted Jetson efficiencies absorb that.

The fit: per (device, family) covered by MLPerf, `efficiency` and `b_half` solve the two
equations p90(batch 1) = SingleStream and throughput(B) = Offline exactly (one unknown, with
`b_half` assumed, where only Offline exists). Everything else is derived and tagged (see
perfmodel.EFFICIENCY and docs/perf-model.md).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetop.core import perfmodel
from edgetop.core.perfmodel import (
    DEVICE_CLASSES,
    DeviceCondition,
    Efficiency,
    PerfModel,
    Placement,
)
from edgetop.core.profiles import PROFILES, DeviceProfile
from edgetop.models.catalog import load_catalog
from edgetop.models.workload import WorkloadFeatures

_MIB = 1 << 20
REFERENCE_DIR = Path(__file__).with_name("reference")
MLPERF_CSV = REFERENCE_DIR / "mlperf_results.csv"
REFERENCE_CSV = REFERENCE_DIR / "reference_points.csv"

ACCELERATOR_PROFILES: Mapping[str, str] = {
    "A100-PCIe-40GB": "a100-40gb",
    "A100-PCIe-80GB": "a100-80gb",
    "A100-SXM4-40GB": "a100-sxm4-40gb",
    "T4": "t4",
    "Jetson AGX Xavier 32GB": "jetson-agx-xavier",
    "Jetson Xavier NX 8GB": "jetson-xavier-nx",
    "Jetson AGX Orin devkit": "jetson-agx-orin",
    "Jetson Orin NX 16GB": "jetson-orin-nx",
}
UNCOVERED_ACCELERATORS: Mapping[str, str] = {
    "A100-SXM4 MIG 1g.5gb": "a MIG slice (1/7 of an A100) is not a fleet profile",
    "V100S-PCIe-32GB": "V100S (faster clocks, 32 GB) is not the fleet's V100-16GB",
}
BENCHMARK_WORKLOADS: Mapping[str, str] = {
    "resnet50": "resnet50",
    "bert-99": "bert-large",
    "ssd-resnet34": "ssd-resnet34",
    "dlrm-99": "dlrm",
}
UNCOVERED_BENCHMARKS: Mapping[str, str] = {
    "ssd-mobilenet": "not a calibration target (detectors are fitted on ssd-resnet34)",
    "retinanet": "not in the workload zoo",
    "bert-99.9": "99.9% accuracy runs FP16; simulated deployments are INT8",
}
COMPARED = {("SingleStream", "p90_latency"), ("Offline", "throughput")}

MLPERF_DLRM_PAIRS = 270  # mean user-item pairs per MLPerf DLRM sample (reference trace)
OFFLINE_BATCH: Mapping[str, int] = {"gpu-server": 256, "jetson": 32, "cpu": 16}

# Assumptions where no public figure pins a constant down (docs/perf-model.md):
CPU_CONV_EFFICIENCY = 0.8  # of the profile's (one-FMA-port) FP32 peak, oneDNN-class runtime
CPU_B_HALF = 0.5  # resnet50 batch at half efficiency: intra-op threads fill the cores
SIBLINGS: Mapping[str, str] = {"jetson-orin-nano": "jetson-orin-nx"}  # same GPU generation
V100_PROFILE = "v100-16gb"
V100_VIA = "t4"  # the device V100's reference points are transferred from (see v100_target)
FAMILIES = ("conv", "transformer", "detector", "recommender", "language-model", "custom")
MEASURED_FAMILIES = ("conv", "transformer", "detector", "recommender")


class CalibrationError(Exception):
    """The reference data cannot be read, or the model cannot reach a target."""


# --- reading the reference data -----------------------------------------------------------


@dataclass(frozen=True)
class MlperfRow:
    round: str
    system: str
    accelerator: str
    accelerator_count: int
    benchmark: str
    scenario: str
    metric: str
    value: float
    unit: str
    source: str

    @property
    def per_device(self) -> float:
        """The figure for one accelerator (throughputs of multi-accelerator systems split)."""
        if self.metric == "throughput" or self.metric == "qps":
            return self.value / self.accelerator_count
        return self.value

    @property
    def base_accelerator(self) -> str:
        return re.sub(r"\s*\(GPU\+2DLA\)$", "", self.accelerator)


@dataclass(frozen=True)
class ReferencePoint:
    source: str
    accelerator: str
    model: str
    precision: str
    batch: int
    metric: str
    value: float
    unit: str


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise CalibrationError(f"cannot read reference data {path}: {exc}") from None


def load_mlperf(path: Path = MLPERF_CSV) -> list[MlperfRow]:
    rows, source = [], ""
    for raw in _read_csv(path):
        source = source if raw["source"] == "same" else raw["source"]  # "same": as above
        rows.append(
            MlperfRow(
                raw["round"],
                raw["system"],
                raw["accelerator"],
                int(raw["accelerator_count"]),
                raw["benchmark"],
                raw["scenario"],
                raw["metric"],
                float(raw["value"]),
                raw["unit"],
                source,
            )
        )
    return rows


def load_reference_points(path: Path = REFERENCE_CSV) -> list[ReferencePoint]:
    return [
        ReferencePoint(
            r["source"],
            r["accelerator"],
            r["model"],
            r["precision"],
            int(r["batch"]),
            r["metric"],
            float(r["value"]),
            r["unit"],
        )
        for r in _read_csv(path)
    ]


def uncovered_reason(row: MlperfRow) -> str | None:
    """Why a row is not compared, or None when it is."""
    if row.base_accelerator in UNCOVERED_ACCELERATORS:
        return UNCOVERED_ACCELERATORS[row.base_accelerator]
    if row.base_accelerator not in ACCELERATOR_PROFILES:
        return "accelerator not mapped to a fleet profile"
    if row.benchmark in UNCOVERED_BENCHMARKS:
        return UNCOVERED_BENCHMARKS[row.benchmark]
    if row.benchmark not in BENCHMARK_WORKLOADS:
        return "benchmark not mapped to a catalog workload"
    if (row.scenario, row.metric) not in COMPARED:
        return f"{row.scenario} is not a calibration target (SingleStream and Offline are)"
    return None


def covered_rows(rows: Iterable[MlperfRow] | None = None) -> list[MlperfRow]:
    return [r for r in (load_mlperf() if rows is None else rows) if uncovered_reason(r) is None]


# --- simulating a row ------------------------------------------------------------------------

_LOCAL = DeviceCondition(origin="local")


def offline_batch(profile: DeviceProfile, workload: WorkloadFeatures) -> int:
    """The calibration's Offline batch: MLPerf-like per device class, halved until it fits;
    DLRM counts pairs (MLPERF_DLRM_PAIRS per MLPerf sample)."""
    batch = OFFLINE_BATCH[profile.kind] * (
        MLPERF_DLRM_PAIRS if workload.family == "recommender" else 1
    )
    cls = DEVICE_CLASSES[profile.kind]
    while batch > 1 and (
        cls.idle_bytes + cls.runtime_bytes + workload.memory_bytes_at(batch) > profile.memory_bytes
    ):
        batch //= 2
    return batch


def _samples_per_mlperf_sample(workload: WorkloadFeatures) -> int:
    return MLPERF_DLRM_PAIRS if workload.family == "recommender" else 1


def simulate_singlestream_p90(
    profile: DeviceProfile, workload: WorkloadFeatures, model: PerfModel
) -> float:
    outcome = model.evaluate(profile, [Placement(workload, 1, "singlestream")], _LOCAL)
    return outcome.performances[0].p90_ms


def simulate_offline(profile: DeviceProfile, workload: WorkloadFeatures, model: PerfModel) -> float:
    """MLPerf Offline samples/s of one device."""
    batch = offline_batch(profile, workload)
    outcome = model.evaluate(profile, [Placement(workload, batch, "offline")], _LOCAL)
    return outcome.performances[0].throughput / _samples_per_mlperf_sample(workload)


@dataclass(frozen=True)
class Comparison:
    row: MlperfRow
    profile: str | None
    workload: str | None
    published: float  # per device
    simulated: float | None
    reason: str | None  # why not covered, else None

    @property
    def error(self) -> float | None:
        if self.simulated is None:
            return None
        return self.simulated / self.published - 1.0


def compare(
    rows: Iterable[MlperfRow] | None = None, model: PerfModel | None = None
) -> list[Comparison]:
    """Every MLPerf row beside the model's figure (None where the row is not covered)."""
    model = model or perfmodel.DEFAULT_MODEL
    catalog = load_catalog()
    out = []
    for row in load_mlperf() if rows is None else rows:
        reason = uncovered_reason(row)
        if reason is not None:
            out.append(Comparison(row, None, None, row.per_device, None, reason))
            continue
        profile = PROFILES[ACCELERATOR_PROFILES[row.base_accelerator]]
        workload = catalog[BENCHMARK_WORKLOADS[row.benchmark]]
        if row.scenario == "SingleStream":
            sim = simulate_singlestream_p90(profile, workload, model)
        else:
            sim = simulate_offline(profile, workload, model)
        out.append(Comparison(row, profile.name, workload.name, row.per_device, sim, None))
    return out


# --- fitting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What MLPerf says about one (device, family): geometric means over its covered rows."""

    profile: str
    workload: str
    p90_ms: float | None
    offline: float | None  # MLPerf samples/s per device
    benchmarks: tuple[str, ...]


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def targets(rows: Iterable[MlperfRow] | None = None) -> list[Target]:
    groups: dict[tuple[str, str], list[MlperfRow]] = {}
    for row in covered_rows(rows):
        key = (ACCELERATOR_PROFILES[row.base_accelerator], BENCHMARK_WORKLOADS[row.benchmark])
        groups.setdefault(key, []).append(row)
    out = []
    for (profile, workload), group in groups.items():
        ss = [r.per_device for r in group if r.scenario == "SingleStream"]
        off = [r.per_device for r in group if r.scenario == "Offline"]
        out.append(
            Target(
                profile,
                workload,
                _geomean(ss) if ss else None,
                _geomean(off) if off else None,
                tuple(sorted({r.benchmark for r in group})),
            )
        )
    return out


def _half_mib(workload: WorkloadFeatures, b_half: float) -> float:
    """The device's half-saturation activations, from a b_half measured on `workload`."""
    return b_half * workload.activation_bytes / _MIB


def _trial(
    profile: DeviceProfile, workload: WorkloadFeatures, compute: float, b_half: float
) -> PerfModel:
    """A model whose only entry is (profile, workload's family) at these constants."""
    eff = Efficiency(compute, _half_mib(workload, b_half), "trial")
    return PerfModel({(profile.name, workload.family): eff}, {})


def _bisect(fn, lo: float, hi: float, target: float, increasing: bool, steps: int = 100) -> float:
    """x in [lo, hi] (log scale) where the monotone fn(x) meets target (clamped to the ends)."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(steps):
        mid = (a + b) / 2
        above = fn(math.exp(mid)) > target
        if above == increasing:
            b = mid
        else:
            a = mid
    return math.exp((a + b) / 2)


def solve_compute(
    profile: DeviceProfile, workload: WorkloadFeatures, batch: int, service_ms: float, b_half: float
) -> float:
    """The efficiency at which one batch takes `service_ms` on `profile` (given b_half)."""

    def service(eff: float) -> float:
        model = _trial(profile, workload, eff, b_half)
        return model.batch_time(workload, batch, profile).service_ms

    if service(1e3) >= service_ms:
        raise CalibrationError(
            f"{workload.name} on {profile.name} at batch {batch}: {service_ms:.4g} ms is below "
            f"what memory bandwidth and overhead allow ({service(1e3):.4g} ms)"
        )
    return _bisect(service, 1e-6, 1e3, service_ms, increasing=False)


def _service_targets(
    profile: DeviceProfile, workload: WorkloadFeatures, target: Target
) -> tuple[float | None, tuple[int, float] | None]:
    """The batch-1 service time and the (batch, service time) the targets imply."""
    cls = DEVICE_CLASSES[profile.kind]
    s1 = target.p90_ms / cls.jitter_p90 if target.p90_ms is not None else None
    off = None
    if target.offline is not None:
        batch = offline_batch(profile, workload)
        per_second = target.offline * _samples_per_mlperf_sample(workload)
        off = (batch, batch * 1000.0 / per_second)
    return s1, off


def fit_pair(
    profile: DeviceProfile,
    workload: WorkloadFeatures,
    target: Target,
    b_half: float | None = None,
) -> tuple[float, float]:
    """(efficiency, b_half) for one covered (device, family). Without a SingleStream row
    `b_half` must be given; only the efficiency is fitted then."""
    s1, off = _service_targets(profile, workload, target)
    if off is None:
        raise CalibrationError(f"{profile.name}/{workload.name}: no Offline row to fit")
    batch, s_batch = off
    if s1 is None:
        if b_half is None:
            raise CalibrationError(f"{profile.name}/{workload.name}: no SingleStream row")
        return solve_compute(profile, workload, batch, s_batch, b_half), b_half

    def s1_for(b_half: float) -> float:
        eff = solve_compute(profile, workload, batch, s_batch, b_half)
        model = _trial(profile, workload, eff, b_half)
        return model.batch_time(workload, 1, profile).service_ms

    b_half = _bisect(s1_for, 1e-3, 1e5, s1, increasing=True, steps=60)
    return solve_compute(profile, workload, batch, s_batch, b_half), b_half


def padding_factor(points: Sequence[ReferencePoint] | None = None) -> float:
    """Work of a padded seq-384 BERT sample over MLPerf's (padding skipped): the TensorRT demo's
    INT8 batch-128 throughput over MLPerf Offline, geometric mean over A100 and T4. Language
    models have no padding to skip, so their efficiency is the transformer's times this."""
    points = load_reference_points() if points is None else points
    mlperf = {
        (ACCELERATOR_PROFILES.get(r.base_accelerator), r.accelerator_count): r.value
        for r in load_mlperf()
        if r.benchmark == "bert-99" and r.scenario == "Offline"
    }
    pairs = {"A100-40GB": "a100-40gb", "T4": "t4"}
    ratios = []
    for p in points:
        if p.model == "bert-large-seq384" and p.precision == "INT8" and p.batch == 128:
            profile = pairs.get(p.accelerator)
            if profile and (profile, 1) in mlperf:
                ratios.append(p.batch * 1000.0 / p.value / mlperf[(profile, 1)])
    if not ratios:
        raise CalibrationError("reference_points.csv has no TensorRT BERT batch-128 rows")
    return _geomean(ratios)


def v100_target(points: Sequence[ReferencePoint] | None = None) -> tuple[int, float]:
    """(batch, samples/s) the simulated V100 should reach on resnet50: T4's MLPerf Offline,
    times V100/T4 measured with the same framework and precision (PyTorch AMP, batch 256), times
    T4's FP16/INT8 peak ratio (V100 has no INT8 tensor cores: it serves FP16)."""
    points = load_reference_points() if points is None else points
    amp = {
        p.accelerator: p.value
        for p in points
        if p.model == "resnet50" and p.precision == "AMP" and p.batch == 256
    }
    t4_mlperf = _geomean(
        [
            r.per_device
            for r in covered_rows()
            if r.benchmark == "resnet50" and r.scenario == "Offline" and r.base_accelerator == "T4"
        ]
    )
    t4 = PROFILES[V100_VIA]
    ratio = amp["V100-16GB"] / amp["T4"] * (t4.fp16_tflops or 0.0) / (t4.int8_tops or 1.0)
    return 256, t4_mlperf * ratio


@dataclass(frozen=True)
class Fit:
    efficiency: dict[tuple[str, str], Efficiency]
    class_efficiency: dict[tuple[str, str], Efficiency]


def _round(x: float) -> float:
    return float(f"{x:.4g}")


_Table = dict[tuple[str, str], Efficiency]


def _fit_mlperf(rows: Iterable[MlperfRow] | None) -> _Table:
    """The (device, family) pairs MLPerf covers. SingleStream + Offline pin both constants;
    Offline alone (DLRM) pins the efficiency, half_mib being the device's other fits' geomean."""
    catalog = load_catalog()
    table: _Table = {}
    found = targets(rows)
    for target in [t for t in found if t.p90_ms is not None]:
        profile, workload = PROFILES[target.profile], catalog[target.workload]
        eff, b_half = fit_pair(profile, workload, target)
        half = _half_mib(workload, b_half)
        table[(target.profile, workload.family)] = Efficiency(_round(eff), _round(half), "mlperf")
    for target in [t for t in found if t.p90_ms is None]:
        profile, workload = PROFILES[target.profile], catalog[target.workload]
        half = _round(_geomean([e.half_mib for (d, _), e in table.items() if d == profile.name]))
        eff, _ = fit_pair(profile, workload, target, half * _MIB / workload.activation_bytes)
        table[(target.profile, workload.family)] = Efficiency(_round(eff), half, "mlperf-off")
    return table


def _rank1(table: _Table) -> tuple[dict[str, float], dict[str, float]]:
    """log efficiency = device term + family term, least squares over the MLPerf fits."""
    devices = sorted({d for d, _ in table})
    fams = list(MEASURED_FAMILIES)
    a = np.zeros((len(table), len(devices) + len(fams)))
    y = np.zeros(len(table))
    for row, ((d, f), e) in enumerate(table.items()):
        a[row, devices.index(d)] = 1.0
        a[row, len(devices) + fams.index(f)] = 1.0
        y[row] = math.log(e.compute)
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    dev_term = {d: float(coef[i]) for i, d in enumerate(devices)}
    fam_term = {f: float(coef[len(devices) + i]) for i, f in enumerate(fams)}
    return dev_term, fam_term


def _class_half(table: _Table, kind: str, family: str) -> float:
    """half_mib where MLPerf does not pin it: geometric mean over the class's two-row fits of
    that family, else of every family."""
    fits = [
        (f, e.half_mib)
        for (d, f), e in table.items()
        if PROFILES[d].kind == kind and e.source == "mlperf"
    ]
    same = [h for f, h in fits if f == family]
    return _geomean(same or [h for _, h in fits])


def _anchored_device_terms(table: _Table, fam_term: Mapping[str, float]) -> dict[str, float]:
    """Device terms of profiles without MLPerf rows: V100 from its reference_points target,
    the CPU box from the assumed conv efficiency."""
    resnet = load_catalog()["resnet50"]
    v100 = PROFILES[V100_PROFILE]
    batch, rate = v100_target()
    conv_b_half = _class_half(table, v100.kind, "conv") * _MIB / resnet.activation_bytes
    v100_conv = solve_compute(v100, resnet, batch, batch * 1000.0 / rate, conv_b_half)
    terms = {V100_PROFILE: math.log(v100_conv) - fam_term["conv"]}
    for name, profile in PROFILES.items():
        if profile.kind == "cpu":
            terms[name] = math.log(CPU_CONV_EFFICIENCY) - fam_term["conv"]
    return terms


def _geomean_entry(entries: Sequence[Efficiency], source: str) -> Efficiency:
    return Efficiency(
        _round(_geomean([e.compute for e in entries])),
        _round(_geomean([e.half_mib for e in entries])),
        source,
    )


def fit(rows: Iterable[MlperfRow] | None = None) -> Fit:
    """Refit every constant of perfmodel.EFFICIENCY and CLASS_EFFICIENCY from the reference
    data (the tags are explained in perfmodel and docs/perf-model.md)."""
    table = _fit_mlperf(rows)
    dev_term, fam_term = _rank1(table)
    dev_term.update(_anchored_device_terms(table, fam_term))
    cpu_half = _half_mib(load_catalog()["resnet50"], CPU_B_HALF)
    for name, profile in PROFILES.items():
        if name in SIBLINGS:
            continue
        for family in MEASURED_FAMILIES:
            if (name, family) in table:
                continue
            eff = _round(math.exp(dev_term[name] + fam_term[family]))
            if profile.kind == "cpu":
                table[(name, family)] = Efficiency(eff, _round(cpu_half), "assumed")
            else:
                tag = "v100" if name == V100_PROFILE else "rank1"
                half = _round(_class_half(table, profile.kind, family))
                table[(name, family)] = Efficiency(eff, half, tag)
    for name, sibling in SIBLINGS.items():
        for family in MEASURED_FAMILIES:
            e = table[(sibling, family)]
            table[(name, family)] = Efficiency(e.compute, e.half_mib, "sibling")

    pad = padding_factor()
    for name in PROFILES:
        tr = table[(name, "transformer")]
        table[(name, "language-model")] = Efficiency(_round(tr.compute * pad), tr.half_mib, "lm")
        trio = [table[(name, f)] for f in ("conv", "transformer", "detector")]
        table[(name, "custom")] = _geomean_entry(trio, "custom")

    ordered = {(n, f): table[(n, f)] for n in PROFILES for f in FAMILIES}
    classes = {
        (kind, family): _geomean_entry(
            [ordered[(n, family)] for n, p in PROFILES.items() if p.kind == kind], "class"
        )
        for kind in sorted({p.kind for p in PROFILES.values()})
        for family in FAMILIES
    }
    return Fit(ordered, classes)


# --- output ----------------------------------------------------------------------------------

_BEGIN = "EFFICIENCY: Mapping[tuple[str, str], Efficiency] = MappingProxyType({\n"
_MIDDLE = "CLASS_EFFICIENCY: Mapping[tuple[str, str], Efficiency] = MappingProxyType({\n"
_END = "})\n"


def _entries(table: Mapping[tuple[str, str], Efficiency]) -> str:
    return "".join(
        f'    ("{k}", "{f}"): Efficiency({e.compute!r}, {e.half_mib!r}, "{e.source}"),\n'
        for (k, f), e in table.items()
    )


def python_tables(result: Fit) -> str:
    return (
        _BEGIN
        + _entries(result.efficiency)
        + _END
        + "\n"
        + _MIDDLE
        + _entries(result.class_efficiency)
        + _END
    )


def write_tables(result: Fit, path: Path = Path(perfmodel.__file__)) -> None:
    """Replace the two generated tables in perfmodel.py."""
    text = path.read_text(encoding="utf-8")
    start = text.index(_BEGIN)
    middle = text.index(_MIDDLE, start)
    end = text.index(_END, middle) + len(_END)
    comment = text[text.index(_END, start) + len(_END) : middle]
    new = (
        _BEGIN
        + _entries(result.efficiency)
        + _END
        + comment
        + _MIDDLE
        + _entries(result.class_efficiency)
        + _END
    )
    path.write_text(text[:start] + new + text[end:], encoding="utf-8")


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def markdown_mlperf(comparisons: Sequence[Comparison]) -> str:
    head = (
        "| round | system | benchmark | scenario | profile | published | simulated | error |\n"
        "|---|---|---|---|---|---:|---:|---:|\n"
    )
    lines = []
    for c in comparisons:
        if c.simulated is None or c.error is None:
            continue
        r = c.row
        unit = "ms p90" if r.scenario == "SingleStream" else "samples/s"
        count = f" (÷{r.accelerator_count})" if r.accelerator_count > 1 else ""
        lines.append(
            f"| {r.round} | {r.system} | {r.benchmark} | {r.scenario} | {c.profile} | "
            f"{_fmt(c.published)} {unit}{count} | {_fmt(c.simulated)} | {c.error:+.1%} |"
        )
    skipped = [
        f"| {c.row.round} | {c.row.system} | {c.row.benchmark} | {c.row.scenario} | "
        f"{_fmt(c.row.value)} {c.row.unit} | {c.reason} |"
        for c in comparisons
        if c.reason is not None
    ]
    worst = max(abs(c.error) for c in comparisons if c.error is not None)
    return (
        head
        + "\n".join(lines)
        + f"\n\n{len(lines)} rows compared, largest error {worst:.1%}.\n\n"
        + "Not covered:\n\n| round | system | benchmark | scenario | value | why |\n"
        + "|---|---|---|---|---:|---|\n"
        + "\n".join(skipped)
        + "\n"
    )


_REFERENCE_PROFILES = {
    "V100-16GB": "v100-16gb",
    "V100": "v100-16gb",
    "T4": "t4",
    "A100-40GB": "a100-40gb",
}
_REFERENCE_MODELS = {
    "resnet50": "resnet50",
    "bert-large-seq384": "bert-large",
    "yolov5s-640": "yolov5s",
    "yolov5m-640": "yolov5m",
}


def simulate_reference(point: ReferencePoint, model: PerfModel | None = None) -> float:
    """The model's figure for a reference point, in the point's metric (idle device, no
    transfer): avg_latency -> p50 of a singlestream at that batch; latency_per_image -> that
    divided by the batch; throughput -> a closed loop at that batch."""
    model = model or perfmodel.DEFAULT_MODEL
    profile = PROFILES[_REFERENCE_PROFILES[point.accelerator]]
    workload = load_catalog()[_REFERENCE_MODELS[point.model]]
    scenario = "offline" if point.metric == "throughput" else "singlestream"
    outcome = model.evaluate(profile, [Placement(workload, point.batch, scenario)], _LOCAL)
    perf = outcome.performances[0]
    if point.metric == "throughput":
        return perf.throughput
    if point.metric == "latency_per_image":
        return perf.p50_ms / point.batch
    return perf.p50_ms


def markdown_reference(points: Sequence[ReferencePoint] | None = None) -> str:
    points = load_reference_points() if points is None else points
    lines = [
        "| source | accelerator | model | precision | batch | metric | published | simulated "
        "| ratio |",
        "|---|---|---|---|---:|---|---:|---:|---:|",
    ]
    for p in points:
        sim = simulate_reference(p)
        lines.append(
            f"| {p.source} | {p.accelerator} | {p.model} | {p.precision} | {p.batch} | "
            f"{p.metric} ({p.unit}) | {_fmt(p.value)} | {_fmt(sim)} | {sim / p.value:.2f} |"
        )
    batch, rate = v100_target(points)
    sim = simulate_offline(
        PROFILES[V100_PROFILE], load_catalog()["resnet50"], perfmodel.DEFAULT_MODEL
    )
    lines.append("")
    lines.append(
        f"V100 target (derived): resnet50 batch {batch}, {rate:,.0f} samples/s; "
        f"simulated {sim:,.0f} ({sim / rate - 1:+.1%}). Padding factor (language models): "
        f"{padding_factor(points):.3f}."
    )
    return "\n".join(lines) + "\n"


def markdown_constants(table: Mapping[tuple[str, str], Efficiency] | None = None) -> str:
    table = perfmodel.EFFICIENCY if table is None else table
    lines = [
        "| profile | family | efficiency | half_mib | source |",
        "|---|---|---:|---:|---|",
    ]
    for (name, family), e in table.items():
        lines.append(f"| {name} | {family} | {e.compute:.3g} | {e.half_mib:.3g} | {e.source} |")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    return (
        "### MLPerf Inference, published vs simulated (per accelerator)\n\n"
        + markdown_mlperf(compare())
        + "\n### Reference points (not MLPerf; not targets except the derived V100 figure)\n\n"
        + markdown_reference()
        + "\n### Efficiency constants\n\n"
        + markdown_constants()
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edgetop.core.calibration",
        description="Calibrate the performance model against MLPerf Inference.",
    )
    parser.add_argument("--markdown", action="store_true", help="print the side-by-side tables")
    parser.add_argument("--fit", action="store_true", help="refit and print the constants")
    parser.add_argument(
        "--write", action="store_true", help="with --fit: rewrite the tables in perfmodel.py"
    )
    args = parser.parse_args(argv)
    if args.write and not args.fit:
        parser.error("--write needs --fit")
    try:
        if args.fit:
            result = fit()
            if args.write:
                write_tables(result)
                print(f"wrote the efficiency tables into {perfmodel.__file__}")
            else:
                print(python_tables(result), end="")
        if args.markdown or not args.fit:
            print(markdown(), end="")
    except CalibrationError as exc:
        print(f"calibration: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
