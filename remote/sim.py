"""`sim` transport: an in-process simulated device that speaks the agent protocol.

It emits the same JSON lines as the real agent, so everything above the transport (parsing,
fleet state, the UI) is exercised exactly as for a real host. An idle device shows noise
around its profile. Deployments placed on it (`SimDevice.place`) load it through an injected
`SimPhysics` (core's performance model): utilisation, memory, power, temperature and each
deployment's latency follow that model, with measurement noise on top. Demo controls force a
power mode, a temperature, spike the load (another tenant's share of the device) or take the
host down.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edgetop.remote.errors import ConnectError
from edgetop.remote.protocol import PROTOCOL_VERSION
from edgetop.remote.transport import AgentStream, Transport

SIM_AGENT_VERSION = "sim-1"
IDLE_MEM_FRACTION = 0.03  # driver/context memory an idle accelerator still shows
GIB = 1 << 30


class SimProfile(Protocol):
    """What the simulator needs of a device profile (core.profiles.DeviceProfile fits)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def tdp_w(self) -> float: ...
    @property
    def idle_power_w(self) -> float: ...
    @property
    def cpu_cores(self) -> int: ...
    @property
    def default_power_mode(self) -> str | None: ...


@dataclass(frozen=True)
class SimDeployment:
    """A worker placed on a simulated host: what the physics needs to load the device."""

    id: str
    model: str
    batch: int = 1
    scenario: str = "server"
    qps: float | None = None
    slo_ms: float | None = None


@dataclass(frozen=True)
class SimDeploymentLoad:
    """What one deployment measures on the loaded device (expected values, before noise)."""

    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    failed: str | None = None  # why it cannot run (e.g. it does not fit), else None
    busy: float | None = None  # 0..1 share of the device its batches keep busy


@dataclass(frozen=True)
class SimLoad:
    """The device under its placed deployments."""

    util: float  # 0..1 busy share of the accelerator (of the CPU on a CPU box)
    mem_used_bytes: int  # taken by the deployments, beyond the idle footprint
    power_w: float
    temp_c: float  # where the temperature settles under this load
    throttled: bool
    deployments: tuple[SimDeploymentLoad, ...]  # same order as the placed deployments


class SimPhysics(Protocol):
    def load(
        self, deployments: Sequence[SimDeployment], power_mode: str | None, temp_c: float | None
    ) -> SimLoad: ...


def slo_compliance(load: SimDeploymentLoad, slo_ms: float | None) -> float | None:
    """Share of queries within the SLO, read off the three percentiles (piecewise linear)."""
    p50, p90, p99 = load.p50_ms, load.p90_ms, load.p99_ms
    if slo_ms is None or p50 is None or p90 is None or p99 is None:
        return None
    if slo_ms >= p99:
        return 0.995
    if slo_ms >= p90:
        return 0.90 + 0.09 * (slo_ms - p90) / max(p99 - p90, 1e-9)
    if slo_ms >= p50:
        return 0.50 + 0.40 * (slo_ms - p50) / max(p90 - p50, 1e-9)
    return 0.5 * slo_ms / p50


MAX_SPIKE = 0.95  # the deployments keep at least this much less than the whole device


