"""Plain-data views of the fleet for JSON output (`snapshot --json`, `--auto`). Pure."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.remote.protocol import DeviceReading

DEVICE_FIELDS = (
    "id", "kind", "name", "util", "mem_used", "mem_total", "temp_c", "power_w",
    "power_limit_w", "sm_clock_mhz", "emc_util", "power_mode",
)  # fmt: skip


def device_dict(device: DeviceReading) -> dict[str, Any]:
    out: dict[str, Any] = {key: getattr(device, key) for key in DEVICE_FIELDS}
    out["throttle"] = list(device.throttle)
    if device.processes:
        out["processes"] = [
            {"pid": p.pid, "name": p.name, "mem_used": p.mem_used} for p in device.processes
        ]
    if device.mig:
        out["mig"] = [
            {"id": m.id, "name": m.name, "mem_used": m.mem_used, "mem_total": m.mem_total}
            for m in device.mig
        ]
    if device.rails:
        out["rails"] = dict(device.rails)
    return out


def host_dict(host: HostView, now: float) -> dict[str, Any]:
    hello = host.hello
    age = host.age(now)
    return {
        "name": host.name,
        "transport": host.transport,
        "kind": host.kind,
        "status": host.status.value,
        "reason": host.reason,
        "age_s": None if age is None else round(age, 3),
        "hostname": hello.hostname if hello else None,
        "agent": hello.agent if hello else None,
        "cpu_quota": host.cpu_quota,
        "mem_limit": host.mem_limit,
        "bad_lines": host.bad_lines,
        "errors": dict(host.errors),
        "devices": [device_dict(d) for d in host.devices],
        "deployments": [asdict(d) for d in host.deployments],
    }


def fleet_dict(snapshot: FleetSnapshot, now: float) -> dict[str, Any]:
    return {"at": now, "hosts": [host_dict(h, now) for h in snapshot.hosts]}
