"""Host agent collectors with fake backends: pynvml, nvidia-smi, tegrastats, jtop, psutil, cgroups.

No GPU, Jetson, root or network needed: NVML values come from tests/fixtures/nvml_h100.json, the
fake nvidia-smi/tegrastats/nvpmodel executables replay the published captures in fixtures/.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edgetop.remote import agent

FIXTURES = Path(__file__).parent / "fixtures"
MIB = 1024 * 1024
NVML = json.loads((FIXTURES / "nvml_h100.json").read_text())
H100_UUID = "GPU-00000000-0000-0000-0000-000000000000"


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll until predicate() is truthy (generous timeout: CI machines are slow)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def executable(path: Path, body: str) -> str:
    """A Python script that stands in for a host command."""
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


# --- fake pynvml -------------------------------------------------------------------------------


class NVMLError(Exception):
    """Shaped like pynvml.NVMLError: one subclass per return code, str() is the message."""

    messages: ClassVar[dict[int, str]] = {
        1: "Uninitialized",
        3: "Not Supported",
        6: "Not Found",
        12: "NVML Shared Library Not Found",
        15: "GPU is lost",
    }

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self.messages.get(self.value, "Unknown Error")


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(3)


class NVMLError_NotFound(NVMLError):
    def __init__(self) -> None:
        super().__init__(6)


class NVMLError_LibraryNotFound(NVMLError):
    def __init__(self) -> None:
        super().__init__(12)


class NVMLError_GpuIsLost(NVMLError):
    def __init__(self) -> None:
        super().__init__(15)


class Handle:
    def __init__(self, gpu: dict[str, Any], mig: dict[str, Any] | None = None) -> None:
        self.gpu = gpu
        self.mig = mig


def fake_nvml(
    capture: str,
    *,
    unsupported: frozenset[str] = frozenset(),
    lost: frozenset[str] = frozenset(),
    missing: frozenset[str] = frozenset(),
    init_fails: bool = False,
) -> types.ModuleType:
    """A pynvml stand-in serving one capture of nvml_h100.json.

    A null value in the capture raises NVMLError_NotSupported, as the real NVML does for a
    field the board does not report; `unsupported` / `lost` names functions that always raise
    NotSupported / GpuIsLost; `missing` removes functions (an older binding)."""
    gpus = NVML["captures"][capture]["gpus"]
    mod = types.ModuleType("pynvml")
    mod.calls = []  # type: ignore[attr-defined]
    mod.NVMLError = NVMLError  # type: ignore[attr-defined]
    mod.NVMLError_NotSupported = NVMLError_NotSupported  # type: ignore[attr-defined]
    mod.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    mod.NVML_CLOCK_SM = 1  # type: ignore[attr-defined]
    mod.NVML_DEVICE_MIG_ENABLE = 1  # type: ignore[attr-defined]

    def value(v: Any) -> Any:
        if v is None:
            raise NVMLError_NotSupported()
        return v

    def proc_list(procs: list[dict[str, Any]]) -> list[Any]:
        return [
            types.SimpleNamespace(pid=p["pid"], usedGpuMemory=p["used_gpu_memory"]) for p in procs
        ]

    def init() -> None:
        if init_fails:
            raise NVMLError_LibraryNotFound()

    def handle_by_index(i: int) -> Handle:
        return Handle(gpus[i])

    def name(h: Handle) -> str:
        if h.mig is not None:  # NVML names a MIG device "<GPU name> MIG <profile>"
            return f"{h.gpu['name']} MIG {h.mig['profile']}"
        return h.gpu["name"]

    def uuid(h: Handle) -> str:
        return h.mig["uuid"] if h.mig is not None else h.gpu["uuid"]

    def memory(h: Handle) -> Any:
        src = h.mig if h.mig is not None else h.gpu
        total, used = value(src["memory_total"]), value(src["memory_used"])
        return types.SimpleNamespace(total=total, used=used, free=total - used)

    def utilization(h: Handle) -> Any:
        return types.SimpleNamespace(gpu=value(h.gpu["utilization_gpu"]), memory=0)

    def temperature(h: Handle, sensor: int) -> int:
        assert sensor == mod.NVML_TEMPERATURE_GPU
        return value(h.gpu["temperature_gpu"])

    def clock(h: Handle, kind: int) -> int:
        assert kind == mod.NVML_CLOCK_SM
        return value(h.gpu["clock_sm_mhz"])

    def processes(h: Handle) -> list[Any]:
        return proc_list(h.mig["processes"] if h.mig is not None else h.gpu["processes"])

    def mig_mode(h: Handle) -> list[int]:
        return list(h.gpu["mig_mode"])

    def max_mig(h: Handle) -> int:
        return 7  # H100: up to seven instances

    def mig_by_index(h: Handle, j: int) -> Handle:
        devices = h.gpu["mig_devices"]
        if j >= len(devices):
            raise NVMLError_NotFound()
        return Handle(h.gpu, devices[j])

    functions: dict[str, Callable[..., Any]] = {
        "nvmlInit": init,
        "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: len(gpus),
        "nvmlDeviceGetHandleByIndex": handle_by_index,
        "nvmlDeviceGetName": name,
        "nvmlDeviceGetUUID": uuid,
        "nvmlDeviceGetMemoryInfo": memory,
        "nvmlDeviceGetUtilizationRates": utilization,
        "nvmlDeviceGetTemperature": temperature,
        "nvmlDeviceGetPowerUsage": lambda h: value(h.gpu["power_usage_mw"]),
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: value(h.gpu["enforced_power_limit_mw"]),
        "nvmlDeviceGetClockInfo": clock,
        "nvmlDeviceGetCurrentClocksEventReasons": lambda h: value(h.gpu["clocks_event_reasons"]),
        "nvmlDeviceGetCurrentClocksThrottleReasons": lambda h: value(h.gpu["clocks_event_reasons"]),
        "nvmlDeviceGetComputeRunningProcesses": processes,
        "nvmlDeviceGetMigMode": mig_mode,
        "nvmlDeviceGetMaxMigDeviceCount": max_mig,
        "nvmlDeviceGetMigDeviceHandleByIndex": mig_by_index,
        "nvmlSystemGetDriverVersion": lambda: NVML["driver_version"],
        "nvmlSystemGetCudaDriverVersion": lambda: NVML["cuda_driver_version"],
    }

    def wrap(fn_name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            mod.calls.append(fn_name)  # type: ignore[attr-defined]
            if fn_name in unsupported:
                raise NVMLError_NotSupported()
            if fn_name in lost:
                raise NVMLError_GpuIsLost()
            return fn(*args)

        return call

    for fn_name, fn in functions.items():
        if fn_name not in missing:
            setattr(mod, fn_name, wrap(fn_name, fn))
    return mod


def fixture_names(capture: str) -> Callable[[int], str | None]:
    """The process names the capture shows, standing in for /proc/<pid>/comm."""
    names = {p["pid"]: p["name"] for g in NVML["captures"][capture]["gpus"] for p in g["processes"]}
    return names.get


def nvml_sample(collector: agent.NvmlCollector) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    devices = collector.sample(errors)
    assert len(devices) == 1
    return devices[0], errors


def test_nvml_idle_capture() -> None:
    c = agent.NvmlCollector(fake_nvml("idle"), proc_name=fixture_names("idle"))
    assert c.status == "ok"
    assert c.driver == "590.48.01"
    assert c.cuda == "13.1"
    assert c.inventory() == [
        {
            "id": "gpu0",
            "kind": "gpu",
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": H100_UUID,
            "mem_total": 81559 * MIB,
        }
    ]
    dev, errors = nvml_sample(c)
    assert errors == {}
    assert dev == {
        "id": "gpu0",
        "kind": "gpu",
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": H100_UUID,
        "util": 0.0,
        "mem_used": 0,
        "mem_total": 85520809984,
        "temp_c": 41.0,
        "power_w": 69.85,
        "power_limit_w": 700.0,
        "sm_clock_mhz": 345,
        "throttle": ["gpu_idle"],
        "processes": [],
        "mig": None,
        "mig_enabled": False,
    }


def test_nvml_load_capture_with_processes() -> None:
    c = agent.NvmlCollector(fake_nvml("load"), proc_name=fixture_names("load"))
    dev, errors = nvml_sample(c)
    # the capture has no SM clock or reasons: NotSupported -> null, the rest survives
    assert errors == {}
    assert dev["util"] == 100.0
    assert dev["mem_used"] == 19818 * MIB
    assert dev["temp_c"] == 59.0
    assert dev["power_w"] == 629.0
    assert dev["power_limit_w"] == 700.0
    assert dev["sm_clock_mhz"] is None
    assert dev["throttle"] is None
    assert dev["processes"] == [
        {"pid": 11327, "name": "/root/tools/memhog", "mem_used": 2566 * MIB},
        {"pid": 11328, "name": "/root/tools/memhog", "mem_used": 1542 * MIB},
        {"pid": 11345, "name": "./gpu_burn", "mem_used": 15690 * MIB},
    ]


def test_nvml_mig_capture() -> None:
    c = agent.NvmlCollector(fake_nvml("mig_load"), proc_name=fixture_names("mig_load"))
    dev, errors = nvml_sample(c)
    assert errors == {}
    assert dev["util"] is None  # GPU-Util is N/A under MIG
    assert dev["mem_used"] == 11125 * MIB
    assert dev["temp_c"] == 52.0
    assert dev["power_w"] == 432.0
    assert dev["mig_enabled"] is True
    assert [(m["id"], m["name"], m["mem_used"], m["mem_total"]) for m in dev["mig"]] == [
        ("gpu0/mig0", "3g.40gb", 11091 * MIB, 40448 * MIB),
        ("gpu0/mig1", "2g.20gb", 17 * MIB, 20096 * MIB),
        ("gpu0/mig2", "1g.10gb", 9 * MIB, 9984 * MIB),
        ("gpu0/mig3", "1g.10gb", 9 * MIB, 9984 * MIB),
    ]
    assert dev["mig"][1]["uuid"] == "MIG-00000001-0000-0000-0000-000000000001"
    assert [p["pid"] for p in dev["mig"][0]["processes"]] == [21180, 21181, 21198]
    assert [p["pid"] for p in dev["processes"]] == [21180, 21181, 21198]


def test_nvml_not_supported_fields_become_null_and_the_rest_survives() -> None:
    unsupported = frozenset(
        {
            "nvmlDeviceGetPowerUsage",
            "nvmlDeviceGetEnforcedPowerLimit",
            "nvmlDeviceGetTemperature",
            "nvmlDeviceGetClockInfo",
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetCurrentClocksThrottleReasons",
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetMigMode",
        }
    )
    nv = fake_nvml("load", unsupported=unsupported)
    c = agent.NvmlCollector(nv, proc_name=fixture_names("load"))
    dev, errors = nvml_sample(c)
    assert errors == {}  # util and memory were read: the GPU itself is fine
    assert dev["util"] == 100.0
    assert dev["mem_used"] == 19818 * MIB
    assert dev["mem_total"] == 85520809984
    for key in (
        "temp_c",
        "power_w",
        "power_limit_w",
        "sm_clock_mhz",
        "throttle",
        "processes",
        "mig",
        "mig_enabled",
    ):
        assert dev[key] is None, key
    # every one of them was attempted: one failing call did not stop the next
    assert set(unsupported) <= set(nv.calls)


def test_nvml_older_binding_falls_back_to_throttle_reasons() -> None:
    nv = fake_nvml("idle", missing=frozenset({"nvmlDeviceGetCurrentClocksEventReasons"}))
    dev, _ = nvml_sample(agent.NvmlCollector(nv))
    assert dev["throttle"] == ["gpu_idle"]
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" in nv.calls


def test_nvml_gpu_lost_reports_an_error_with_null_fields() -> None:
    per_gpu = frozenset(
        name
        for name in dir(fake_nvml("idle"))
        if name.startswith("nvmlDeviceGet")
        and name not in ("nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex")
    )
    c = agent.NvmlCollector(fake_nvml("idle"))
    c.nv = fake_nvml("idle", lost=per_gpu)  # the GPU falls off the bus after start
    dev, errors = nvml_sample(c)
    assert dev["id"] == "gpu0"
    assert dev["name"] == "NVIDIA H100 80GB HBM3"  # from the inventory
    assert dev["util"] is None and dev["mem_used"] is None and dev["power_w"] is None
    assert "gpu0" in errors["nvml"]
    assert "GPU is lost" in errors["nvml"]


def test_nvml_init_failure_and_absent_module() -> None:
    c = agent.NvmlCollector(fake_nvml("idle", init_fails=True))
    assert c.status.startswith("unavailable: nvmlInit failed")
    assert "NVML Shared Library Not Found" in c.status
    assert c.inventory() == []
    nv = fake_nvml("idle", lost=frozenset({"nvmlDeviceGetCount"}))
    assert agent.NvmlCollector(nv).status.startswith("unavailable:")


def test_nvml_default_process_names_come_from_proc_comm() -> None:
    own = Path("/proc/self/comm").read_text().strip()
    assert agent._proc_comm(os.getpid()) == own
    assert agent._proc_comm(2**22 + 12345) is None  # above pid_max: never a live process


# --- fake nvidia-smi ---------------------------------------------------------------------------

# Values of the H100 'idle :: query-gpu' CSV capture (nvidia-smi.txt), per query field; the
# processes are the 'load :: query-compute-apps' capture (the only one published as CSV).
SMI_IDLE = {
    "index": "0",
    "uuid": H100_UUID,
    "name": "NVIDIA H100 80GB HBM3",
    "utilization.gpu": "0",
    "memory.used": "0",
    "memory.total": "81559",
    "temperature.gpu": "41",
    "power.draw": "69.85",
    "power.limit": "700.00",
    "clocks.sm": "345",
    "clocks_event_reasons.active": "0x0000000000000001",
    "clocks_throttle_reasons.active": "0x0000000000000001",
}
SMI_APPS = [
    {"pid": "21180", "process_name": "/root/tools/memhog", "used_memory": "2296"},
    {"pid": "21181", "process_name": "/root/tools/memhog", "used_memory": "1272"},
    {"pid": "21198", "process_name": "./gpu_burn", "used_memory": "7484"},
]

FAKE_SMI = """
import sys, time
GPU, APPS, UUID, BANNER, MODE = {gpu!r}, {apps!r}, {uuid!r}, {banner!r}, {mode!r}
args = sys.argv[1:]
if MODE == "broken":
    print("Failed to initialize NVML: Driver/library version mismatch")
    print("NVML library version: 570.124")
    sys.exit(18)
