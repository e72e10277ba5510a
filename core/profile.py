"""`edgetop profile`: which runs a sweep still needs, and the row each run becomes. Pure.

A sweep is models x batch sizes x hosts for one scenario. Rows already in the output CSV are
kept and their runs skipped, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgetop.core.fleet import HostView
from edgetop.models.workload import WorkloadFeatures

SCENARIOS = ("singlestream", "server", "offline")

# The identity of a run; a row with the same key is never measured twice.
KEY_COLUMNS = ("host", "model", "batch", "scenario", "options")
COLUMNS = (
    "host", "device", "device_kind", "model", "family", "batch", "scenario", "options",
    "params", "gflops", "activation_bytes", "arithmetic_intensity", "input_shape",
    "cpu_quota", "mem_limit", "device_util", "device_mem_free", "device_temp_c", "power_mode",
    "p50_ms", "p90_ms", "p99_ms", "throughput", "queries", "threads", "worker_device",
    "measured_at", "edgetop_version",
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    host: str
    model: str
    batch: int
    scenario: str
    options: str = ""  # model options as `key=value;...`, e.g. "seq_len=128"

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.host, self.model, str(self.batch), self.scenario, self.options)


def plan_runs(
    hosts: Sequence[str],
    models: Sequence[str],
    batches: Sequence[int],
    scenario: str,
    done: Iterable[tuple[str, ...]] = (),
    options: str = "",
) -> list[Run]:
    """Every (model, batch, host) not yet measured, host-major so one host's runs group."""
    finished = set(done)
    return [
        run
        for host in hosts
        for model in models
        for batch in batches
        if (run := Run(host, model, batch, scenario, options)).key not in finished
    ]


def done_keys(csv_text: str) -> set[tuple[str, ...]]:
    """Keys of the rows an earlier (maybe interrupted) sweep already wrote."""
    reader = csv.DictReader(io.StringIO(csv_text))
    if reader.fieldnames is None or not set(KEY_COLUMNS) <= set(reader.fieldnames):
        return set()
    return {tuple(row[c] or "" for c in KEY_COLUMNS) for row in reader}


def device_features(host: HostView) -> dict[str, Any]:
    """The host's main device at run time: its accelerator if any, else its CPU."""
    device = next(iter(host.accelerators()), None) or next(iter(host.devices), None)
    if device is None:
        return {"device": None, "device_kind": None, "device_util": None,
                "device_mem_free": None, "device_temp_c": None, "power_mode": None}  # fmt: skip
    free = (
        device.mem_total - device.mem_used
        if device.mem_total is not None and device.mem_used is not None
        else None
    )
    return {
        "device": device.name or device.id,
        "device_kind": device.kind,
        "device_util": device.util,
        "device_mem_free": free,
        "device_temp_c": device.temp_c,
        "power_mode": device.power_mode or (host.hello.power_mode if host.hello else None),
    }


def _rounded(value: Any, digits: int) -> Any:
    return round(value, digits) if isinstance(value, int | float) else None


def profile_row(
    run: Run,
    features: WorkloadFeatures,
    host: HostView,
    metrics: Mapping[str, Any],
    *,
    measured_at: float,
    version: str,
) -> dict[str, Any]:
    """One CSV row: workload features, device state at run time, measured statistics."""
    row: dict[str, Any] = {
        "host": run.host,
        "model": run.model,
        "family": features.family,
        "batch": run.batch,
        "scenario": run.scenario,
        "options": run.options,
        "params": features.params,
        "gflops": round(features.gflops, 6),
        "activation_bytes": features.activation_bytes,
        "arithmetic_intensity": round(features.arithmetic_intensity, 4),
        "input_shape": " + ".join("x".join(map(str, s)) for s in features.input_shape),
        "cpu_quota": host.cpu_quota,
        "mem_limit": host.mem_limit,
        "p50_ms": _rounded(metrics.get("p50_ms"), 4),
        "p90_ms": _rounded(metrics.get("p90_ms"), 4),
        "p99_ms": _rounded(metrics.get("p99_ms"), 4),
        "throughput": _rounded(metrics.get("throughput"), 3),
        "queries": metrics.get("count"),
        "threads": metrics.get("threads"),
        "worker_device": metrics.get("device"),
        "measured_at": round(measured_at, 3),
        "edgetop_version": version,
    }
    row.update(device_features(host))
    return {column: row.get(column) for column in COLUMNS}


def parse_options(items: Sequence[str]) -> dict[str, int | float | str]:
    """`["seq_len=128", "image_size=64"]` -> kwargs for the model; ValueError names a bad item."""
    out: dict[str, int | float | str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"model option {item!r} is not KEY=VALUE")
        text = value.strip()
        number: int | float | str = text
        for kind in (int, float):
            try:
                number = kind(text)
                break
            except ValueError:
                continue
        out[key.strip()] = number
    return out


def options_text(options: Mapping[str, Any]) -> str:
    """The canonical spelling of model options, as stored in the CSV."""
    return ";".join(f"{k}={options[k]}" for k in sorted(options))


def parse_batches(text: str) -> list[int]:
    """`1,8,32` -> [1, 8, 32]; raises ValueError naming the bad item."""
    out: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or not 1 <= int(item) <= 4096:
            raise ValueError(f"batch size {item!r} is not an integer between 1 and 4096")
        out.append(int(item))
    return sorted(set(out))
