"""Rows measured by `edgetop profile` as training rows for the scheduler. Pure but for reading.

One CSV row (core/profile.py `COLUMNS`) becomes one feature row (models/schedfeatures.py) and
its targets, log p50 and log p99 in ms:

- The workload: a catalog model profiled at its default size takes the catalog's features
  (exact). Anything else (a user's model, a catalog model with options) is rebuilt from the
  row's columns; the bytes the CSV does not carry are estimated: FP32 weights
  (4 bytes/parameter), FP32 inputs, and activation traffic recovered from the arithmetic
  intensity (FLOPs / (weights + inputs + activation traffic), as features.extract defines it).
- The device: an accelerator's reported name maps to a device profile (core.live's name
  table), its live state from the row. A CPU row is the CPU box estimate core.live uses:
  usable cores x 0.05 TFLOPS FP32 (an AVX2-FMA core at ~3 GHz) and x 5 GB/s (at most 40), where
  usable cores = the cgroup CPU quota if set, else the worker's thread count (it runs one per
  core it may use). Memory is the cgroup limit if set, else `device_mem_total` if the CSV has
  that column, else the free memory at run time (the CSV does not record the total).
- A Jetson's power mode becomes its budget over the top mode's (core.live.power_fraction, as
  the live fleet reads it).
- Co-located load and throttling are not in the CSV: a profile run is taken as alone and
  unthrottled.

Bad input versus unusable rows:
- A file that is not an edgetop profile CSV, or a row whose numbers do not parse (or are not
  positive where they must be), raises MeasuredDataError naming the file, the line and the
  column: a half-read file would train on data the operator did not mean.
- Well-formed rows the network cannot learn from are skipped and counted by reason: the
  `server` scenario (its latency includes queueing the features do not describe), the
  held-out models (GPT-2, YOLOv5: never in training data), accelerators whose name matches no
  profile (no figures to build features from), rows with no device recorded.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetop.core.live import (
    peak_tflops,
    power_fraction,
    profile_for_name,
)
from edgetop.core.profiles import PROFILES, cpu_capacity
from edgetop.core.trainingdata import TRAINING_EXCLUDED, TrainingSet
from edgetop.models.catalog import load_catalog
from edgetop.models.schedfeatures import FEATURE_NAMES, DeviceFeatures, feature_rows
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.errors import EdgetopError

__all__ = ["MeasuredData", "MeasuredDataError", "load_measured", "parse_measured"]

REQUIRED = (
    "host", "device", "device_kind", "model", "family", "batch", "scenario", "options",
    "params", "gflops", "activation_bytes", "arithmetic_intensity", "input_shape",
    "p50_ms", "p99_ms",
)  # fmt: skip
USED_SCENARIOS = ("singlestream", "offline")
FP32_BYTES = 4


class MeasuredDataError(EdgetopError):
    """A measured CSV that cannot be read as profile rows; names the file, line and column."""


@dataclass(frozen=True)
class MeasuredData:
    rows: TrainingSet
    skipped: Mapping[str, int]  # reason -> rows skipped for it

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def _empty() -> TrainingSet:
    return TrainingSet(
        x=np.zeros((0, len(FEATURE_NAMES))), y=np.zeros((0, 2)), models=(), families=(),
        devices=(),
    )  # fmt: skip


class _Row:
    """One CSV row with typed accessors whose errors name the source, line and column."""

    def __init__(self, values: Mapping[str, str | None], where: str) -> None:
        self.values = values
        self.where = where

    def text(self, column: str) -> str:
        return (self.values.get(column) or "").strip()

    def number(self, column: str, *, positive: bool = False) -> float:
        raw = self.text(column)
        try:
            value = float(raw)
        except ValueError:
            raise MeasuredDataError(
                f"{self.where}: column {column} is {raw!r}, not a number"
            ) from None
        if not math.isfinite(value) or (positive and value <= 0) or value < 0:
            need = "a positive number" if positive else "a number of at least 0"
            raise MeasuredDataError(f"{self.where}: column {column} is {raw!r}, not {need}")
        return value

    def optional(self, column: str) -> float | None:
        return self.number(column) if self.text(column) else None


def _shape(row: _Row) -> tuple[tuple[int, ...], ...]:
    raw = row.text("input_shape")
    try:
        shapes = tuple(tuple(int(d) for d in part.strip().split("x")) for part in raw.split("+"))
    except ValueError:
        shapes = ()
    if not shapes or any(not s or min(s) < 1 for s in shapes):
        raise MeasuredDataError(
            f"{row.where}: column input_shape is {raw!r}, not shapes like 1x3x224x224"
        )
    return shapes


def _workload(row: _Row, catalog: Mapping[str, WorkloadFeatures]) -> WorkloadFeatures:
    name = row.text("model")
    if name in catalog and not row.text("options"):
        return catalog[name]
    params = int(row.number("params", positive=True))
    gflops = row.number("gflops", positive=True)
    intensity = row.number("arithmetic_intensity", positive=True)
    activation = int(row.number("activation_bytes"))
    shapes = _shape(row)
    param_bytes = params * FP32_BYTES
    input_bytes = sum(math.prod(s) for s in shapes) * FP32_BYTES
    traffic = gflops * 1e9 / intensity - param_bytes - input_bytes
    return WorkloadFeatures(
        name=name,
        family=row.text("family"),
        params=params,
        param_bytes=param_bytes,
        gflops=gflops,
        activation_bytes=activation,
        activation_traffic_bytes=int(max(traffic, activation)),
        input_shape=shapes,
        input_bytes=input_bytes,
        arithmetic_intensity=intensity,
    )


def _device(row: _Row) -> tuple[DeviceFeatures, str] | str:
    """The device features and a label, or the reason the row is skipped."""
    kind = row.text("device_kind")
    util = min((row.optional("device_util") or 0.0) / 100.0, 1.0)
    temp = row.optional("device_temp_c")
    free = row.optional("device_mem_free")
    if kind == "cpu":
        quota = row.optional("cpu_quota")
        cores = quota or row.optional("threads") or 1.0
        limit = row.optional("mem_limit")
        total = limit or row.optional("device_mem_total") or free
        if not total:
            return "no memory figure for the CPU"
        tflops, bw = cpu_capacity(cores)
        features = DeviceFeatures(
            kind="cpu",
            peak_tflops=tflops,
            mem_bw_gbs=bw,
            mem_total_bytes=int(total),
            mem_free_bytes=int(min(free if free is not None else total, total)),
            util=util,
            temp_c=temp if temp is not None else 40.0,
            edge=True,
        )
        return features, f"{row.text('host')}:cpu"
    if kind in ("gpu", "jetson"):
        name = row.text("device")
        profile_name = profile_for_name(name)
        if profile_name is None:
            return f"accelerator {name or '(unnamed)'} matches no device profile"
        profile = PROFILES[profile_name]
        total = row.optional("device_mem_total") or profile.memory_bytes
        features = DeviceFeatures(
            kind=profile.kind,
            peak_tflops=peak_tflops(profile),
            mem_bw_gbs=profile.memory_bw_gbs,
            mem_total_bytes=int(total),
            mem_free_bytes=int(min(free if free is not None else total, total)),
            util=util,
            temp_c=temp if temp is not None else 40.0,
            power_fraction=power_fraction(profile, row.text("power_mode")),
            edge=profile.kind != "gpu-server",
        )
        return features, f"{row.text('host')}:{profile_name}"
    return "no device recorded" if not kind else f"device kind {kind!r} unknown"


def parse_measured(
    text: str, source: str = "<csv>", catalog: Mapping[str, WorkloadFeatures] | None = None
) -> MeasuredData:
    """Training rows from the text of one profile CSV (`source` names it in errors)."""
    catalog = load_catalog() if catalog is None else catalog
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise MeasuredDataError(
            f"{source}: not an edgetop profile CSV (no column {', '.join(missing)})"
        )
    xs: list[np.ndarray] = []
    ys: list[tuple[float, float]] = []
    models: list[str] = []
    families: list[str] = []
    devices: list[str] = []
    skipped: Counter[str] = Counter()
    for values in reader:
        row = _Row(values, f"{source}:{reader.line_num}")
        if None in values:  # csv puts surplus fields under the key None
            raise MeasuredDataError(f"{row.where}: more fields than the header has columns")
        model = row.text("model")
        if model in TRAINING_EXCLUDED:
            skipped[f"{model}: held out for evaluation"] += 1
            continue
        if row.text("scenario") not in USED_SCENARIOS:
            skipped[f"scenario {row.text('scenario') or '(none)'}: latency includes queueing"] += 1
            continue
        batch = row.number("batch", positive=True)
        if batch != int(batch):
            raise MeasuredDataError(f"{row.where}: column batch is {batch}, not a whole number")
        p50 = row.number("p50_ms", positive=True)
        p99 = row.number("p99_ms", positive=True)
        workload = _workload(row, catalog)
        device = _device(row)
        if isinstance(device, str):
            skipped[device] += 1
            continue
        features, label = device
        xs.append(feature_rows(workload, int(batch), [features])[0])
        ys.append((math.log(p50), math.log(max(p99, p50))))
        models.append(model)
        families.append(workload.family)
        devices.append(label)
    if not xs:
        return MeasuredData(_empty(), dict(skipped))
    rows = TrainingSet(
        x=np.stack(xs),
        y=np.array(ys, dtype=np.float64),
        models=tuple(models),
        families=tuple(families),
        devices=tuple(devices),
    )
    return MeasuredData(rows, dict(skipped))


def load_measured(paths: Iterable[Path]) -> MeasuredData:
    """Rows of every CSV in `paths`, concatenated; an unreadable file raises, naming it."""
    catalog = load_catalog()
    parts: list[MeasuredData] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MeasuredDataError(f"{path}: cannot read ({exc})") from None
        parts.append(parse_measured(text, str(path), catalog))
    skipped: Counter[str] = Counter()
    for part in parts:
        skipped.update(part.skipped)
    non_empty = [p.rows for p in parts if len(p.rows.x)]
    rows = TrainingSet.concat(non_empty) if non_empty else _empty()
    return MeasuredData(rows, dict(skipped))