if not args:
    print(BANNER)
    sys.exit(0)
query = [a for a in args if a.startswith("--query-")][0]
kind, _, fields = query.partition("=")
fields = fields.split(",")
loop = [a for a in args if a.startswith("--loop-ms=")]
if "clocks_event_reasons.active" in fields and MODE == "old-driver":
    print('Field "clocks_event_reasons.active" is not a valid field to query.')
    sys.exit(2)
if kind == "--query-compute-apps":
    for app in APPS:
        row = dict(app, gpu_uuid=UUID)
        print(", ".join(row[f] for f in fields))
    sys.exit(0)
if loop and MODE == "loop-dies":
    sys.exit(1)
if loop and MODE == "loop-silent":  # as if it block-buffered its piped stdout
    time.sleep(3600)
while True:
    print(", ".join(GPU[f] for f in fields), flush=True)
    if not loop:
        break
    time.sleep(int(loop[0].split("=")[1]) / 1000)
"""


def smi_banner() -> str:
    lines = (FIXTURES / "nvidia-smi.txt").read_text().splitlines()
    return next(line for line in lines if "Driver Version: 590.48.01" in line)


def fake_smi(tmp_path: Path, mode: str = "ok") -> str:
    body = FAKE_SMI.format(
        gpu=SMI_IDLE, apps=SMI_APPS, uuid=H100_UUID, banner=smi_banner(), mode=mode
    )
    return executable(tmp_path / "nvidia-smi", body)


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    """Collectors registered here are closed (children stopped) after the test."""
    items: list[Any] = []
    yield items
    for item in items:
        item.close()


def test_nvidia_smi_collector_retries_old_field_name_and_streams(
    tmp_path: Path, closing: list[Any]
) -> None:
    c = agent.NvidiaSmiCollector(0.1, exe=fake_smi(tmp_path, "old-driver"), apps_period=0.1)
    closing.append(c)
    assert c.status == "ok"
    assert c.fields[-1] == "clocks_throttle_reasons.active"  # the renamed field was refused
    assert (c.driver, c.cuda) == ("590.48.01", "13.1")
    assert c.inventory() == [
        {
            "id": "gpu0",
            "kind": "gpu",
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": H100_UUID,
            "mem_total": 81559 * MIB,
        }
    ]
    first = c._rows[0][0]
    assert wait_for(lambda: c._rows[0][0] > first), "the --loop-ms child never reported"
    assert wait_for(lambda: c._apps is not None), "compute-apps was never polled"
    errors: dict[str, str] = {}
    (dev,) = c.sample(errors)
    assert errors == {}
    assert dev["util"] == 0.0
    assert dev["mem_used"] == 0
    assert dev["mem_total"] == 85520809984
    assert dev["temp_c"] == 41.0
    assert dev["power_w"] == 69.85
    assert dev["power_limit_w"] == 700.0
    assert dev["sm_clock_mhz"] == 345
    assert dev["throttle"] == ["gpu_idle"]
    assert dev["processes"] == [
        {"pid": 21180, "name": "/root/tools/memhog", "mem_used": 2296 * MIB},
        {"pid": 21181, "name": "/root/tools/memhog", "mem_used": 1272 * MIB},
        {"pid": 21198, "name": "./gpu_burn", "mem_used": 7484 * MIB},
    ]
    child = c._child
    assert child is not None and child.alive
    c.close()
    assert wait_for(lambda: not child.alive), "the loop child outlived close()"


def test_nvidia_smi_collector_prefers_clocks_event_reasons(
    tmp_path: Path, closing: list[Any]
) -> None:
    c = agent.NvidiaSmiCollector(0.2, exe=fake_smi(tmp_path))
    closing.append(c)
    assert c.fields[-1] == "clocks_event_reasons.active"


def test_nvidia_smi_collector_driver_mismatch(tmp_path: Path) -> None:
    c = agent.NvidiaSmiCollector(0.2, exe=fake_smi(tmp_path, "broken"))
    assert c.status == "unavailable: Failed to initialize NVML: Driver/library version mismatch"
    assert c.inventory() == []


def test_nvidia_smi_collector_not_installed(tmp_path: Path) -> None:
    c = agent.NvidiaSmiCollector(0.2, exe=None) if not agent._which("nvidia-smi") else None
    if c is not None:
        assert c.status == "unavailable: not found"


def test_nvidia_smi_loop_death_is_reported(tmp_path: Path, closing: list[Any]) -> None:
    c = agent.NvidiaSmiCollector(0.1, exe=fake_smi(tmp_path, "loop-dies"))
    closing.append(c)
    assert c.status == "ok"  # the one-shot probe worked
    assert wait_for(lambda: c._child is not None and not c._child.alive)
    errors: dict[str, str] = {}
    (dev,) = c.sample(errors)
    assert "loop exited" in errors["nvidia-smi"]
    assert dev["id"] == "gpu0"


def test_nvidia_smi_silent_loop_falls_back_to_polling(tmp_path: Path, closing: list[Any]) -> None:
    c = agent.NvidiaSmiCollector(0.1, exe=fake_smi(tmp_path, "loop-silent"), stale_after=0.5)
    closing.append(c)
    probed = c._rows[0][0]
    errors: dict[str, str] = {}
    assert wait_for(lambda: c.sample(errors) and "polling instead" in errors.get("nvidia-smi", ""))
    assert wait_for(lambda: not c._child.alive), "the silent loop child was not stopped"
    assert wait_for(lambda: c._rows[0][0] > probed), "one-shot polling never reported"
    errors = {}
    (dev,) = c.sample(errors)
    assert errors == {}
    assert dev["temp_c"] == 41.0 and dev["sm_clock_mhz"] == 345


# --- Jetson: tegrastats, nvpmodel, jtop --------------------------------------------------------


def tegrastats_line(marker: str) -> str:
    lines = (FIXTURES / "tegrastats.txt").read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("#") and marker in line)
    return lines[i + 1]


ORIN_NANO = tegrastats_line("beszel")
THOR = tegrastats_line("test case '6.8.12'")

FAKE_TEGRASTATS = """
import sys, time
LINE = {line!r}
ms = int(sys.argv[sys.argv.index("--interval") + 1])
while True:
    time.sleep(ms / 1000)
    print(LINE, flush=True)
