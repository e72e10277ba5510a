"""Simulated device profiles: the static figures a `sim` host is built from.

The numbers are copied from the project's reference table (device_specs.csv, public
datasheets and secondary sources); each profile keeps the source string of its row so a
figure can always be traced. Nothing here reads a file at run time.

Conventions:
- `memory_bytes` uses binary units (a "40 GB" part is 40 GiB), as nvidia-smi and
  /proc/meminfo report them. Jetson memory is shared between CPU and GPU.
- `fp16_tflops` is the dense tensor-core FP16 peak; `int8_tops` is the dense INT8 peak
  (GPU only, no DLA, no sparsity). None means no trustworthy public figure was found.
- Power modes are ordered fastest first. Discrete GPUs and the CPU box have no named
  modes, so they carry the single mode "default".
- `idle_power_w` and the host `cpu_cores` of the GPU servers are typical figures, not
  datasheet values: the simulator needs a number and the source string says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from edgetop.remote.errors import EdgetopError

__all__ = [
    "CPU_CORE_BW_GBS",
    "CPU_CORE_TFLOPS",
    "CPU_MAX_BW_GBS",
    "PROFILES",
    "DeviceKind",
    "DeviceProfile",
    "UnknownProfileError",
    "cpu_capacity",
    "get_profile",
]

DeviceKind = Literal["gpu-server", "jetson", "cpu"]

_GIB = 1024**3


@dataclass(frozen=True)
class DeviceProfile:
    """Static capabilities of one simulated device (one accelerator plus its host CPU)."""

    name: str
    kind: DeviceKind
    display_name: str
    fp32_tflops: float
    fp16_tflops: float | None
    int8_tops: float | None
    memory_bytes: int
    memory_bw_gbs: float
    tdp_w: float
    cpu_cores: int
    power_modes: tuple[str, ...]
    default_power_mode: str
    idle_power_w: float
    source: str


# A generic x86 core: ~3 GHz x 16 FP32 FLOP/cycle (one AVX2 FMA port), a conservative
# figure; memory bandwidth grows with cores up to what dual-channel DDR4-3200 sustains (~40 of
# its ~51 GB/s peak). The cpu-8c profile is 8 of them; a live CPU host is sized by its cores
# or its cgroup quota (core/live.py, core/measured.py).
CPU_CORE_TFLOPS = 0.05
CPU_CORE_BW_GBS = 5.0
CPU_MAX_BW_GBS = 40.0


def cpu_capacity(cores: float) -> tuple[float, float]:
    """(peak FP32 TFLOPS, memory bandwidth GB/s) of `cores` generic cores; a cgroup quota
    makes a fraction of a core."""
    return cores * CPU_CORE_TFLOPS, min(cores * CPU_CORE_BW_GBS, CPU_MAX_BW_GBS)


class UnknownProfileError(EdgetopError, KeyError):
    """No profile has that name. A KeyError too, so mapping-style callers keep working."""

    def __init__(self, name: str, valid: tuple[str, ...]) -> None:
        super().__init__(name)
        self.name = name
        self.valid = valid

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the whole message; we want plain text.
        return f"unknown device profile {self.name!r}; valid profiles: {', '.join(self.valid)}"


# Shared source strings (as given in device_specs.csv), so each row names where it came from.
_SRC_A100 = "NVIDIA A100 datasheet figures via glennklockwood.com; thundercompute specs"
_SRC_V100 = "launch articles (io-tech.fi)"
_SRC_T4 = "geektopia.es; sysrqmts.com"
_SRC_XAVIER = "adafruit blinka notes; MLPerf v0.7 system json"
_SRC_XAVIER_NX = "adafruit blinka notes"
_SRC_AGX_ORIN = "NVIDIA DS-10662 as quoted"
_SRC_ORIN_NX = "NVIDIA DS-10712 as quoted"
_SRC_ORIN_NANO = "NVIDIA DS-11105 as quoted"
_TYPICAL = "idle power and host CPU cores are typical figures, not datasheet values"

_TABLE: tuple[DeviceProfile, ...] = (
    DeviceProfile(
        name="a100-40gb",
        kind="gpu-server",
        display_name="NVIDIA A100-PCIE-40GB",
        fp32_tflops=19.5,
        fp16_tflops=312.0,
        int8_tops=624.0,
        memory_bytes=40 * _GIB,
        memory_bw_gbs=1555.0,
        tdp_w=250.0,
        cpu_cores=32,
        power_modes=("default",),
        default_power_mode="default",
        idle_power_w=35.0,
        source=f"device_specs.csv row a100-pcie-40gb: {_SRC_A100}; {_TYPICAL}",
    ),
    DeviceProfile(
        name="a100-80gb",
        kind="gpu-server",
        display_name="NVIDIA A100 80GB PCIe",
        fp32_tflops=19.5,
        fp16_tflops=312.0,
        int8_tops=624.0,
        memory_bytes=80 * _GIB,
        memory_bw_gbs=1935.0,
        tdp_w=300.0,
        cpu_cores=32,
        power_modes=("default",),
        default_power_mode="default",
        idle_power_w=40.0,
        source=f"device_specs.csv row a100-pcie-80gb: {_SRC_A100}; {_TYPICAL}",
    ),
    DeviceProfile(
        # The DGX A100 part MLPerf measured (v0.7): same silicon as the PCIe card, 400 W board
        # power, so it sustains higher clocks.
        name="a100-sxm4-40gb",
        kind="gpu-server",
        display_name="NVIDIA A100-SXM4-40GB",
        fp32_tflops=19.5,
        fp16_tflops=312.0,
        int8_tops=624.0,
        memory_bytes=40 * _GIB,
        memory_bw_gbs=1555.0,
        tdp_w=400.0,
        cpu_cores=32,
        power_modes=("default",),
        default_power_mode="default",
        idle_power_w=50.0,
        source=f"device_specs.csv row a100-sxm4-40gb: {_SRC_A100}; {_TYPICAL}",
    ),
    DeviceProfile(
        name="v100-16gb",
        kind="gpu-server",
        display_name="Tesla V100-PCIE-16GB",
        fp32_tflops=14.0,
        fp16_tflops=112.0,
        int8_tops=None,  # Volta has no INT8 tensor cores; no dense figure is published
        memory_bytes=16 * _GIB,
        memory_bw_gbs=900.0,
        tdp_w=250.0,
        cpu_cores=24,
        power_modes=("default",),
        default_power_mode="default",
        idle_power_w=25.0,
        source=f"device_specs.csv row v100-pcie-16gb (tensor 112 at 1370 MHz): {_SRC_V100}; "
        f"{_TYPICAL}",
    ),
    DeviceProfile(
        name="t4",
        kind="gpu-server",
        display_name="Tesla T4",
        fp32_tflops=8.1,
        fp16_tflops=65.0,
        int8_tops=130.0,
        memory_bytes=16 * _GIB,
        memory_bw_gbs=320.0,
        tdp_w=70.0,
        cpu_cores=16,
        power_modes=("default",),
        default_power_mode="default",
        idle_power_w=10.0,
        source=f"device_specs.csv row t4: {_SRC_T4}; {_TYPICAL}",
    ),
    DeviceProfile(
        name="jetson-agx-xavier",
        kind="jetson",
        display_name="Jetson AGX Xavier",
        fp32_tflops=1.4,
        fp16_tflops=11.0,
        int8_tops=32.0,
        memory_bytes=32 * _GIB,
        memory_bw_gbs=137.0,
        tdp_w=30.0,
        cpu_cores=8,
        power_modes=("MAXN", "30W", "15W", "10W"),
        default_power_mode="MAXN",
        idle_power_w=6.0,
        source=f"device_specs.csv row jetson-agx-xavier-32gb (fp32 and int8 figures unverified): "
        f"{_SRC_XAVIER}; idle power is a typical figure",
    ),
    DeviceProfile(
        name="jetson-xavier-nx",
        kind="jetson",
        display_name="Jetson Xavier NX",
        fp32_tflops=0.85,
        fp16_tflops=6.0,
        int8_tops=21.0,
        memory_bytes=8 * _GIB,
        memory_bw_gbs=51.2,
        tdp_w=15.0,
        cpu_cores=6,
        power_modes=("15W", "10W"),  # 20 W modes came with later L4T releases
        default_power_mode="15W",
        idle_power_w=3.5,
        source=f"device_specs.csv row jetson-xavier-nx-8gb: {_SRC_XAVIER_NX}; "
        "idle power is a typical figure",
    ),
    DeviceProfile(
        name="jetson-agx-orin",
        kind="jetson",
        display_name="Jetson AGX Orin 64GB",
        fp32_tflops=5.3,
        fp16_tflops=None,
        int8_tops=137.0,
        memory_bytes=64 * _GIB,
        memory_bw_gbs=204.8,
        tdp_w=60.0,
        cpu_cores=12,
        power_modes=("MAXN", "50W", "30W", "15W"),
        default_power_mode="MAXN",
        idle_power_w=8.0,
        source=f"device_specs.csv row jetson-agx-orin-64gb (275 sparse int8 TOPS incl. DLA): "
        f"{_SRC_AGX_ORIN}; idle power is a typical figure",
    ),
    DeviceProfile(
        name="jetson-orin-nx",
        kind="jetson",
        display_name="Jetson Orin NX 16GB",
        fp32_tflops=1.9,
        fp16_tflops=None,
        int8_tops=50.0,
        memory_bytes=16 * _GIB,
        memory_bw_gbs=102.0,
        tdp_w=25.0,
        cpu_cores=8,
        power_modes=("25W", "15W", "10W"),
        default_power_mode="25W",
        idle_power_w=4.0,
        source=f"device_specs.csv row jetson-orin-nx-16gb (100 sparse TOPS): {_SRC_ORIN_NX}; "
        "idle power is a typical figure",
    ),
    DeviceProfile(
        name="jetson-orin-nano",
        kind="jetson",
        display_name="Jetson Orin Nano 8GB",
        fp32_tflops=1.3,
        fp16_tflops=None,
        int8_tops=20.0,
        memory_bytes=8 * _GIB,
        memory_bw_gbs=68.0,
        tdp_w=15.0,
        cpu_cores=6,
        power_modes=("15W", "7W"),
        default_power_mode="15W",
        idle_power_w=3.0,
        source=f"device_specs.csv row jetson-orin-nano-8gb (40 sparse TOPS): {_SRC_ORIN_NANO}; "
        "idle power is a typical figure",
    ),
    DeviceProfile(
        name="cpu-8c",
        kind="cpu",
        display_name="Generic 8-core CPU",
        fp32_tflops=cpu_capacity(8)[0],
        fp16_tflops=None,
        int8_tops=None,
        memory_bytes=32 * _GIB,
        memory_bw_gbs=cpu_capacity(8)[1],
        tdp_w=65.0,
        cpu_cores=8,
        power_modes=("default",),
        default_power_mode="default",
        idle_power_w=20.0,
        source="generic figure for a plain 8-core x86 server without an accelerator "
        "(not a measured device, not from device_specs.csv)",
    ),
)

PROFILES: Mapping[str, DeviceProfile] = MappingProxyType({p.name: p for p in _TABLE})


def get_profile(name: str) -> DeviceProfile:
    """The profile called `name`; UnknownProfileError (a KeyError) lists the valid names."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name from bad input
        raise UnknownProfileError(str(name), tuple(PROFILES)) from None
