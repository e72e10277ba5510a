"""`sim` transport: an in-process simulated device that speaks the agent protocol.

It emits the same JSON lines as the real agent, so everything above the transport (parsing,
fleet state, the UI) is exercised exactly as for a real host. For now a device shows idle
noise around its profile; placed load arrives with the performance model.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import zlib
from typing import Any, Protocol

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


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class SimDevice:
    """Idle behaviour of one simulated host: a CPU plus its profile's accelerator."""

    def __init__(self, hostname: str, profile: SimProfile, seed: int | None = None) -> None:
        self.hostname = hostname
        self.profile = profile
        # Seeded from the name so a demo fleet looks the same on every run.
        self._rng = random.Random(zlib.crc32(hostname.encode()) if seed is None else seed)
        self._seq = 0
        self._temp = 32.0 + self._rng.uniform(0, 6)

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
        cores = [round(rng.uniform(0, 6), 1) for _ in range(self.profile.cpu_cores)]
        host_used = int(self.host_memory * rng.uniform(0.08, 0.1))
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
        # Temperature drifts slowly towards an idle equilibrium instead of jumping each tick.
        self._temp += 0.2 * (35.0 - self._temp) + rng.uniform(-0.4, 0.4)
        if self.accelerator_kind:
            power = self.profile.idle_power_w * rng.uniform(0.95, 1.08)
            accel: dict[str, Any] = {
                "id": "gpu0",
                "kind": self.accelerator_kind,
                "name": self.profile.display_name,
                "util": round(rng.uniform(0, 3), 1),
                # A Jetson's GPU shares the RAM, so it reports the same used memory.
                "mem_used": host_used
                if self.accelerator_kind == "jetson"
                else int(self.profile.memory_bytes * IDLE_MEM_FRACTION),
                "mem_total": self.profile.memory_bytes,
                "temp_c": round(self._temp, 1),
                "power_w": round(power, 2),
            }
            if self.accelerator_kind == "gpu":
                accel["power_limit_w"] = self.profile.tdp_w
                accel["throttle"] = ["gpu_idle"]
            else:
                accel["power_mode"] = self.profile.default_power_mode
                accel["emc_util"] = round(rng.uniform(0, 4), 1)
            devices.append(accel)
        return {
            "v": PROTOCOL_VERSION,
            "type": "sample",
            "seq": self._seq,
            "t": now,
            "devices": devices,
            "errors": {},
        }


class SimAgentStream(AgentStream):
    def __init__(self, device: SimDevice, interval: float) -> None:
        self._device = device
        self._interval = interval
        self._closed = asyncio.Event()
        self._started = False
        self._next_tick = time.monotonic()

    async def readline(self) -> bytes:
        if self._closed.is_set():
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
        return "simulation stopped"


class SimTransport(Transport):
    def __init__(self, hostname: str, profile: SimProfile, seed: int | None = None) -> None:
        self.device = SimDevice(hostname, profile, seed)

    async def start_agent(self, interval: float) -> AgentStream:
        return SimAgentStream(self.device, interval)