"""


def fake_tegrastats(tmp_path: Path, line: str = ORIN_NANO) -> str:
    return executable(tmp_path / "tegrastats", FAKE_TEGRASTATS.format(line=line))


def fake_nvpmodel(tmp_path: Path, marker: str) -> str:
    text = (FIXTURES / "jetson-release.txt").read_text().splitlines()
    i = next(i for i, line in enumerate(text) if line.startswith("#") and marker in line)
    out = []
    for line in text[i + 1 :]:
        if not line.strip() or line.startswith("# device"):
            break
        out.append(line)
    return executable(tmp_path / "nvpmodel", f"print({chr(10).join(out)!r})\n")


def test_tegrastats_collector(tmp_path: Path, closing: list[Any]) -> None:
    c = agent.JetsonCollector(
        "NVIDIA Jetson Orin Nano Developer Kit",
        0.1,
        jtop_socket=str(tmp_path / "no-jtop.sock"),
        tegrastats_exe=fake_tegrastats(tmp_path),
        nvpmodel_exe=fake_nvpmodel(tmp_path, "jetpack-nixos"),
    )
    closing.append(c)
    assert c.status == {
        "jtop": f"unavailable: {tmp_path / 'no-jtop.sock'} not found",
        "tegrastats": "ok",
    }
    assert c.inventory() == [
        {"id": "gpu0", "kind": "jetson", "name": "NVIDIA Jetson Orin Nano Developer Kit"}
    ]
    errors: dict[str, str] = {}
    (dev,) = c.sample(errors)
    assert errors == {}
    expected = agent.parse_tegrastats(ORIN_NANO)
    assert {k: dev[k] for k in expected} == expected
    assert dev["util"] == 63.0
    assert dev["power_w"] == 12.479
    assert dev["power_mode"] == "MAXN"  # from `nvpmodel -q`


def test_tegrastats_collector_first_sample_waits_for_a_line(
    tmp_path: Path, closing: list[Any]
) -> None:
    backend = agent.TegrastatsBackend(fake_tegrastats(tmp_path, THOR), 0.3)
    closing.append(backend)
    assert backend.sample()["temp_c"] == 34.5


def test_tegrastats_death_is_reported(tmp_path: Path, closing: list[Any]) -> None:
    exe = executable(tmp_path / "tegrastats", "print('tegrastats: permission denied')\n")
    c = agent.JetsonCollector(
        "Jetson",
        0.1,
        jtop_socket=str(tmp_path / "none"),
        tegrastats_exe=exe,
        nvpmodel_exe=fake_nvpmodel(tmp_path, "jomoengineer, first example"),
    )
    closing.append(c)
    assert wait_for(lambda: not c.backend._child.alive)
    errors: dict[str, str] = {}
    (dev,) = c.sample(errors)
    assert "permission denied" in errors["tegrastats"]
    assert dev["util"] is None and dev["mem_total"] is None
    assert dev["power_mode"] == "5W"  # nvpmodel's NVPM ERROR lines are ignored


class FakeJtop:
    """Shaped like jetson-stats' `jtop` (4.x+): start/close/ok, context manager, properties.

    Values are the Orin Nano tegrastats line in jtop's units (KB, mW, % idle per core)."""

    hang = False
    fail_after: int | None = None

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.started = False
        self.closed = False
        self.reads = 0

    def start(self) -> None:
        if self.hang:
            threading.Event().wait(30)
        self.started = True

    def close(self) -> None:
        self.closed = True

    def ok(self, spin: bool = False) -> bool:
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise ConnectionResetError("jtop server closed the connection")
        return self.started and not self.closed

    def __enter__(self) -> FakeJtop:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def gpu(self) -> dict[str, Any]:
        return {
            "gpu": {
                "type": "integrated",
                "status": {
                    "railgate": False,
                    "tpc_pg_mask": False,
                    "3d_scaling": True,
                    "load": 63.0,
                },
                "freq": {"governor": "nvhost_podgov", "cur": 621000, "max": 1020000, "min": 306000},
            }
        }

    @property
    def memory(self) -> dict[str, Any]:
        return {
            "RAM": {"tot": 7620 * 1024, "used": 6185 * 1024, "free": 500000, "shared": 0},
            "SWAP": {"tot": 3810 * 1024, "used": 851 * 1024, "cached": 1024},
            "EMC": {"online": True, "val": 43, "cur": 2133000, "max": 3199000, "min": 204000},
        }

    @property
    def cpu(self) -> dict[str, Any]:
        busy = [15, 11, 14, 13, 11, 8]
        cores = [
            {"online": True, "idle": 100.0 - b, "user": b, "nice": 0, "system": 0} for b in busy
        ]
        return {"total": {"user": 12.0, "nice": 0.0, "system": 0.0, "idle": 88.0}, "cpu": cores}

    @property
    def temperature(self) -> dict[str, Any]:
        return {
            "cpu": {"online": True, "temp": 53.968},
            "gpu": {"online": True, "temp": 53.343},
            "cv0": {"online": False, "temp": -256},
            "tj": {"online": True, "temp": 53.968},
        }

    @property
    def power(self) -> dict[str, Any]:
        return {
            "rail": {
                "VDD_CPU_GPU_CV": {"online": True, "type": "INA3221", "power": 4667, "avg": 4667},
                "VDD_SOC": {"online": True, "type": "INA3221", "power": 2817, "avg": 2817},
            },
            "tot": {"online": True, "power": 12479, "avg": 12479, "name": "VDD_IN"},
        }

    @property
    def nvpmodel(self) -> Any:
        return types.SimpleNamespace(name="15W", id=0)


