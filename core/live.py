"""The live fleet as candidate devices: FleetSnapshot -> placement.Fleet. Pure.

- Simulated hosts map to their profile (the config's `device`, else the agent's
  `os = "simulated (<profile>)"`).
- Real accelerators map their reported name to a profile where one matches ("A100 80GB" ->
  a100-80gb, "V100" -> v100-16gb, "Xavier NX" -> jetson-xavier-nx, ...); one that matches none
  is listed as a rejected candidate (no figures to predict from) rather than guessed.
- CPU-only hosts (the loopback testbed, plain boxes) become one CPU device whose figures are
  estimates: peak = usable cores x 0.05 TFLOPS FP32 (a modern x86 core with AVX2 FMA at
  ~3 GHz sustains ~50 GFLOP/s in GEMM), memory bandwidth = usable cores x 5 GB/s (at most
  40 GB/s), usable cores = the cgroup CPU quota if set, else the CPU count; memory is the
  cgroup limit if set, else the machine's.
- Live state: utilisation, used memory and temperature from the latest readings; throttled
  from the NVIDIA clock-event reasons that slow the GPU (power or thermal) or any Jetson
  throttle flag; the power mode's budget over the top mode's (the device's reported mode,
  else the host's, else the profile's default; an unknown name matches a mode by its watts,
  else counts as the top mode); co-located deployments from the host's running workers (on a
  multi-GPU host the agent does not say which GPU a worker uses: they are counted on the
  first).
- The co-runner columns (schemas 3 and 4) from those deployments (`placement.with_corunners`): a
  server deployment's rate is its measured throughput, its batch time its measured p50; one
  with no statistics yet is estimated by its roofline time and, without a rate, counts as a
  closed loop (the performance model's reading of a server with no qps). Schema 4 adds the
  open ones' summed `busy` share, as their workers measure it.
- Hosts that are not online with a sample (offline, stale, auth failed, still connecting)
  become offline candidates whose reason says why, e.g. "offline: connection refused".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from edgetop.core.config import FleetConfig
from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.perfmodel import power_mode
from edgetop.core.placement import Deployment, DeviceSlot, Fleet, with_corunners
from edgetop.core.profiles import PROFILES, DeviceProfile, cpu_capacity
from edgetop.models.schedfeatures import DeviceFeatures
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.link import HostStatus
from edgetop.remote.protocol import DeploymentReading, DeviceReading

# NVML clock-event reasons that mean the GPU runs slower than it could (not idle or app clocks).
SLOWING_REASONS = frozenset(
    {
        "sw_power_cap",
        "hw_slowdown",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    }
)
_NOT_THROTTLE = frozenset({"gpu_idle", "applications_clocks_setting", "display_clock_setting"})
_SIM_OS = re.compile(r"simulated \(([\w.-]+)\)")

# Accelerator names (as nvidia-smi / jtop report them) -> profile; first match wins.
_NAME_TO_PROFILE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), profile)
    for pattern, profile in (
        (r"a100.*80\s*gb", "a100-80gb"),
        (r"a100", "a100-40gb"),
        (r"v100", "v100-16gb"),
        (r"\bt4\b", "t4"),
        (r"orin\s*nano", "jetson-orin-nano"),
        (r"orin\s*nx", "jetson-orin-nx"),
        (r"orin", "jetson-agx-orin"),
        (r"xavier\s*nx", "jetson-xavier-nx"),
        (r"xavier", "jetson-agx-xavier"),
    )
)


def profile_for_name(name: str | None) -> str | None:
    """The device profile a reported accelerator name corresponds to, if any."""
    if not name:
        return None
    for pattern, profile in _NAME_TO_PROFILE:
        if pattern.search(name):
            return profile
    return None


def peak_tflops(profile: DeviceProfile) -> float:
    """The peak at the precision the device serves at (schedfeatures convention)."""
    return profile.int8_tops or profile.fp16_tflops or profile.fp32_tflops


def power_fraction(profile: DeviceProfile, reported: str | None) -> float:
    """The mode's budget over the top mode's (as the training rows carry it). Reported names
    vary by L4T release ("15W", "MODE_15W_6CORE"): an unknown name matches a profile mode by
    its watts, else counts as the top mode; nothing reported is the profile's default mode."""
    name = reported or profile.default_power_mode
    if name not in profile.power_modes:
        watts = re.search(r"(\d+)\s*W", name, re.IGNORECASE)
        name = f"{watts.group(1)}W" if watts else profile.power_modes[0]
        if name not in profile.power_modes:
            name = profile.power_modes[0]
    return power_mode(profile, name).fraction