def with_spike(load: SimLoad | None, spike: float, profile: SimProfile) -> SimLoad:
    """`load` with a foreign load taking `spike` of the device: it shows in utilisation and
    power, and the deployments contend with it (their latencies stretch by 1 / (1 - spike),
    as on a device time-shared with another tenant)."""
    share = min(max(spike, 0.0), MAX_SPIKE)
    util = min(1.0, (load.util if load else 0.0) + share)
    stretch = 1.0 / (1.0 - share)

    def slowed(d: SimDeploymentLoad) -> SimDeploymentLoad:
        if d.failed:
            return d
        p50, p90, p99 = (None if v is None else v * stretch for v in (d.p50_ms, d.p90_ms, d.p99_ms))
        # Time-shared, each of its batches takes longer: so does its busy share.
        busy = None if d.busy is None else min(d.busy * stretch, 1.0)
        return SimDeploymentLoad(p50, p90, p99, d.throughput, busy=busy)

    idle = profile.idle_power_w
    return SimLoad(
        util=util,
        mem_used_bytes=load.mem_used_bytes if load else 0,
        power_w=max(load.power_w if load else idle, idle + (profile.tdp_w - idle) * util),
        temp_c=max(load.temp_c if load else 35.0, 35.0 + 45.0 * util),
        throttled=bool(load and load.throttled),
        deployments=tuple(slowed(d) for d in load.deployments) if load else (),
    )


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class SimDevice:
    """Idle behaviour of one simulated host: a CPU plus its profile's accelerator."""

    def __init__(
        self,
        hostname: str,
        profile: SimProfile,
        seed: int | None = None,
        physics: SimPhysics | None = None,
    ) -> None:
        self.hostname = hostname
        self.profile = profile
        self.physics = physics
        # Seeded from the name so a demo fleet looks the same on every run.
        self._rng = random.Random(zlib.crc32(hostname.encode()) if seed is None else seed)
        self._seq = 0
        self._temp = 32.0 + self._rng.uniform(0, 6)
        self._deployments: dict[str, SimDeployment] = {}
        self._started: dict[str, float] = {}
        self.power_mode: str | None = profile.default_power_mode
        self.forced_temp_c: float | None = None
        self.spike = 0.0  # demo: a 0..1 share of the device taken by a load edgetop did not place
        self.down = False

    # -- what is placed on it, and the demo controls -------------------------------------
    def place(self, deployment: SimDeployment) -> None:
        if deployment.id in self._deployments:
            raise ValueError(f"{self.hostname}: deployment {deployment.id!r} already placed")
        self._deployments[deployment.id] = deployment
        self._started[deployment.id] = time.time()

    def remove(self, deployment_id: str) -> bool:
        self._started.pop(deployment_id, None)
        return self._deployments.pop(deployment_id, None) is not None

    @property
    def deployments(self) -> tuple[SimDeployment, ...]:
        return tuple(self._deployments.values())

    def current_load(self) -> SimLoad | None:
        load = None
        if self.physics is not None and self._deployments:
            load = self.physics.load(self.deployments, self.power_mode, self.forced_temp_c)
        return with_spike(load, self.spike, self.profile) if self.spike > 0 else load

    @property
    def accelerator_kind(self) -> str | None:
        return {"gpu-server": "gpu", "jetson": "jetson"}.get(self.profile.kind)

    @property
    def host_memory(self) -> int:
        # A Jetson's RAM is the unified memory; a server gets a plausible host RAM.
        return self.profile.memory_bytes if self.profile.kind != "gpu-server" else 256 * GIB

    def hello(self, interval: float) -> dict[str, Any]:
        devices: list[dict[str, Any]] = [
            {"id": "cpu", "kind": "cpu", "name": f"simulated {self.profile.cpu_cores}-core CPU"}
        ]
        if self.accelerator_kind:
            devices.append(
                {"id": "gpu0", "kind": self.accelerator_kind, "name": self.profile.display_name}
            )
        return {
            "v": PROTOCOL_VERSION,
            "type": "hello",
            "agent": SIM_AGENT_VERSION,
            "hostname": self.hostname,
            "os": f"simulated ({self.profile.name})",
            "kernel": None,
            "arch": None,
            "python": None,
            "cpu_count": self.profile.cpu_cores,
            "mem_total": self.host_memory,
            "nvidia_driver": "simulated" if self.profile.kind == "gpu-server" else None,
            "cuda": None,
            "l4t": "simulated" if self.profile.kind == "jetson" else None,
            "jetpack": None,
            "power_mode": self.profile.default_power_mode,
            "cgroup": {"cpu_quota": None, "mem_limit": None},
            "devices": devices,
            "collectors": {"sim": "ok"},
            "interval": interval,
        }

    def sample(self, now: float) -> dict[str, Any]:
        rng = self._rng
        self._seq += 1
        load = self.current_load()
        busy = 100.0 * load.util if load else 0.0
        placed = load.mem_used_bytes if load else 0
        cpu_busy = busy if self.accelerator_kind is None else 0.0
        cores = [
            round(min(100.0, cpu_busy + rng.uniform(0, 6)), 1)
            for _ in range(self.profile.cpu_cores)
        ]
        host_used = int(self.host_memory * rng.uniform(0.08, 0.1))
        if self.accelerator_kind != "gpu":  # a Jetson's or CPU box's deployments use the RAM
            host_used = min(self.host_memory, host_used + placed)
        devices: list[dict[str, Any]] = [
            {
                "id": "cpu",
                "kind": "cpu",
                "util": round(sum(cores) / len(cores), 1),
                "per_core": cores,
                "mem_used": host_used,
                "mem_total": self.host_memory,
                "load": [round(rng.uniform(0, 0.3), 2)] * 3,
                "procs": 180 + rng.randrange(10),
            }
        ]
        # Temperature drifts towards the load's equilibrium instead of jumping each tick.
        settle = self.forced_temp_c or (load.temp_c if load else 35.0)
        self._temp += 0.2 * (settle - self._temp) + rng.uniform(-0.4, 0.4)
        if self.accelerator_kind:
            power = (load.power_w if load else self.profile.idle_power_w) * rng.uniform(0.95, 1.05)
            accel: dict[str, Any] = {
                "id": "gpu0",
                "kind": self.accelerator_kind,
                "name": self.profile.display_name,
                "util": round(min(100.0, busy + rng.uniform(0, 3)), 1),
                # A Jetson's GPU shares the RAM, so it reports the same used memory.
                "mem_used": host_used
                if self.accelerator_kind == "jetson"
                else min(
                    self.profile.memory_bytes,
                    int(self.profile.memory_bytes * IDLE_MEM_FRACTION) + placed,
                ),
                "mem_total": self.profile.memory_bytes,
                "temp_c": round(self._temp, 1),
                "power_w": round(power, 2),
            }
            throttled = bool(load and load.throttled) or (self.forced_temp_c or 0) >= 85
            if self.accelerator_kind == "gpu":
                accel["power_limit_w"] = self.profile.tdp_w
                accel["throttle"] = (
                    ["hw_thermal_slowdown"] if throttled else ([] if load else ["gpu_idle"])
                )
            else:
                accel["power_mode"] = self.power_mode
                accel["emc_util"] = round(min(100.0, 0.6 * busy + rng.uniform(0, 4)), 1)
                if throttled:
                    accel["throttle"] = ["thermal"]
            devices.append(accel)
        return {
            "v": PROTOCOL_VERSION,
            "type": "sample",
            "seq": self._seq,
            "t": now,
            "devices": devices,
            "errors": {},
            "deployments": self._deployment_lines(load, now),
        }

    def _deployment_lines(self, load: SimLoad | None, now: float) -> list[dict[str, Any]]:
        lines = []
        for i, d in enumerate(self.deployments):
            line: dict[str, Any] = {
                "id": d.id,
                "state": "running",
                "model": d.model,
                "batch": d.batch,
                "scenario": d.scenario,
                "slo_ms": d.slo_ms,
                "t": now,
            }
            measured = load.deployments[i] if load and i < len(load.deployments) else None
            if measured is None:
                line["state"] = "starting" if self.physics else "running"
            elif measured.failed:
                line.update(state="failed", reason=measured.failed)
            else:
                noisy = SimDeploymentLoad(
                    *(
                        None if v is None else v * self._rng.gauss(1.0, 0.02)
                        for v in (measured.p50_ms, measured.p90_ms, measured.p99_ms)
                    ),
                    throughput=measured.throughput,
                )
                # Noise must not reorder the percentiles.
                p50, p90, p99 = sorted(v or 0.0 for v in (noisy.p50_ms, noisy.p90_ms, noisy.p99_ms))
                elapsed = max(0.0, now - self._started.get(d.id, now))
                line.update(
                    p50_ms=round(p50, 3),
                    p90_ms=round(p90, 3),
                    p99_ms=round(p99, 3),
                    throughput=None
                    if measured.throughput is None
                    else round(measured.throughput, 2),
                    slo_compliance=slo_compliance(measured, d.slo_ms),
                    busy=None if measured.busy is None else round(measured.busy, 4),
                    count=int(elapsed * (measured.throughput or 0) / max(d.batch, 1)),
                )
            lines.append(line)
        return lines