def jtop_module(cls: type) -> types.ModuleType:
    mod = types.ModuleType("jtop")
    mod.jtop = cls  # type: ignore[attr-defined]
    return mod


def test_jtop_collector_via_the_service_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closing: list[Any]
) -> None:
    sock = tmp_path / "jtop.sock"
    sock.touch()
    monkeypatch.setitem(sys.modules, "jtop", jtop_module(FakeJtop))
    c = agent.JetsonCollector("NVIDIA Jetson Orin Nano", 1.0, jtop_socket=str(sock))
    closing.append(c)
    assert c.status == {"jtop": "ok", "tegrastats": "skipped: jtop ok"}
    errors: dict[str, str] = {}
    (dev,) = c.sample(errors)
    assert errors == {}
    assert dev == {
        "id": "gpu0",
        "kind": "jetson",
        "name": "NVIDIA Jetson Orin Nano",
        "util": 63.0,
        "mem_used": 6485442560,
        "mem_total": 7990149120,
        "temp_c": 53.343,
        "power_w": 12.479,
        "emc_util": 43.0,
        "per_core": [15.0, 11.0, 14.0, 13.0, 11.0, 8.0],
        "temps": {"cpu": 53.968, "gpu": 53.343, "tj": 53.968},
        "rails": {"VDD_CPU_GPU_CV": 4.667, "VDD_SOC": 2.817},
        "power_mode": "15W",
    }