def _sim_profile(host: HostView, config: FleetConfig | None) -> str | None:
    if config is not None:
        for h in config.hosts:
            if h.name == host.name and h.device:
                return h.device
    if host.hello is not None and host.hello.os:
        m = _SIM_OS.search(host.hello.os)
        if m:
            return m.group(1)
    return None


def _unavailable_reason(host: HostView, now: float | None) -> str:
    status = host.status.value
    if host.status is HostStatus.STALE:
        age = host.age(now) if now is not None else None
        if age is None:
            return "stale"
        # A host polled every 50 ms goes stale after 0.15 s: "0 s ago" would read as fresh.
        return f"stale: last sample {age:.{1 if age < 10 else 0}f} s ago"
    if host.status is HostStatus.CONNECTING:
        return host.reason or "connecting: no answer yet"
    if host.status is HostStatus.ONLINE:
        return "online but no sample yet"
    return f"{status}: {host.reason}" if host.reason else status


def _throttled(reading: DeviceReading) -> bool:
    if reading.kind == "gpu":
        return any(r in SLOWING_REASONS for r in reading.throttle)
    return any(r not in _NOT_THROTTLE for r in reading.throttle)


def _deployments(
    host: HostView, device: str, catalog: Mapping[str, WorkloadFeatures]
) -> tuple[Deployment, ...]:
    return tuple(
        deployment_from_reading(d, host.name, device, catalog) for d in host.deployments if _live(d)
    )


def _live(d: DeploymentReading) -> bool:
    return d.state in (None, "starting", "running")


def deployment_from_reading(
    d: DeploymentReading, host: str, device: str, catalog: Mapping[str, WorkloadFeatures]
) -> Deployment:
    """A worker's report as a Deployment: a server's rate is its measured throughput (the
    reading carries no offered rate); any other scenario is a closed loop."""
    return Deployment(
        id=d.id,
        model=d.model or "?",
        batch=d.batch or 1,
        workload=catalog.get(d.model or ""),
        scenario=d.scenario or "server",
        qps=d.throughput if (d.scenario or "server") == "server" else None,
        slo_ms=d.slo_ms,
        p50_ms=d.p50_ms,
        p99_ms=d.p99_ms,
        host=host,
        device=device,
        busy=d.busy,
    )


def _accelerator_features(
    profile: DeviceProfile,
    reading: DeviceReading,
    deployments: Sequence[Deployment],
    host_power_mode: str | None = None,
) -> DeviceFeatures:
    total = reading.mem_total or profile.memory_bytes
    used = reading.mem_used or 0
    features = DeviceFeatures(
        kind=profile.kind,
        peak_tflops=peak_tflops(profile),
        mem_bw_gbs=profile.memory_bw_gbs,
        mem_total_bytes=total,
        mem_free_bytes=max(total - used, 0),
        util=min(max((reading.util or 0.0) / 100.0, 0.0), 1.0),
        colocated=len(deployments),
        temp_c=reading.temp_c if reading.temp_c is not None else 40.0,
        throttled=_throttled(reading),
        power_fraction=power_fraction(profile, reading.power_mode or host_power_mode),
        edge=profile.kind != "gpu-server",
    )
    return with_corunners(features, deployments)