class SimAgentStream(AgentStream):
    def __init__(self, device: SimDevice, interval: float) -> None:
        self._device = device
        self._interval = interval
        self._closed = asyncio.Event()
        self._started = False
        self._next_tick = time.monotonic()

    async def readline(self) -> bytes:
        if self._closed.is_set() or self._device.down:
            return b""
        if not self._started:
            self._started = True
            return _dumps(self._device.hello(self._interval))
        delay = self._next_tick - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(self._closed.wait(), timeout=delay)
                return b""
            except asyncio.TimeoutError:
                pass
        self._next_tick = max(self._next_tick + self._interval, time.monotonic())
        return _dumps(self._device.sample(time.time()))

    async def close(self) -> None:
        self._closed.set()

    def exit_reason(self) -> str:
        return "simulated host went down" if self._device.down else "simulation stopped"


class SimTransport(Transport):
    def __init__(
        self,
        hostname: str,
        profile: SimProfile,
        seed: int | None = None,
        physics: SimPhysics | None = None,
    ) -> None:
        self.device = SimDevice(hostname, profile, seed, physics)

    async def start_agent(self, interval: float) -> AgentStream:
        if self.device.down:
            raise ConnectError(f"{self.device.hostname}: simulated host is down")
        return SimAgentStream(self.device, interval)