def test_jtop_not_imported_without_its_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poisoned = types.ModuleType("jtop")  # importing `jtop` from it would fail loudly
    monkeypatch.setitem(sys.modules, "jtop", poisoned)
    c = agent.JetsonCollector("Jetson", 1.0, jtop_socket=str(tmp_path / "absent.sock"))
    assert c.status["jtop"].endswith("absent.sock not found")
    assert c.backend is None  # no tegrastats on this machine either


def test_jtop_not_answering_falls_back_to_tegrastats(tmp_path: Path, closing: list[Any]) -> None:
    hanging = type("HangingJtop", (FakeJtop,), {"hang": True})
    c = agent.JetsonCollector(
        "Jetson",
        0.1,
        jtop_cls=hanging,
        jtop_timeout=0.2,
        tegrastats_exe=fake_tegrastats(tmp_path),
        nvpmodel_exe=fake_nvpmodel(tmp_path, "jetpack-nixos"),
    )
    closing.append(c)
    assert c.status == {
        "jtop": "unavailable: RuntimeError: jtop service not answering",
        "tegrastats": "ok",
    }
    errors: dict[str, str] = {}
    (dev,) = c.sample(errors)
    assert dev["util"] == 63.0


def test_jtop_failing_at_runtime_switches_to_tegrastats(tmp_path: Path, closing: list[Any]) -> None:
    flaky = type("FlakyJtop", (FakeJtop,), {"fail_after": 1})
    c = agent.JetsonCollector(
        "Jetson",
        0.1,
        jtop_cls=flaky,
        tegrastats_exe=fake_tegrastats(tmp_path, THOR),
        nvpmodel_exe=fake_nvpmodel(tmp_path, "jetpack-nixos"),
    )
    closing.append(c)
    errors: dict[str, str] = {}
    (dev,) = c.sample(errors)
    assert errors == {} and dev["power_mode"] == "15W"
    jetson = c.backend.jetson
    (dev,) = c.sample(errors)
    assert "jtop server closed the connection" in errors["jtop"]
    assert dev["util"] is None  # this tick is lost, not guessed
    assert jetson.closed
    assert c.status["jtop"].startswith("unavailable: ConnectionResetError")
    assert c.status["tegrastats"] == "ok"
    errors = {}
    (dev,) = c.sample(errors)
    assert errors == {}
    assert dev["temp_c"] == 34.5  # the Thor line, from tegrastats now
    assert dev["power_mode"] == "MAXN"


# --- CPU ---------------------------------------------------------------------------------------