def cpu_features(
    host: HostView,
    reading: DeviceReading | None,
    colocated: int,
    deployments: Sequence[Deployment] = (),
) -> DeviceFeatures:
    """A CPU-only host as a device, from its core count, cgroup quota and memory limit, with
    the co-runner columns of `deployments` (those running on it)."""
    hello = host.hello
    cores = float(hello.cpu_count or 1) if hello else 1.0
    if hello and hello.cpu_quota:
        cores = min(cores, hello.cpu_quota)
    total = (reading.mem_total if reading else None) or (
        hello.mem_limit or hello.mem_total if hello else None
    )
    total = total or 1 << 30
    used = (reading.mem_used if reading else None) or 0
    tflops, bw = cpu_capacity(cores)
    features = DeviceFeatures(
        kind="cpu",
        peak_tflops=tflops,
        mem_bw_gbs=bw,
        mem_total_bytes=total,
        mem_free_bytes=max(total - used, 0),
        util=min(max(((reading.util if reading else None) or 0.0) / 100.0, 0.0), 1.0),
        colocated=colocated,
        temp_c=(reading.temp_c if reading else None) or 40.0,
        throttled=False,
        power_fraction=1.0,
        edge=True,
    )
    return with_corunners(features, deployments)


def _placeholder(kind: str) -> DeviceFeatures:
    return DeviceFeatures(
        kind=kind, peak_tflops=1.0, mem_bw_gbs=1.0, mem_total_bytes=0, mem_free_bytes=0
    )


def host_slots(
    host: HostView,
    config: FleetConfig | None = None,
    catalog: Mapping[str, WorkloadFeatures] | None = None,
    now: float | None = None,
) -> tuple[DeviceSlot, ...]:
    """The candidate devices of one host (offline ones carry their reason)."""
    catalog = catalog or {}
    sim = _sim_profile(host, config) if host.transport == "sim" else None
    online = host.answered and host.status is HostStatus.ONLINE
    if not online:
        reason = _unavailable_reason(host, now)
        known = host.accelerators() or tuple(d for d in host.devices if d.kind == "cpu")
        ids = [d.id for d in known] or ["-"]
        return tuple(
            DeviceSlot(
                host.name, i, _placeholder(host.kind), profile=sim, online=False, reason=reason
            )
            for i in ids
        )
    accelerators = host.accelerators()
    if not accelerators:
        cpu = next((d for d in host.devices if d.kind == "cpu"), None)
        deps = _deployments(host, "cpu", catalog)
        return (
            DeviceSlot(
                host.name,
                "cpu",
                cpu_features(host, cpu, len(deps), deps),
                profile=None,
                deployments=deps,
            ),
        )
    slots = []
    for k, reading in enumerate(accelerators):
        name = sim or profile_for_name(reading.name)
        profile = PROFILES.get(name or "")
        deps = _deployments(host, reading.id, catalog) if k == 0 else ()
        if profile is None:
            slots.append(
                DeviceSlot(
                    host.name,
                    reading.id,
                    _placeholder(host.kind),
                    online=False,
                    reason=f"unknown accelerator {reading.name or reading.id!r}: "
                    "no device profile to predict from",
                )
            )
            continue
        slots.append(
            DeviceSlot(
                host=host.name,
                device=reading.id,
                features=_accelerator_features(
                    profile, reading, deps, host.hello.power_mode if host.hello else None
                ),
                profile=profile.name,
                deployments=deps,
                busy_power_w=reading.power_limit_w or profile.tdp_w,
                power_mode=reading.power_mode,
            )
        )
    return tuple(slots)


def fleet_from_snapshot(
    snapshot: FleetSnapshot,
    config: FleetConfig | None = None,
    catalog: Mapping[str, WorkloadFeatures] | None = None,
    now: float | None = None,
) -> Fleet:
    """Every device of every host, as candidates for a placement."""
    return Fleet.build(
        [s for host in snapshot.hosts for s in host_slots(host, config, catalog, now)]
    )
