"""Typed view of the agent's JSON lines (docs/agent-protocol.md).

Everything from a host is untrusted: a line is either turned into a frozen value here or
rejected with an `AgentLineError` naming what was wrong. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgetop.remote.errors import AgentLineError

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1 << 20  # an agent line is a few KiB; anything near this is garbage
DEVICE_KINDS = ("cpu", "gpu", "jetson")
_BLOCKS = re.compile(r"(?P<first>[0-9]{1,6}):(?P<stop>[0-9]{1,6})")


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str | None
    mem_used: int | None


@dataclass(frozen=True)
class MigInstance:
    id: str
    name: str | None
    mem_used: int | None
    mem_total: int | None


@dataclass(frozen=True)
class DeviceReading:
    """One device at one instant. `None` means the collector could not read the value."""

    id: str
    kind: str
    name: str | None = None
    util: float | None = None
    mem_used: int | None = None
    mem_total: int | None = None
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: float | None = None
    emc_util: float | None = None
    power_mode: str | None = None
    throttle: tuple[str, ...] = ()
    per_core: tuple[float | None, ...] = ()
    load: tuple[float, ...] = ()
    procs: int | None = None
    processes: tuple[GpuProcess, ...] = ()
    mig: tuple[MigInstance, ...] = ()
    temps: Mapping[str, float] = field(default_factory=dict)
    rails: Mapping[str, float] = field(default_factory=dict)

    @property
    def mem_fraction(self) -> float | None:
        if self.mem_used is None or not self.mem_total:
            return None
        return self.mem_used / self.mem_total


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    kind: str
    name: str | None


@dataclass(frozen=True)
class Hello:
    agent: str
    hostname: str
    os: str | None
    kernel: str | None
    arch: str | None
    python: str | None
    cpu_count: int | None
    mem_total: int | None
    nvidia_driver: str | None
    cuda: str | None
    l4t: str | None
    jetpack: str | None
    power_mode: str | None
    cpu_quota: float | None
    mem_limit: int | None
    devices: tuple[DeviceInfo, ...]
    collectors: Mapping[str, str]
    interval: float | None

    @property
    def working_collectors(self) -> tuple[str, ...]:
        return tuple(name for name, state in self.collectors.items() if state == "ok")


@dataclass(frozen=True)
class DeploymentReading:
    """An inference worker on the host, with its latest window statistics (if any yet)."""

    id: str
    state: str | None
    model: str | None = None
    batch: int | None = None
    scenario: str | None = None
    slo_ms: float | None = None
    reason: str | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    slo_compliance: float | None = None
    busy: float | None = None  # 0..1 share of the window the worker spent executing batches
    count: int | None = None
    t: float | None = None  # when the statistics were taken, by the host's clock
    # A pipeline stage (edgetop.remote.stage) rather than a whole-model worker:
    pipeline: str | None = None  # the pipeline's label, shared by all its stages
    stage: int | None = None  # position in the pipeline, 0 = the head
    blocks: str | None = None  # the model's blocks it runs, "first:stop"


@dataclass(frozen=True)
class Sample:
    seq: int
    t: float
    devices: tuple[DeviceReading, ...]
    errors: Mapping[str, str]
    deployments: tuple[DeploymentReading, ...] = ()


@dataclass(frozen=True)
class AgentFailure:
    message: str


AgentMessage = Hello | Sample | AgentFailure


def parse_line(raw: bytes | str) -> AgentMessage:
    """Parse one agent line; raises AgentLineError with a short reason for anything invalid."""
    if len(raw) > MAX_LINE_BYTES:
        raise AgentLineError(f"line of {len(raw)} bytes exceeds {MAX_LINE_BYTES}")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AgentLineError(f"not JSON: {_clip(str(exc))}") from None
    if not isinstance(obj, dict):
        raise AgentLineError(f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise AgentLineError(
            f"protocol version {_clip(repr(version))}, expected {PROTOCOL_VERSION}"
        )
    kind = obj.get("type")
    if kind == "sample":
        return _sample(obj)
    if kind == "hello":
        return _hello(obj)
    if kind == "error":
        return AgentFailure(_text(obj, "message", required=True) or "")
    raise AgentLineError(f"unknown message type {_clip(repr(kind))}")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(obj: Mapping[str, Any], key: str, *, integer: bool = False) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AgentLineError(f"field {key!r}: expected a number, got {_clip(repr(value))}")
    if integer:
        return int(value)
    return float(value)


def _share(obj: Mapping[str, Any], key: str) -> float | None:
    value = _number(obj, key)
    if value is not None and not 0.0 <= value <= 1.0:
        raise AgentLineError(
            f"field {key!r}: expected a share from 0 to 1, got {_clip(repr(value))}"
        )
    return value


def _text(obj: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise AgentLineError(f"field {key!r}: expected a string, got {_clip(repr(value))}")
    return value


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise AgentLineError(f"field {key!r}: expected a list, got {_clip(repr(value))}")
    return value


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AgentLineError(f"field {key!r}: expected an object, got {_clip(repr(value))}")
    return value


def _objects(obj: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = _list(obj, key)
    for item in items:
        if not isinstance(item, dict):
            raise AgentLineError(f"field {key!r}: expected objects, got {_clip(repr(item))}")
    return items


def _number_map(obj: Mapping[str, Any], key: str) -> dict[str, float]:
    source = _mapping(obj, key)
    return {str(k): v for k in source if (v := _number(source, k)) is not None}


def _numbers(obj: Mapping[str, Any], key: str) -> tuple[float | None, ...]:
    values = _list(obj, key)
    return tuple(_number({"item": v}, "item") for v in values)


def _device(obj: Mapping[str, Any]) -> DeviceReading:
    kind = _text(obj, "kind", required=True)
    if kind not in DEVICE_KINDS:
        raise AgentLineError(f"device kind {_clip(repr(kind))} is not one of {DEVICE_KINDS}")
    return DeviceReading(
        id=_text(obj, "id", required=True) or "",
        kind=kind,
        name=_text(obj, "name"),
        util=_number(obj, "util"),
        mem_used=_number(obj, "mem_used", integer=True),
        mem_total=_number(obj, "mem_total", integer=True),
        temp_c=_number(obj, "temp_c"),
        power_w=_number(obj, "power_w"),
        power_limit_w=_number(obj, "power_limit_w"),
        sm_clock_mhz=_number(obj, "sm_clock_mhz"),
        emc_util=_number(obj, "emc_util"),
        power_mode=_text(obj, "power_mode"),
        throttle=tuple(str(t) for t in _list(obj, "throttle")),
        per_core=_numbers(obj, "per_core"),
        load=tuple(v for v in _numbers(obj, "load") if v is not None),
        procs=_number(obj, "procs", integer=True),
        processes=tuple(
            GpuProcess(
                pid=_number(p, "pid", integer=True) or 0,
                name=_text(p, "name"),
                mem_used=_number(p, "mem_used", integer=True),
            )
            for p in _objects(obj, "processes")
        ),
        mig=tuple(
            MigInstance(
                id=_text(m, "id", required=True) or "",
                name=_text(m, "name"),
                mem_used=_number(m, "mem_used", integer=True),
                mem_total=_number(m, "mem_total", integer=True),
            )
            for m in _objects(obj, "mig")
        ),
        temps=_number_map(obj, "temps"),
        rails=_number_map(obj, "rails"),
    )


def _deployment(obj: Mapping[str, Any]) -> DeploymentReading:
    return DeploymentReading(
        id=_text(obj, "id", required=True) or "",
        state=_text(obj, "state"),
        model=_text(obj, "model"),
        batch=_number(obj, "batch", integer=True),
        scenario=_text(obj, "scenario"),
        slo_ms=_number(obj, "slo_ms"),
        reason=_text(obj, "reason"),
        p50_ms=_number(obj, "p50_ms"),
        p90_ms=_number(obj, "p90_ms"),
        p99_ms=_number(obj, "p99_ms"),
        throughput=_number(obj, "throughput"),
        slo_compliance=_number(obj, "slo_compliance"),
        busy=_share(obj, "busy"),
        count=_number(obj, "count", integer=True),
        t=_number(obj, "t"),
        pipeline=_text(obj, "pipeline"),
        stage=_stage_index(obj),
        blocks=_blocks(obj),
    )


def _stage_index(obj: Mapping[str, Any]) -> int | None:
    value = obj.get("stage")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise AgentLineError(
            f"field 'stage': expected a non-negative integer, got {_clip(repr(value))}"
        )
    return value


def _blocks(obj: Mapping[str, Any]) -> str | None:
    value = _text(obj, "blocks")
    if value is None:
        return None
    m = _BLOCKS.fullmatch(value)
    if m is None or int(m["first"]) >= int(m["stop"]):
        raise AgentLineError(f"field 'blocks': expected 'first:stop', got {_clip(repr(value))}")
    return value


def _sample(obj: Mapping[str, Any]) -> Sample:
    seq = _number(obj, "seq", integer=True)
    t = _number(obj, "t")
    if seq is None or t is None:
        raise AgentLineError("sample without 'seq' or 't'")
    errors = _mapping(obj, "errors")
    return Sample(
        seq=seq,
        t=t,
        devices=tuple(_device(d) for d in _objects(obj, "devices")),
        errors={str(k): str(v) for k, v in errors.items()},
        deployments=tuple(_deployment(d) for d in _objects(obj, "deployments")),
    )


def _hello(obj: Mapping[str, Any]) -> Hello:
    cgroup = _mapping(obj, "cgroup")
    collectors = _mapping(obj, "collectors")
    return Hello(
        agent=_text(obj, "agent", required=True) or "",
        hostname=_text(obj, "hostname", required=True) or "",
        os=_text(obj, "os"),
        kernel=_text(obj, "kernel"),
        arch=_text(obj, "arch"),
        python=_text(obj, "python"),
        cpu_count=_number(obj, "cpu_count", integer=True),
        mem_total=_number(obj, "mem_total", integer=True),
        nvidia_driver=_text(obj, "nvidia_driver"),
        cuda=_text(obj, "cuda"),
        l4t=_text(obj, "l4t"),
        jetpack=_text(obj, "jetpack"),
        power_mode=_text(obj, "power_mode"),
        cpu_quota=_number(cgroup, "cpu_quota"),
        mem_limit=_number(cgroup, "mem_limit", integer=True),
        devices=tuple(
            DeviceInfo(
                id=_text(d, "id", required=True) or "",
                kind=_text(d, "kind", required=True) or "",
                name=_text(d, "name"),
            )
            for d in _objects(obj, "devices")
        ),
        collectors={str(k): str(v) for k, v in collectors.items()},
        interval=_number(obj, "interval"),
    )