def fake_proc(root: Path, stat_text: str) -> Path:
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "stat").write_text(stat_text)
    (proc / "meminfo").write_text(
        "MemTotal:        8000000 kB\nMemFree:  1000000 kB\nMemAvailable:    6000000 kB\n"
    )
    (proc / "loadavg").write_text("0.50 0.40 0.30 2/300 4242\n")
    for pid in ("1", "42", "4242"):
        (proc / pid).mkdir(exist_ok=True)
    (proc / "self").mkdir(exist_ok=True)
    return proc


def fake_sys(root: Path, zone_type: str = "x86_pkg_temp", millideg: str = "45500") -> Path:
    zone = root / "sys" / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text(zone_type + "\n")
    (zone / "temp").write_text(millideg + "\n")
    return root / "sys"


def test_cpu_collector_procfs(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path, "cpu  100 0 100 800 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0\n"
    )
    c = agent.CpuCollector(use_psutil=False, proc_root=str(proc), sys_root=str(fake_sys(tmp_path)))
    assert c.status["procfs"] == "ok"
    (proc / "stat").write_text(
        "cpu  200 0 100 900 0 0 0 0\ncpu0 150 0 50 400 0 0 0 0\ncpu1 50 0 50 500 0 0 0 0\n"
    )
    s = c.sample()
    assert s["util"] == 50.0
    assert s["per_core"] == [100.0, 0.0]
    assert s["mem_total"] == 8000000 * 1024
    assert s["mem_used"] == 2000000 * 1024
    assert s["procs"] == 3
    assert s["temp_c"] == 45.5
    assert s["power_w"] is None
    assert isinstance(s["load"], list) and len(s["load"]) == 3


def fake_psutil() -> types.ModuleType:
    mod = types.ModuleType("psutil")

    def cpu_percent(interval: float | None = None, percpu: bool = False) -> Any:
        assert interval is None  # never blocks the loop
        return [12.5, 37.5] if percpu else 25.0

    mod.cpu_percent = cpu_percent  # type: ignore[attr-defined]
    mod.virtual_memory = lambda: types.SimpleNamespace(total=1000, available=250)  # type: ignore[attr-defined]
    mod.pids = lambda: [1, 2, 3, 4]  # type: ignore[attr-defined]
    return mod


def test_cpu_collector_psutil(tmp_path: Path) -> None:
    c = agent.CpuCollector(psutil_mod=fake_psutil(), sys_root=str(tmp_path / "nosys"))
    assert c.status == {"psutil": "ok", "procfs": "skipped: psutil ok"}
    s = c.sample()
    assert s["util"] == 25.0
    assert s["per_core"] == [12.5, 37.5]
    assert s["mem_used"] == 750
    assert s["mem_total"] == 1000
    assert s["procs"] == 4
    assert s["temp_c"] is None


def test_cpu_collector_reports_the_cgroup_memory(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "memory.current").write_text(str(300 * MIB))
    (cg / "memory.stat").write_text(
        f"anon {150 * MIB}\nfile {150 * MIB}\ninactive_file {100 * MIB}\n"
    )
    cgroup = {"mem_limit": 512 * MIB, "mem_dir": str(cg), "mem_version": 2}
    c = agent.CpuCollector(psutil_mod=fake_psutil(), cgroup=cgroup, sys_root=str(tmp_path))
    ps = fake_psutil()
    ps.virtual_memory = lambda: types.SimpleNamespace(total=64 << 30, available=32 << 30)  # type: ignore[attr-defined]
    c.psutil = ps
    s = c.sample()
    assert s["mem_total"] == 512 * MIB  # min(physical, limit)
    assert s["mem_used"] == 200 * MIB  # usage minus inactive file cache


def test_cgroup_memory_used_v1(tmp_path: Path) -> None:
    (tmp_path / "memory.usage_in_bytes").write_text("1000000\n")
    (tmp_path / "memory.stat").write_text("cache 10\ninactive_file 5\ntotal_inactive_file 400000\n")
    assert agent.cgroup_memory_used(str(tmp_path), 1) == 600000
    assert agent.cgroup_memory_used(str(tmp_path / "missing"), 1) is None


# --- cgroups -----------------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


# A cgroup v1 host (hybrid: the unified hierarchy is mounted too, with no controllers).
V1_MOUNTINFO = "".join(
    line + "\n"
    for line in (
        "24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
        "31 24 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
        "35 31 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16"
        " - cgroup cgroup rw,cpu,cpuacct",
        "36 31 0:33 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17"
        " - cgroup cgroup rw,memory",
        "37 31 0:34 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10"
        " - cgroup2 cgroup2 rw",
    )
)
V1_CGROUP = "12:memory:/edge/job\n4:cpu,cpuacct:/edge/job\n1:name=systemd:/edge/job\n0::/edge/job\n"


def v1_tree(root: Path) -> None:
    cpu = root / "sys/fs/cgroup/cpu,cpuacct"
    write(cpu / "cpu.cfs_quota_us", "-1")
    write(cpu / "cpu.cfs_period_us", "100000")
    write(cpu / "edge/cpu.cfs_quota_us", "150000")  # the parent holds the quota
    write(cpu / "edge/cpu.cfs_period_us", "100000")
    write(cpu / "edge/job/cpu.cfs_quota_us", "-1")
    write(cpu / "edge/job/cpu.cfs_period_us", "100000")
    mem = root / "sys/fs/cgroup/memory"
    write(mem / "memory.limit_in_bytes", "9223372036854771712")
    write(mem / "edge/memory.limit_in_bytes", str(512 * MIB))
    write(mem / "edge/job/memory.limit_in_bytes", str(2 << 30))  # looser than its parent


def test_cgroup_v1_takes_the_tightest_ancestor(tmp_path: Path) -> None:
    v1_tree(tmp_path)
    limits = agent.read_cgroup_limits(V1_CGROUP, V1_MOUNTINFO, str(tmp_path), 16 << 30)
    assert limits["cpu_quota"] == 1.5
    assert limits["mem_limit"] == 512 * MIB
    assert limits["mem_dir"] == str(tmp_path / "sys/fs/cgroup/memory/edge")
    assert limits["version"] == 1


def test_cgroup_v1_without_mountinfo_uses_conventional_paths(tmp_path: Path) -> None:
    v1_tree(tmp_path)
    limits = agent.read_cgroup_limits(V1_CGROUP, "", str(tmp_path), 16 << 30)
    assert (limits["cpu_quota"], limits["mem_limit"]) == (1.5, 512 * MIB)


def test_cgroup_v1_container_view(tmp_path: Path) -> None:
    # docker without a cgroup namespace: the mount shows only our own subtree
    mountinfo = (
        "40 31 0:32 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n"
        "41 31 0:33 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"
    )
    cgroup = "5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"
    write(tmp_path / "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000")
    write(tmp_path / "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000")
    write(tmp_path / "sys/fs/cgroup/memory/memory.limit_in_bytes", str(256 * MIB))
    limits = agent.read_cgroup_limits(cgroup, mountinfo, str(tmp_path), 16 << 30)
    assert (limits["cpu_quota"], limits["mem_limit"]) == (0.5, 256 * MIB)


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    v1_tree(tmp_path)
    write(tmp_path / "sys/fs/cgroup/cpu,cpuacct/edge/cpu.cfs_quota_us", "-1")
    # a limit at or above physical RAM can never bite: reported as none
    write(tmp_path / "sys/fs/cgroup/memory/edge/memory.limit_in_bytes", str(64 << 30))
    write(tmp_path / "sys/fs/cgroup/memory/edge/job/memory.limit_in_bytes", "9223372036854771712")
    limits = agent.read_cgroup_limits(V1_CGROUP, V1_MOUNTINFO, str(tmp_path), 16 << 30)
    assert (limits["cpu_quota"], limits["mem_limit"], limits["mem_dir"]) == (None, None, None)


V2_MOUNTINFO = (
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4"
    " - cgroup2 cgroup2 rw,nsdelegate\n"
)


def v2_tree(root: Path) -> Path:
    base = root / "sys/fs/cgroup"
    write(base / "cgroup.controllers", "cpu memory")  # the root has no cpu.max / memory.max
    write(base / "user.slice/cpu.max", "max 100000")
    write(base / "user.slice/memory.max", str(1 << 30))
    write(base / "user.slice/app.scope/cpu.max", "150000 100000")
    write(base / "user.slice/app.scope/memory.max", "max")
    return base


def test_cgroup_v2_takes_the_tightest_ancestor(tmp_path: Path) -> None:
    base = v2_tree(tmp_path)
    limits = agent.read_cgroup_limits(
        "0::/user.slice/app.scope\n", V2_MOUNTINFO, str(tmp_path), 16 << 30
    )
    assert limits["cpu_quota"] == 1.5
    assert limits["mem_limit"] == 1 << 30
    assert limits["mem_dir"] == str(base / "user.slice")
    assert limits["version"] == 2


def test_cgroup_v2_unlimited_and_namespaced(tmp_path: Path) -> None:
    base = tmp_path / "sys/fs/cgroup"
    write(base / "cpu.max", "max 100000")
    write(base / "memory.max", "max")
    # inside a cgroup namespace the process sees itself at "/" (or above it as "/..")
    for path in ("/", "/../../outside"):
        limits = agent.read_cgroup_limits(f"0::{path}\n", V2_MOUNTINFO, str(tmp_path), 16 << 30)
        assert (limits["cpu_quota"], limits["mem_limit"]) == (None, None)
    write(base / "cpu.max", "200000 100000")
    write(base / "memory.max", str(300 * MIB))
    limits = agent.read_cgroup_limits("0::/\n", V2_MOUNTINFO, str(tmp_path), 16 << 30)
    assert (limits["cpu_quota"], limits["mem_limit"]) == (2.0, 300 * MIB)


def test_cgroup_hybrid_prefers_the_v1_controller(tmp_path: Path) -> None:
    v1_tree(tmp_path)
    write(tmp_path / "sys/fs/cgroup/unified/edge/job/cpu.max", "10000 100000")  # ignored
    limits = agent.read_cgroup_limits(V1_CGROUP, V1_MOUNTINFO, str(tmp_path), 16 << 30)
    assert limits["cpu_quota"] == 1.5


def test_cgroup_nothing_mounted(tmp_path: Path) -> None:
    limits = agent.read_cgroup_limits("", "", str(tmp_path), None)
    assert (limits["cpu_quota"], limits["mem_limit"]) == (None, None)


def test_cgroup_small_parsers() -> None:
    assert agent.cpu_quota_v1("150000", "100000") == 1.5
    assert agent.cpu_quota_v1("-1", "100000") is None
    assert agent.cpu_quota_v2("max 100000") is None
    assert agent.cpu_quota_v2("50000 100000") == 0.5
    assert agent.memory_limit("max") is None
    assert agent.memory_limit("9223372036854771712") is None
    assert agent.memory_limit(str(512 * MIB), 16 << 30) == 512 * MIB
    assert agent.memory_limit(str(32 << 30), 16 << 30) is None
    assert agent.cgroup_chain("/a/b", "/m", "/") == ["/m/a/b", "/m/a", "/m"]
    assert agent.cgroup_chain("/a/b", "/m", "/a") == ["/m/b", "/m"]
    assert agent.cgroup_chain("/x", "/m", "/a") == ["/m"]
    mounts = agent.parse_cgroup_mounts(
        "1 2 0:3 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,memory\n"
    )
    assert mounts == [("/sys/fs/cgroup/with space", "/", "cgroup", frozenset({"rw", "memory"}))]
    assert agent.parse_proc_cgroup("4:cpu,cpuacct:/a\n0::/b\nbad line\n") == [
        (("cpu", "cpuacct"), "/a"),
        ((), "/b"),
    ]


def test_cgroup_of_this_machine_reads_without_error() -> None:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    limits = agent.read_cgroup_limits(read("/proc/self/cgroup"), read("/proc/self/mountinfo"))
    assert limits["cpu_quota"] is None or limits["cpu_quota"] > 0
    assert limits["mem_limit"] is None or limits["mem_limit"] > 0


# --- the agent as a whole ----------------------------------------------------------------------


def test_agent_hello_and_sample_with_fake_nvml() -> None:
    nvml = agent.NvmlCollector(fake_nvml("load"), proc_name=fixture_names("load"))
    a = agent.Agent(0.5, gpus=[nvml], detect_jetson_host=False)
    hello = a.hello()
    assert hello["v"] == 1 and hello["type"] == "hello"
    assert hello["agent"] == agent.AGENT_VERSION
    assert hello["nvidia_driver"] == "590.48.01"
    assert hello["cuda"] == "13.1"
    assert [d["id"] for d in hello["devices"]] == ["cpu", "gpu0"]
    assert hello["collectors"]["jtop"] == "unavailable: not a Jetson"
    assert set(hello["cgroup"]) == {"cpu_quota", "mem_limit"}
    sample = a.sample(7)
    assert sample["seq"] == 7
    assert [d["kind"] for d in sample["devices"]] == ["cpu", "gpu"]
    assert sample["devices"][1]["power_w"] == 629.0
    lines = [agent.encode_line(hello), agent.encode_line(sample)]
    protocol = pytest.importorskip("edgetop.remote.protocol")
    parsed_hello = protocol.parse_line(lines[0])
    assert parsed_hello.devices[1].kind == "gpu"
    parsed = protocol.parse_line(lines[1])
    gpu = parsed.devices[1]
    assert gpu.mem_used == 19818 * MIB
    assert [p.name for p in gpu.processes] == [
        "/root/tools/memhog",
        "/root/tools/memhog",
        "./gpu_burn",
    ]


def test_agent_survives_a_collector_that_raises() -> None:
    class Broken:
        name = "nvml"

        def inventory(self) -> list[dict[str, Any]]:
            return [{"id": "gpu0", "kind": "gpu", "name": "H100"}]

        def sample(self, errors: dict[str, str]) -> list[dict[str, Any]]:
            raise RuntimeError("boom")

        def close(self) -> None:
            pass

    a = agent.Agent(0.5, gpus=[Broken()], detect_jetson_host=False)
    sample = a.sample(1)
    assert sample["errors"] == {"nvml": "RuntimeError: boom"}
    assert sample["devices"][0]["id"] == "cpu" and sample["devices"][0]["mem_total"]
    assert sample["devices"][1] == {"id": "gpu0", "kind": "gpu", "name": "H100"}
    json.loads(agent.encode_line(sample))


def test_agent_with_a_jetson(tmp_path: Path, closing: list[Any]) -> None:
    jetson = agent.JetsonCollector(
        "NVIDIA Jetson Orin Nano",
        0.1,
        jtop_socket=str(tmp_path / "none"),
        tegrastats_exe=fake_tegrastats(tmp_path),
        nvpmodel_exe=fake_nvpmodel(tmp_path, "Set the power mode to MAX"),
    )
    closing.append(jetson)
    a = agent.Agent(0.1, gpus=[], jetson=jetson)
    hello = a.hello()
    assert hello["power_mode"] == "MODE_30W"
    assert hello["collectors"]["tegrastats"] == "ok"
    assert hello["devices"][-1] == {
        "id": "gpu0",
        "kind": "jetson",
        "name": "NVIDIA Jetson Orin Nano",
    }
    sample = a.sample(1)
    dev = sample["devices"][-1]
    assert dev["kind"] == "jetson" and dev["util"] == 63.0 and dev["power_mode"] == "MODE_30W"
    protocol = pytest.importorskip("edgetop.remote.protocol")
    reading = protocol.parse_line(agent.encode_line(sample)).devices[-1]
    assert reading.rails == {"VDD_IN": 12.479, "VDD_CPU_GPU_CV": 4.667, "VDD_SOC": 2.817}


def test_detect_jetson(tmp_path: Path) -> None:
    assert agent.detect_jetson(str(tmp_path)) is None
    write(tmp_path / "proc/device-tree/model", "NVIDIA Jetson AGX Orin Developer Kit\x00")
    lines = (FIXTURES / "jetson-release.txt").read_text().splitlines()
    release = next(line for line in lines if line.startswith("# R35 (release)"))
    write(tmp_path / "etc/nv_tegra_release", release)
    assert agent.detect_jetson(str(tmp_path)) == {
        "model": "NVIDIA Jetson AGX Orin Developer Kit",
        "l4t": "R35.4.1",
        "jetpack": "5.1.2",
    }


def test_cgroup_cpu_seconds_v1_and_v2(tmp_path: Path) -> None:
    (tmp_path / "cpuacct.usage").write_text("2500000000\n")
    (tmp_path / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    assert agent.cgroup_cpu_seconds((str(tmp_path / "cpuacct.usage"), 1)) == 2.5
    assert agent.cgroup_cpu_seconds((str(tmp_path / "cpu.stat"), 2)) == 1.5
    assert agent.cgroup_cpu_seconds((str(tmp_path / "missing"), 1)) is None
    assert agent.cgroup_cpu_seconds(None) is None


def test_quota_percent_is_cpu_time_over_quota_and_wall_time() -> None:
    assert agent.quota_percent((10.0, 100.0), (10.4, 101.0), 0.4) == 100.0  # all of 0.4 CPU
    assert agent.quota_percent((10.0, 100.0), (10.1, 101.0), 0.4) == 25.0
    assert agent.quota_percent((10.0, 100.0), (10.0, 100.0), 0.4) is None  # no time passed
    assert agent.quota_percent(None, (10.0, 100.0), 0.4) is None


def test_cpu_collector_reports_utilisation_against_the_quota(tmp_path: Path) -> None:
    usage = tmp_path / "cpuacct.usage"
    usage.write_text("0\n")
    cgroup = {"cpu_quota": 0.5, "cpu_usage": (str(usage), 1)}
    c = agent.CpuCollector(psutil_mod=fake_psutil(), cgroup=cgroup, sys_root=str(tmp_path))
    assert c._cg_prev is not None
    c._cg_prev = (0.0, c._cg_prev[1] - 2.0)  # two seconds ago
    usage.write_text(str(int(0.5e9)))  # half a CPU second since: 0.25 CPU of 0.5 allowed
    s = c.sample()
    assert 45.0 <= s["util"] <= 50.0  # the machine's figure (fake psutil) is not used
