# The agent runs on the hosts' own Python, down to 3.6 (JetPack 4): typing generics, not PEP
# 585/604 syntax, whatever the repo's target-version says.
# ruff: noqa: UP006, UP007, UP035, UP045
"""edgetop host agent: one JSON line per interval about this host's CPU, GPUs and Jetson SoC.

Wire protocol: docs/agent-protocol.md. The controller sends this file over SSH stdin and execs
it with a one-line bootstrap (`__name__ == "__edgetop_agent__"`); tests and the controller also
import it as `edgetop.remote.agent`, which starts nothing.

Host-side constraints: Python >= 3.6 (JetPack 4 / L4T R32 Jetsons ship 3.6.9), standard library
only at import time. pynvml, psutil and jtop are optional and imported inside try/except when a
collector starts. Everything parseable is a pure function of text (tested against real
captures); I/O lives in the collectors and in `main`. A value that cannot be read is null, never
a guess.

Python 3.6 rules for this file (tests/test_agent_process.py runs it on every interpreter it
finds): no `from __future__ import annotations`, so annotations in signatures, at module and at
class level are evaluated: use typing's Optional/List/Dict/... (never `X | Y` or `list[int]`)
and quote names not yet defined. No dataclasses, `subprocess.run(capture_output=, text=)`,
walrus, positional-only parameters, `asyncio.run` or other 3.7+ API.
"""

import argparse
import contextlib
import csv
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple, Union

AGENT_VERSION = "1.0.0"
PROTOCOL_VERSION = 1

MIB = 1024 * 1024
# memory.limit_in_bytes reads 9223372036854771712 (PAGE_COUNTER_MAX) when unset; anything
# this large is "no limit" rather than a real 1 EiB cap.
_CGROUP_UNLIMITED = 1 << 60


def agent_source() -> bytes:
    """The bytes the controller writes on the host's stdin: this very file."""
    return Path(__file__).read_bytes()


class _NotAvailable:
    """Sentinel for "this one reading failed"; becomes null on the wire."""

    _instance: Optional["_NotAvailable"] = None

    def __new__(cls) -> "_NotAvailable":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NA"

    def __bool__(self) -> bool:
        return False


NA = _NotAvailable()


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _errstr(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _read_text(path: str, limit: int = 1 << 20) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except (OSError, ValueError):
        return None


def _read_bytes(path: str, limit: int = 1 << 16) -> Optional[bytes]:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except (OSError, ValueError):
        return None


def _under(root: str, path: str) -> str:
    """`path` (absolute on the host) inside a fake root used by tests; identity for "/"."""
    if root in ("", "/"):
        return path
    return os.path.join(root, path.lstrip("/"))


def _int(text: Any) -> Optional[int]:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> Optional[float]:
    """A finite float or None: NaN/inf would make the line invalid JSON."""
    if value is None or value is NA or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _clean(obj: Any) -> Any:
    """Make a structure JSON-safe: non-finite floats and NA become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is NA:
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _run(argv: List[str], timeout: float) -> Tuple[Optional[int], str]:
    """Run a short command; (returncode or None when it could not run/finish, output)."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    except OSError as exc:
        return None, _errstr(exc)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _which(name: str, extra_dirs: Iterable[str] = ()) -> Optional[str]:
    """shutil.which, plus sbin/bin dirs a non-login SSH PATH often lacks."""
    found = shutil.which(name)
    if found:
        return found
    for d in (*extra_dirs, "/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin"):
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


# --------------------------------------------------------------------------------------------
# Host facts: pure parsers
# --------------------------------------------------------------------------------------------


def parse_os_release(text: str) -> Dict[str, str]:
    """/etc/os-release KEY=value lines (values optionally quoted)."""
    out: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


_TEGRA_RELEASE_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)")


def parse_nv_tegra_release(text: str) -> Optional[str]:
    """'# R35 (release), REVISION: 4.1, ...' -> 'R35.4.1'."""
    m = _TEGRA_RELEASE_RE.search(text)
    if not m:
        return None
    return f"R{int(m.group(1))}.{int(m.group(2))}.{int(m.group(3))}"


# L4T release -> JetPack, from NVIDIA's JetPack archive. Only releases we are sure of; an
# unknown one gives null rather than a guess. R32.7.N is JetPack 4.6.N (handled below).
_JETPACK_BY_L4T = {
    "R32.1.0": "4.2",
    "R32.2.0": "4.2.1",
    "R32.2.1": "4.2.2",
    "R32.3.1": "4.3",
    "R32.4.3": "4.4",
    "R32.4.4": "4.4.1",
    "R32.5.0": "4.5",
    "R32.5.1": "4.5.1",
    "R32.6.1": "4.6",
    "R35.1.0": "5.0.2",
    "R35.2.1": "5.1",
    "R35.3.1": "5.1.1",
    "R35.4.1": "5.1.2",
    "R35.5.0": "5.1.3",
    "R35.6.0": "5.1.4",
    "R35.6.1": "5.1.5",
    "R36.3.0": "6.0",
    "R36.4.0": "6.1",
    "R36.4.3": "6.2",
    "R36.4.4": "6.2.1",
    "R38.2.0": "7.0",
    "R38.4.0": "7.1",
    "R39.2.0": "7.2",
}


def jetpack_for_l4t(l4t: Optional[str]) -> Optional[str]:
    if not l4t:
        return None
    if l4t in _JETPACK_BY_L4T:
        return _JETPACK_BY_L4T[l4t]
    m = re.fullmatch(r"R32\.7\.(\d+)", l4t)
    if m and 1 <= int(m.group(1)) <= 6:
        return f"4.6.{m.group(1)}"
    return None


def parse_nvpmodel(text: str) -> Optional[str]:
    """`nvpmodel -q` output -> mode name. Other lines (mode id, 'NV Fan Mode', 'NVPM ERROR'
    when run without root) are ignored."""
    for line in text.splitlines():
        m = re.match(r"\s*NV Power Mode\s*:\s*(.+?)\s*$", line)
        if m:
            return m.group(1)
    return None


def parse_cpuinfo_model(text: str) -> Optional[str]:
    """CPU model from /proc/cpuinfo: x86 'model name', ARM 'model name'/'Model'/'Hardware'."""
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and value.strip() and key not in fields:
            fields[key] = value.strip()
    for key in ("model name", "Model", "Hardware", "Processor", "cpu model"):
        if key in fields:
            return fields[key]
    return None


def parse_device_tree_model(raw: Union[bytes, str, None]) -> Optional[str]:
    """/proc/device-tree/model is NUL-terminated."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.replace("\x00", "").strip()
    return text or None


def parse_meminfo(text: str) -> Dict[str, int]:
    """/proc/meminfo -> {key: bytes} ('kB' values scaled; unitless counts kept as is)."""
    out: Dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            continue
        value = _int(parts[0])
        if value is None:
            continue
        if len(parts) > 1 and parts[1].lower() == "kb":
            value *= 1024
        out[key.strip()] = value
    return out


def meminfo_used_total(info: Dict[str, int]) -> Tuple[Optional[int], Optional[int]]:
    """Used = total - available (what `free` and psutil call available is what apps can get)."""
    total = info.get("MemTotal")
    if total is None:
        return None, None
    avail = info.get("MemAvailable")
    if avail is None:  # kernels < 3.14
        parts = [info.get(k) for k in ("MemFree", "Buffers", "Cached")]
        if any(p is None for p in parts):
            return None, total
        avail = sum(p for p in parts if p is not None)
    return max(total - avail, 0), total


def parse_proc_stat(text: str) -> Dict[str, Tuple[int, int]]:
    """/proc/stat cpu lines -> {'cpu': (total, idle), 'cpu0': ...} in jiffies.

    total is user..steal (guest time is already inside user/nice); idle includes iowait."""
    out: Dict[str, Tuple[int, int]] = {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        parts = line.split()
        nums = [_int(p) for p in parts[1:9]]
        if len(nums) < 4 or any(n is None for n in nums):
            continue
        vals = [n for n in nums if n is not None]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        out[parts[0]] = (sum(vals), idle)
    return out


def cpu_percent(prev: Optional[Tuple[int, int]], cur: Optional[Tuple[int, int]]) -> Optional[float]:
    """Busy percent between two (total, idle) readings; None when no time has passed."""
    if prev is None or cur is None:
        return None
    dt = cur[0] - prev[0]
    didle = cur[1] - prev[1]
    if dt <= 0:
        return None
    return round(min(max(100.0 * (dt - didle) / dt, 0.0), 100.0), 1)


def parse_loadavg(text: str) -> Optional[List[float]]:
    parts = text.split()
    vals = [_float(p) for p in parts[:3]]
    if len(vals) < 3 or any(v is None for v in vals):
        return None
    return [v for v in vals if v is not None]


def pick_cpu_temp(candidates: Iterable[Tuple[str, str]]) -> Optional[str]:
    """Choose the CPU temperature file among (sensor name, path) pairs from thermal zones
    (`type`) and hwmon (`name`). Package sensors first; None when nothing looks like a CPU."""
    preferred = (
        "x86_pkg_temp",
        "coretemp",
        "k10temp",
        "zenpower",
        "cpu-thermal",
        "cpu_thermal",
        "cpu-therm",
        "cpu",
        "soc_thermal",
    )
    by_name: Dict[str, str] = {}
    for name, path in candidates:
        by_name.setdefault(name.strip().lower(), path)
    for name in preferred:
        if name in by_name:
            return by_name[name]
    return None


# --------------------------------------------------------------------------------------------
# cgroups (v1 and v2): pure given file contents and a root directory
# --------------------------------------------------------------------------------------------


def parse_proc_cgroup(text: str) -> List[Tuple[Tuple[str, ...], str]]:
    """/proc/self/cgroup -> [(controllers, path)]. v2's '0::/path' has controllers ()."""
    out: List[Tuple[Tuple[str, ...], str]] = []
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        controllers = tuple(c for c in parts[1].split(",") if c)
        out.append((controllers, parts[2]))
    return out


def _unescape_mount(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_cgroup_mounts(text: str) -> List[Tuple[str, str, str, FrozenSet[str]]]:
    """/proc/self/mountinfo -> [(mount_point, root, fstype, super_options)] for cgroup mounts."""
    out: List[Tuple[str, str, str, FrozenSet[str]]] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        tail = right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] not in ("cgroup", "cgroup2"):
            continue
        out.append(
            (
                _unescape_mount(fields[4]),
                _unescape_mount(fields[3]),
                tail[0],
                frozenset(tail[2].split(",")),
            )
        )
    return out


def cgroup_chain(cg_path: str, mount_point: str, mount_root: str = "/") -> List[str]:
    """Directories from a cgroup up to its hierarchy's mount point, deepest first.

    `mount_root` is the part of the hierarchy the mount shows (a container without a cgroup
    namespace sees '/docker/<id>' both here and in /proc/self/cgroup). A path outside the
    mounted subtree, or one with '..' (cgroup namespaces), leaves only the mount point."""
    rel = cg_path
    base = mount_root.rstrip("/")
    if base:
        rel = cg_path[len(base) :] if cg_path == base or cg_path.startswith(base + "/") else "/"
    parts = [p for p in rel.split("/") if p]
    if ".." in parts:
        parts = []
    return [os.path.join(mount_point, *parts[:i]) for i in range(len(parts), -1, -1)]


def cpu_quota_v1(quota_text: Optional[str], period_text: Optional[str]) -> Optional[float]:
    quota, period = _int(quota_text), _int(period_text)
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None  # -1 = unlimited
    return quota / period


def cpu_quota_v2(cpu_max_text: Optional[str]) -> Optional[float]:
    """cpu.max: 'max 100000' (unlimited) or '150000 100000' -> 1.5 cores."""
    if cpu_max_text is None:
        return None
    parts = cpu_max_text.split()
    if not parts or parts[0] == "max":
        return None
    quota = _int(parts[0])
    period = _int(parts[1]) if len(parts) > 1 else 100000
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota / period


def memory_limit(text: Optional[str], phys_mem: Optional[int] = None) -> Optional[int]:
    """A v1 limit_in_bytes or v2 memory.max value; None when unlimited ('max', >= 2**60, or not
    below physical RAM, since such a limit can never bite)."""
    if text is None or text.strip() == "max":
        return None
    value = _int(text)
    if value is None or value <= 0 or value >= _CGROUP_UNLIMITED:
        return None
    if phys_mem and value >= phys_mem:
        return None
    return value


def _v1_mount(
    mounts: List[Tuple[str, str, str, FrozenSet[str]]], controller: str
) -> Optional[Tuple[str, str]]:
    for mount_point, root, fstype, opts in mounts:
        if fstype == "cgroup" and controller in opts:
            return mount_point, root
    return None


def _v2_mount(mounts: List[Tuple[str, str, str, FrozenSet[str]]]) -> Optional[Tuple[str, str]]:
    for mount_point, root, fstype, _opts in mounts:
        if fstype == "cgroup2":
            return mount_point, root
    return None


def _controller_chain(
    controller: str,
    entries: List[Tuple[Tuple[str, ...], str]],
    mounts: List[Tuple[str, str, str, FrozenSet[str]]],
    root: str,
) -> Optional[Tuple[int, List[str]]]:
    """(cgroup version, ancestry dirs) for a controller, preferring a v1 hierarchy that has it
    (hybrid hosts mount both; the controller lives in exactly one)."""
    for controllers, path in entries:
        if controller not in controllers:
            continue
        found = _v1_mount(mounts, controller)
        if found:
            return 1, cgroup_chain(path, _under(root, found[0]), found[1])
        # No mountinfo entry: the conventional places, assuming the mount shows the full tree.
        for name in (",".join(controllers), controller):
            candidate = _under(root, "/sys/fs/cgroup/" + name)
            if os.path.isdir(candidate):
                return 1, cgroup_chain(path, candidate, "/")
        return None
    for controllers, path in entries:
        if controllers:
            continue
        found = _v2_mount(mounts)
        if found:
            return 2, cgroup_chain(path, _under(root, found[0]), found[1])
        candidate = _under(root, "/sys/fs/cgroup")
        if os.path.isdir(candidate):
            return 2, cgroup_chain(path, candidate, "/")
    return None


def read_cgroup_limits(
    proc_cgroup: str, mountinfo: str, root: str = "/", phys_mem: Optional[int] = None
) -> Dict[str, Any]:
    """Effective CPU quota (cores) and memory limit (bytes) of this process's cgroup: the
    tightest value along its ancestry, since any ancestor's limit applies to it too.

    Returns {'cpu_quota', 'mem_limit', 'mem_dir', 'version'}; mem_dir is the cgroup whose
    limit binds (its usage is what counts against the limit)."""
    entries = parse_proc_cgroup(proc_cgroup)
    mounts = parse_cgroup_mounts(mountinfo)
    out: Dict[str, Any] = {"cpu_quota": None, "mem_limit": None, "mem_dir": None, "version": None}

    cpu = _controller_chain("cpu", entries, mounts, root)
    if cpu:
        version, chain = cpu
        out["version"] = version
        quotas = []
        for d in chain:
            if version == 1:
                q = cpu_quota_v1(
                    _read_text(os.path.join(d, "cpu.cfs_quota_us")),
                    _read_text(os.path.join(d, "cpu.cfs_period_us")),
                )
            else:
                q = cpu_quota_v2(_read_text(os.path.join(d, "cpu.max")))
            if q is not None:
                quotas.append(q)
        if quotas:
            out["cpu_quota"] = round(min(quotas), 3)
        # Where the cgroup's CPU time is counted: cpu.stat on v2, cpuacct.usage on v1 (its
        # own hierarchy, or co-mounted with cpu). The process's own cgroup: what runs there
        # is what the quota holds back.
        if version == 2:
            out["cpu_usage"] = (os.path.join(chain[0], "cpu.stat"), 2)
        else:
            acct = _controller_chain("cpuacct", entries, mounts, root)
            if acct:
                out["cpu_usage"] = (os.path.join(acct[1][0], "cpuacct.usage"), 1)

    mem = _controller_chain("memory", entries, mounts, root)
    if mem:
        version, chain = mem
        out["version"] = out["version"] or version
        name = "memory.limit_in_bytes" if version == 1 else "memory.max"
        best: Optional[Tuple[int, str]] = None
        for d in chain:
            lim = memory_limit(_read_text(os.path.join(d, name)), phys_mem)
            if lim is not None and (best is None or lim < best[0]):
                best = (lim, d)
        if best:
            out["mem_limit"], out["mem_dir"] = best
            out["mem_version"] = version
    return out


def cgroup_cpu_seconds(usage: Optional[Tuple[str, int]]) -> Optional[float]:
    """CPU time a cgroup has used, in seconds (v1 cpuacct.usage in ns; v2 cpu.stat
    usage_usec), or None where it is not readable."""
    if not usage:
        return None
    path, version = usage
    text = _read_text(path, 4096)
    if text is None:
        return None
    if version == 1:
        ns = _int(text.strip())
        return ns / 1e9 if ns is not None else None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            us = _int(value.strip())
            return us / 1e6 if us is not None else None
    return None


def quota_percent(
    prev: Optional[Tuple[float, float]], cur: Optional[Tuple[float, float]], quota: float
) -> Optional[float]:
    """Utilisation against a CPU quota from two (cpu seconds, wall seconds) readings."""
    if prev is None or cur is None or quota <= 0:
        return None
    wall = cur[1] - prev[1]
    if wall <= 0:
        return None
    return round(max(0.0, min(100.0, 100.0 * (cur[0] - prev[0]) / (wall * quota))), 1)


def cgroup_memory_used(mem_dir: str, version: int) -> Optional[int]:
    """Working set of a cgroup: usage minus inactive page cache.

    Raw usage (memory.usage_in_bytes / memory.current) includes reclaimable file cache and
    sits near the limit on any container that reads files; docker stats and the kubelet
    subtract inactive_file, and so do we, so the number tracks what can actually OOM."""
    usage_file = "memory.usage_in_bytes" if version == 1 else "memory.current"
    usage = _int(_read_text(os.path.join(mem_dir, usage_file)))
    if usage is None:
        return None
    stat = _read_text(os.path.join(mem_dir, "memory.stat")) or ""
    inactive = None
    for line in stat.splitlines():
        key, _, value = line.partition(" ")
        if key == "total_inactive_file" or (key == "inactive_file" and inactive is None):
            inactive = _int(value)
    return max(usage - (inactive or 0), 0)


# --------------------------------------------------------------------------------------------
# NVIDIA: throttle reasons, nvidia-smi CSV
# --------------------------------------------------------------------------------------------

# NVML clocks event ("throttle") reason bits, nvml.h nvmlClocksEventReason* / ThrottleReason*.
THROTTLE_REASONS = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)


def decode_throttle_reasons(mask: int) -> List[str]:
    """Bitmask (a 64-bit NVML value) -> reason names; unknown bits kept as hex so nothing is
    silently dropped."""
    mask &= (1 << 64) - 1  # also turns a garbage negative value into a finite bit set
    names = []
    known = 0
    for bit, name in THROTTLE_REASONS:
        known |= bit
        if mask & bit:
            names.append(name)
    rest = mask & ~known
    names.extend(f"0x{1 << n:x}" for n in range(64) if rest >> n & 1)
    return names


# How each nvidia-smi field is converted; unlisted fields are kept as strings.
_SMI_KINDS = {
    "index": "int",
    "count": "int",
    "pid": "int",
    "utilization.gpu": "float",
    "utilization.memory": "float",
    "memory.used": "mib",
    "memory.total": "mib",
    "memory.free": "mib",
    "memory.reserved": "mib",
    "used_memory": "mib",
    "used_gpu_memory": "mib",
    "temperature.gpu": "float",
    "temperature.memory": "float",
    "power.draw": "float",
    "power.draw.average": "float",
    "power.draw.instant": "float",
    "power.limit": "float",
    "enforced.power.limit": "float",
    "clocks.sm": "int",
    "clocks.current.sm": "int",
    "clocks.gr": "int",
    "clocks.current.graphics": "int",
    "clocks.mem": "int",
    "clocks.current.memory": "int",
    "clocks.max.sm": "int",
    "clocks_event_reasons.active": "reasons",
    "clocks_throttle_reasons.active": "reasons",
}

_NUMBER_RE = re.compile(r"[-+]?\d+(?:\.\d+)?")
# nvidia-smi's own failure messages: with a one-field query they would pass as a value.
# (Bracketed cells such as '[Insufficient Permissions]' are values -> null, not errors.)
_SMI_ERROR_RE = re.compile(
    r"Failed to initialize NVML|No devices were found|NVIDIA-SMI has failed|"
    r"NVML library version|is not a valid field|Unable to determine the device handle|"
    r"couldn't communicate with the NVIDIA driver",
    re.IGNORECASE,
)


def smi_field_name(field: str) -> str:
    """'memory.used [MiB]' (a csv header) -> 'memory.used'."""
    return re.sub(r"\s*\[[^\]]*\]\s*$", "", field.strip())


def smi_value(raw: str, kind: str) -> Any:
    """One nvidia-smi cell -> value. '[N/A]', '[Not Supported]', '[Requested functionality has
    been deprecated]', 'N/A' and empty are null; units ('81559 MiB', '69.85 W') are allowed."""
    s = raw.strip()
    if not s or s.upper() == "N/A" or (s.startswith("[") and s.endswith("]")):
        return None
    if kind == "str":
        return s
    if kind == "reasons":
        try:
            mask = int(s, 16) if s.lower().startswith("0x") else int(s)
        except ValueError:
            return None
        return decode_throttle_reasons(mask) if 0 <= mask < 1 << 64 else None
    m = _NUMBER_RE.match(s)
    if not m:
        return None
    number = float(m.group(0))
    if not math.isfinite(number):
        return None
    if kind == "mib":
        return round(number * MIB)
    if kind == "int":
        return int(number)
    return number


def parse_nvidia_smi_csv(text: str, fields: Iterable[str]) -> List[Dict[str, Any]]:
    """`nvidia-smi --query-*=<fields> --format=csv[,noheader][,nounits]` -> one dict per row,
    keyed by field name (units stripped). nvidia-smi's error messages ('Failed to initialize
    NVML...', 'No devices were found'), rows with the wrong number of cells and a header row
    are skipped, so garbage gives []."""
    names = [smi_field_name(f) for f in fields]
    rows: List[Dict[str, Any]] = []
    if not names:
        return rows
    lines = [line for line in text.splitlines() if not _SMI_ERROR_RE.search(line)]
    try:
        reader = list(csv.reader(lines, skipinitialspace=True))
    except csv.Error:
        return rows
    for cells in reader:
        if len(cells) != len(names):
            continue
        if [smi_field_name(c) for c in cells] == names:
            continue  # header
        rows.append(
            {
                names[i]: smi_value(cell, _SMI_KINDS.get(names[i], "str"))
                for i, cell in enumerate(cells)
            }
        )
    return rows


def parse_nvidia_smi_banner(text: str) -> Tuple[Optional[str], Optional[str]]:
    """(driver version, CUDA version) from the header of plain `nvidia-smi`."""
    driver = re.search(r"Driver Version:\s*([0-9][\w.]*)", text)
    cuda = re.search(r"CUDA Version:\s*([0-9][\w.]*)", text)
    return (driver.group(1) if driver else None, cuda.group(1) if cuda else None)


def cuda_version_string(version: Any) -> Optional[str]:
    """nvmlSystemGetCudaDriverVersion's 12040 -> '12.4'."""
    if not isinstance(version, int) or isinstance(version, bool) or version <= 0:
        return None
    return f"{version // 1000}.{(version % 1000) // 10}"


# --------------------------------------------------------------------------------------------
# tegrastats
# --------------------------------------------------------------------------------------------

_TS_DATE_RE = re.compile(r"^\s*\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}\s+")
# Digit runs are bounded: int() of a 5000-digit garbage run raises on Python >= 3.11.
_TS_RAM_RE = re.compile(r"\bRAM (\d{1,12})/(\d{1,12})([kKMG])B")
_TS_CPU_RE = re.compile(r"\b[Cc][Pp][Uu] \[([^\]]*)\]")
_TS_EMC_RE = re.compile(r"\bEMC_FREQ (\d{1,6}(?:\.\d{1,6})?)%")
_TS_GR3D_RE = re.compile(r"\b(GR3D\d?)_FREQ (?:(\d{1,6}(?:\.\d{1,6})?)%)?")
_TS_TEMP_RE = re.compile(r"(?<![\w@])([A-Za-z]\w*)@(-?\d{1,6}(?:\.\d{1,6})?)C\b")
_TS_RAIL_RE = re.compile(
    r"\b([A-Z][A-Z0-9_]*) (\d{1,9}(?:\.\d{1,6})?)(mW)?/(\d{1,9}(?:\.\d{1,6})?)(mW)?(?![\w/.])"
)
_TS_UNIT = {"k": 1024, "K": 1024, "M": MIB, "G": 1024 * MIB}
# Not power rails although they look like 'NAME a/b'.
_TS_NOT_RAILS = frozenset({"RAM", "SWAP", "IRAM", "NC"})
# Rails that measure the whole module's input. Where none is present (AGX Xavier's SYS5V,
# AGX Orin/Thor's VIN_SYS_5V0 are one rail among several, not the module input) the total is
# the sum of all rails, as jetson-stats does.
_TS_TOTAL_RAILS = ("VIN", "VDD_IN", "POM_5V_IN")
# PMIC@100C on TX/Nano is a constant placeholder, not a sensor (jetson-stats hides it too).
_TS_FAKE_TEMPS = frozenset({"pmic"})


# The jetson device fields both Jetson backends fill (null until read).
JETSON_FIELDS = (
    "util", "emc_util", "per_core", "mem_used", "mem_total", "temp_c", "temps", "rails", "power_w",
)  # fmt: skip


def parse_tegrastats(line: str) -> Dict[str, Any]:
    """One tegrastats line -> the jetson device fields of the protocol (null when absent).

    Handles L4T 28 through 38 forms: optional leading timestamp, root and non-root ('cpu [')
    output, 'off' cores, GR3D_FREQ with '%@MHz', '%', '%@[gpc,..]' or '@[..]' (no load),
    rails in bare milliwatts or 'mW', with or without a VDD_ prefix."""
    out: Dict[str, Any] = dict.fromkeys(JETSON_FIELDS)
    if not isinstance(line, str):
        return out
    text = _TS_DATE_RE.sub("", line, count=1)

    m = _TS_RAM_RE.search(text)
    if m:
        scale = _TS_UNIT[m.group(3)]  # tegrastats' "MB" is MiB
        out["mem_used"] = int(m.group(1)) * scale
        out["mem_total"] = int(m.group(2)) * scale

    m = _TS_CPU_RE.search(text)
    if m:
        cores: List[Optional[float]] = []
        for item in m.group(1).split(","):
            pct = re.match(r"\s*(\d{1,6}(?:\.\d{1,6})?)%", item)
            cores.append(float(pct.group(1)) if pct else None)  # 'off' keeps its position
        out["per_core"] = cores

    m = _TS_EMC_RE.search(text)
    if m:
        out["emc_util"] = float(m.group(1))

    # GR3D_FREQ is GPC0 (or the whole GPU); GR3D2_FREQ, on JetPack 5 AGX Orin, is the second
    # GPC. Each GPC is half the SMs, so the GPU's load is the *average* of the GPC loads
    # (max would call a half-idle GPU fully busy). '@[...]' without a percent has no load.
    loads = [float(g.group(2)) for g in _TS_GR3D_RE.finditer(text) if g.group(2) is not None]
    if loads:
        out["util"] = round(sum(loads) / len(loads), 2)

    temps: Dict[str, float] = {}
    for name, value in _TS_TEMP_RE.findall(text):
        key = name.lower()
        temp = float(value)
        # -256C is how tegrastats shows an absent/powered-off sensor
        if temp <= -256 or key in _TS_FAKE_TEMPS or not math.isfinite(temp):
            continue
        temps.setdefault(key, temp)
    if temps:
        out["temps"] = temps
        for zone in ("gpu", "tj", "thermal"):
            if zone in temps:
                out["temp_c"] = temps[zone]
                break

    rails: Dict[str, float] = {}
    for name, cur, _unit, _avg, _unit2 in _TS_RAIL_RE.findall(text):
        if name in _TS_NOT_RAILS or name.endswith("_FREQ"):
            continue
        rails.setdefault(name, round(float(cur) / 1000.0, 3))  # milliwatts either way
    if rails:
        out["rails"] = rails
        total = next((rails[n] for n in _TS_TOTAL_RAILS if n in rails), None)
        out["power_w"] = total if total is not None else round(sum(rails.values()), 3)
    return out


# --------------------------------------------------------------------------------------------
# Child processes (tegrastats, nvidia-smi loop) and shutdown
# --------------------------------------------------------------------------------------------

_CHILDREN: List[subprocess.Popen] = []
_CHILDREN_LOCK = threading.Lock()


def _kill_children() -> None:
    with _CHILDREN_LOCK:
        procs = list(_CHILDREN)
    for proc in procs:
        try:
            if proc.poll() is None:
                proc.terminate()
        except OSError:
            pass


def _shutdown(code: int = 0) -> None:
    """Exit now, from any thread: children first (os._exit skips all cleanup)."""
    _kill_children()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    os._exit(code)


class LineChild:
    """A long-lived child whose stdout lines go to a callback from a reader thread.

    The child also dies on its own if we are SIGKILLed: its next write hits a closed pipe."""

    def __init__(self, argv: List[str], on_line: Callable[[str], None]) -> None:
        self.argv = argv
        self.started = time.monotonic()
        self.last_line = ""
        self.returncode: Optional[int] = None
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            errors="replace",
            bufsize=1,
        )
        with _CHILDREN_LOCK:
            _CHILDREN.append(self.proc)
        self._on_line = on_line
        threading.Thread(target=self._read, name="edgetop-child", daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        if stream is not None:
            for line in stream:
                line = line.rstrip("\r\n")
                if line.strip():
                    self.last_line = line
                    with contextlib.suppress(Exception):  # a parser bug must not kill the reader
                        self._on_line(line)
        self.returncode = self.proc.wait()
        with _CHILDREN_LOCK:
            if self.proc in _CHILDREN:
                _CHILDREN.remove(self.proc)

    @property
    def alive(self) -> bool:
        return self.returncode is None and self.proc.poll() is None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.terminate()


# --------------------------------------------------------------------------------------------
# CPU collector (psutil, else /proc)
# --------------------------------------------------------------------------------------------


def _proc_comm(pid: int) -> Optional[str]:
    text = _read_text(f"/proc/{int(pid)}/comm", 256)
    return (text.strip() or None) if text is not None else None


class CpuCollector:
    """Host CPU and memory. When a cgroup memory limit applies, mem_total is min(physical,
    limit) and mem_used the cgroup's working set: inside a container that is what the
    operator cares about (the host's RAM is not ours to use)."""

    def __init__(
        self,
        psutil_mod: Any = None,
        use_psutil: bool = True,
        cgroup: Optional[Dict[str, Any]] = None,
        proc_root: str = "/proc",
        sys_root: str = "/sys",
    ) -> None:
        self.proc_root = proc_root
        self.cgroup = cgroup or {}
        self.psutil: Any = None
        self.status = {"psutil": "unavailable: not importable", "procfs": "ok"}
        if use_psutil:
            if psutil_mod is None:
                try:
                    import psutil as psutil_mod
                except Exception:
                    psutil_mod = None
            if psutil_mod is not None:
                try:
                    psutil_mod.cpu_percent(percpu=True)  # prime: later calls are deltas
                    psutil_mod.cpu_percent()
                    self.psutil = psutil_mod
                    self.status = {"psutil": "ok", "procfs": "skipped: psutil ok"}
                except Exception as exc:
                    self.status["psutil"] = f"unavailable: {_errstr(exc)}"
        else:
            self.status["psutil"] = "skipped"
        self.name = "psutil" if self.psutil is not None else "procfs"
        self._prev = parse_proc_stat(_read_text(os.path.join(proc_root, "stat")) or "")
        # A quota below the machine's cores: utilisation is the cgroup's CPU time against the
        # quota (a host limited to 0.4 CPU and using it all is 100% busy, whatever the
        # machine around it does); per_core stays the machine's.
        quota = self.cgroup.get("cpu_quota")
        cores = os.cpu_count() or 0
        self._quota: Optional[float] = quota if quota and quota < cores else None
        self._cg_prev = self._cgroup_reading() if self._quota else None
        self._temp_path = self._find_temp(sys_root)

    @staticmethod
    def _find_temp(sys_root: str) -> Optional[str]:
        candidates: List[Tuple[str, str]] = []
        try:
            thermal = os.path.join(sys_root, "class", "thermal")
            for zone in sorted(os.listdir(thermal)):
                if zone.startswith("thermal_zone"):
                    kind = _read_text(os.path.join(thermal, zone, "type"), 128)
                    if kind:
                        candidates.append((kind, os.path.join(thermal, zone, "temp")))
        except OSError:
            pass
        try:
            hwmon = os.path.join(sys_root, "class", "hwmon")
            for mon in sorted(os.listdir(hwmon)):
                name = _read_text(os.path.join(hwmon, mon, "name"), 128)
                if name:
                    candidates.append((name, os.path.join(hwmon, mon, "temp1_input")))
        except OSError:
            pass
        return pick_cpu_temp(candidates)

    def sample(self) -> Dict[str, Any]:
        out: Dict[str, Any] = (
            self._sample_psutil() if self.psutil is not None else self._sample_procfs()
        )
        try:
            out["load"] = [round(v, 2) for v in os.getloadavg()]
        except (OSError, AttributeError):
            out["load"] = parse_loadavg(
                _read_text(os.path.join(self.proc_root, "loadavg"), 256) or ""
            )
        out["temp_c"] = None
        if self._temp_path:
            raw = _int(_read_text(self._temp_path, 64))
            if raw is not None and raw > -256000:
                out["temp_c"] = round(raw / 1000.0, 1)
        out["power_w"] = None  # RAPL needs root since CVE-2020-8694; not worth a guess
        if self._quota:
            cur = self._cgroup_reading()
            util = quota_percent(self._cg_prev, cur, self._quota)
            self._cg_prev = cur or self._cg_prev
            if util is not None:
                out["util"] = util
        limit = self.cgroup.get("mem_limit")
        if limit:
            total = out.get("mem_total")
            out["mem_total"] = min(total, limit) if total else limit
            used = None
            if self.cgroup.get("mem_dir"):
                used = cgroup_memory_used(self.cgroup["mem_dir"], self.cgroup.get("mem_version", 1))
            out["mem_used"] = used
        return out

    def _cgroup_reading(self) -> Optional[Tuple[float, float]]:
        used = cgroup_cpu_seconds(self.cgroup.get("cpu_usage"))
        return (used, time.monotonic()) if used is not None else None

    def _sample_psutil(self) -> Dict[str, Any]:
        ps = self.psutil
        per_core = [round(float(v), 1) for v in ps.cpu_percent(percpu=True)]
        util = round(float(ps.cpu_percent()), 1)
        vm = ps.virtual_memory()
        return {
            "util": util,
            "per_core": per_core,
            "mem_used": max(int(vm.total) - int(vm.available), 0),
            "mem_total": int(vm.total),
            "procs": len(ps.pids()),
        }

    def _sample_procfs(self) -> Dict[str, Any]:
        cur = parse_proc_stat(_read_text(os.path.join(self.proc_root, "stat")) or "")
        prev, self._prev = self._prev, cur
        cores = sorted((k for k in cur if k != "cpu"), key=lambda k: _int(k[3:]) or 0)
        used, total = meminfo_used_total(
            parse_meminfo(_read_text(os.path.join(self.proc_root, "meminfo")) or "")
        )
        try:
            procs: Optional[int] = sum(1 for n in os.listdir(self.proc_root) if n.isdigit())
        except OSError:
            procs = None
        return {
            "util": cpu_percent(prev.get("cpu"), cur.get("cpu")),
            "per_core": [cpu_percent(prev.get(k), cur.get(k)) for k in cores],
            "mem_used": used,
            "mem_total": total,
            "procs": procs,
        }


# --------------------------------------------------------------------------------------------
# NVML collector
# --------------------------------------------------------------------------------------------

_NV_LAST_ERROR = [""]


def _nv(fn: Optional[Callable[..., Any]], *args: Any) -> Any:
    """The one door to pynvml. Any NVMLError (NotSupported, NoPermission, GpuIsLost, ...) and
    any function an older binding lacks (None here, or AttributeError/TypeError inside)
    becomes NA, so one unreadable field never loses the rest of the sample."""
    if fn is None:
        _NV_LAST_ERROR[0] = "function not in this pynvml"
        return NA
    try:
        return fn(*args)
    except Exception as exc:  # pynvml.NVMLError and binding mismatches alike
        _NV_LAST_ERROR[0] = _errstr(exc)
        return NA


def _nv_attr(obj: Any, name: str) -> Any:
    if obj is NA or obj is None:
        return None
    return getattr(obj, name, None)


def _nv_str(value: Any) -> Optional[str]:
    if value is NA or value is None:
        return None
    if isinstance(value, bytes):  # pynvml < 11 returns bytes
        return value.decode("utf-8", "replace")
    return str(value)


def _nv_num(value: Any, scale: float = 1.0, digits: int = 3) -> Optional[float]:
    v = _float(value)
    return None if v is None else round(v * scale, digits)


def _nv_int(value: Any) -> Optional[int]:
    if value is NA or value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def mig_profile_name(device_name: Optional[str]) -> Optional[str]:
    """'NVIDIA H100 80GB HBM3 MIG 1g.10gb' -> '1g.10gb'."""
    if not device_name:
        return None
    m = re.search(r"\bMIG\s+(\S+)\s*$", device_name)
    return m.group(1) if m else device_name


# Metric fields of a "gpu" device; null until read.
_GPU_FIELDS = (
    "util",
    "mem_used",
    "mem_total",
    "temp_c",
    "power_w",
    "power_limit_w",
    "sm_clock_mhz",
    "throttle",
    "processes",
    "mig",
    "mig_enabled",
)


class NvmlCollector:
    """Discrete NVIDIA GPUs through pynvml (nvidia-ml-py)."""

    name = "nvml"

    def __init__(
        self, nvml: Any = None, proc_name: Callable[[int], Optional[str]] = _proc_comm
    ) -> None:
        self.status = "unavailable"
        self.proc_name = proc_name
        self.handles: List[Any] = []
        self.static: List[Dict[str, Any]] = []
        self.driver: Optional[str] = None
        self.cuda: Optional[str] = None
        if nvml is None:
            try:
                import pynvml as nvml
            except Exception:
                self.status = "unavailable: pynvml not importable"
                return
        self.nv = nvml
        if _nv(self._fn("nvmlInit")) is NA:
            self.status = f"unavailable: nvmlInit failed: {_NV_LAST_ERROR[0]}"
            return
        count = _nv_int(_nv(self._fn("nvmlDeviceGetCount")))
        if not count:
            self.status = (
                "unavailable: no GPUs" if count == 0 else f"unavailable: {_NV_LAST_ERROR[0]}"
            )
            return
        for i in range(count):
            h = _nv(self._fn("nvmlDeviceGetHandleByIndex"), i)
            self.handles.append(h)
            ok = h is not NA and h is not None
            mem = _nv(self._fn("nvmlDeviceGetMemoryInfo"), h) if ok else NA
            self.static.append(
                {
                    "id": f"gpu{i}",
                    "kind": "gpu",
                    "name": _nv_str(_nv(self._fn("nvmlDeviceGetName"), h)) if ok else None,
                    "uuid": _nv_str(_nv(self._fn("nvmlDeviceGetUUID"), h)) if ok else None,
                    "mem_total": _nv_int(_nv_attr(mem, "total")),
                }
            )
        self.driver = _nv_str(_nv(self._fn("nvmlSystemGetDriverVersion")))
        self.cuda = cuda_version_string(_nv(self._fn("nvmlSystemGetCudaDriverVersion")))
        self.status = "ok"

    def _fn(self, name: str) -> Optional[Callable[..., Any]]:
        return getattr(self.nv, name, None)

    def close(self) -> None:
        if self.status == "ok":
            _nv(self._fn("nvmlShutdown"))

    def _const(self, name: str, default: int) -> int:
        value = getattr(self.nv, name, default)
        return value if isinstance(value, int) else default

    def inventory(self) -> List[Dict[str, Any]]:
        return [dict(s) for s in self.static]

    def sample(self, errors: Dict[str, str]) -> List[Dict[str, Any]]:
        out = []
        problems = []
        for i, h in enumerate(self.handles):
            dev = self._sample_gpu(i, h)
            if all(dev[k] is None for k in ("util", "mem_used", "temp_c", "power_w")):
                problems.append(f"gpu{i}: {_NV_LAST_ERROR[0] or 'no reading'}")
            out.append(dev)
        if problems:
            errors[self.name] = "; ".join(problems)
        return out

    def _processes(self, h: Any) -> Optional[List[Dict[str, Any]]]:
        procs = _nv(self._fn("nvmlDeviceGetComputeRunningProcesses"), h)
        if procs is NA or procs is None:
            return None
        out = []
        for p in procs:
            pid = _nv_int(getattr(p, "pid", None))
            if pid is None:
                continue
            # usedGpuMemory is None when NVML cannot attribute it (e.g. under MIG without root)
            out.append(
                {
                    "pid": pid,
                    "name": self.proc_name(pid),
                    "mem_used": _nv_int(getattr(p, "usedGpuMemory", None)),
                }
            )
        return out

    def _sample_gpu(self, i: int, h: Any) -> Dict[str, Any]:
        dev = dict(self.static[i])
        dev.update(dict.fromkeys(_GPU_FIELDS))
        if h is NA or h is None:  # the handle itself could not be had (GPU lost at start)
            return dev
        nv = self._fn
        util = _nv(nv("nvmlDeviceGetUtilizationRates"), h)
        mem = _nv(nv("nvmlDeviceGetMemoryInfo"), h)
        temp = _nv(nv("nvmlDeviceGetTemperature"), h, self._const("NVML_TEMPERATURE_GPU", 0))
        power = _nv(nv("nvmlDeviceGetPowerUsage"), h)
        limit = _nv(nv("nvmlDeviceGetEnforcedPowerLimit"), h)
        sm = _nv(nv("nvmlDeviceGetClockInfo"), h, self._const("NVML_CLOCK_SM", 1))
        reasons = _nv(nv("nvmlDeviceGetCurrentClocksEventReasons"), h)
        if reasons is NA:  # bindings/drivers before the "event reasons" rename
            reasons = _nv(nv("nvmlDeviceGetCurrentClocksThrottleReasons"), h)
        mask = _nv_int(reasons)
        dev.update(
            {
                "util": _nv_num(_nv_attr(util, "gpu"), digits=1),
                "mem_used": _nv_int(_nv_attr(mem, "used")),
                "mem_total": _nv_int(_nv_attr(mem, "total")) or dev.get("mem_total"),
                "temp_c": _nv_num(temp, digits=1),
                "power_w": _nv_num(power, 0.001),  # NVML reports milliwatts
                "power_limit_w": _nv_num(limit, 0.001),
                "sm_clock_mhz": _nv_int(sm),
                "throttle": decode_throttle_reasons(mask) if mask is not None else None,
                "processes": self._processes(h),
            }
        )
        self._sample_mig(i, h, dev)
        return dev

    def _sample_mig(self, i: int, h: Any, dev: Dict[str, Any]) -> None:
        """MIG instances (null when MIG is off or unsupported, [] when on but none created)."""
        mode = _nv(self._fn("nvmlDeviceGetMigMode"), h)
        if mode is NA or mode is None:
            return
        current = mode[0] if isinstance(mode, (list, tuple)) and mode else mode
        enabled = _nv_int(current) == self._const("NVML_DEVICE_MIG_ENABLE", 1)
        dev["mig_enabled"] = enabled
        if not enabled:
            return
        count = _nv_int(_nv(self._fn("nvmlDeviceGetMaxMigDeviceCount"), h)) or 0
        instances = []
        procs: List[Dict[str, Any]] = []
        for j in range(count):
            mh = _nv(self._fn("nvmlDeviceGetMigDeviceHandleByIndex"), h, j)
            if mh is NA or mh is None:
                continue  # empty slot (NVML_ERROR_NOT_FOUND)
            mem = _nv(self._fn("nvmlDeviceGetMemoryInfo"), mh)
            mig_procs = self._processes(mh)
            instances.append(
                {
                    "id": f"gpu{i}/mig{j}",
                    "name": mig_profile_name(_nv_str(_nv(self._fn("nvmlDeviceGetName"), mh))),
                    "uuid": _nv_str(_nv(self._fn("nvmlDeviceGetUUID"), mh)),
                    "mem_used": _nv_int(_nv_attr(mem, "used")),
                    "mem_total": _nv_int(_nv_attr(mem, "total")),
                    "processes": mig_procs,
                }
            )
            procs.extend(mig_procs or [])
        dev["mig"] = instances
        # Without privileges the parent handle sees no processes under MIG; the instances do.
        if not dev.get("processes") and procs:
            dev["processes"] = procs


# --------------------------------------------------------------------------------------------
# nvidia-smi collector (when pynvml is absent)
# --------------------------------------------------------------------------------------------

SMI_GPU_FIELDS = (
    "index",
    "uuid",
    "name",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "power.limit",
    "clocks.sm",
)
# Newer drivers renamed throttle reasons to "clocks event reasons"; older ones only know the
# old name, and very old ones neither. Tried in this order at start.
SMI_REASON_FIELDS = ("clocks_event_reasons.active", "clocks_throttle_reasons.active", None)
SMI_APP_FIELDS = ("pid", "process_name", "used_memory", "gpu_uuid")
SMI_STARTUP_S = 12.0


class NvidiaSmiCollector:
    """GPUs through the nvidia-smi CLI, for hosts without nvidia-ml-py.

    GPU metrics come from one long-lived `nvidia-smi --query-gpu ... --loop-ms` child, which
    keeps NVML initialised (a fresh nvidia-smi per tick re-initialises the driver: up to a
    second of CPU without persistence mode). Processes are polled by a background thread every
    few seconds, so a hung driver never stalls the sample line."""

    name = "nvidia-smi"

    def __init__(
        self,
        interval: float,
        exe: Optional[str] = None,
        apps_period: float = 5.0,
        stale_after: Optional[float] = None,
    ) -> None:
        self.interval = interval
        # a reading older than this is reported as missing rather than passed off as current
        self.stale_after = stale_after or max(3 * interval, interval + 5.0)
        self._oneshot = False  # polling instead of --loop-ms (see sample())
        self._loop_row_at = -1e9
        self.status = "unavailable: not found"
        self.static: List[Dict[str, Any]] = []
        self.driver: Optional[str] = None
        self.cuda: Optional[str] = None
        self.fields: Tuple[str, ...] = SMI_GPU_FIELDS
        self._rows: Dict[int, Tuple[float, Dict[str, Any]]] = {}
        self._apps: Optional[List[Dict[str, Any]]] = None
        self._apps_error: Optional[str] = None
        self._lock = threading.Lock()
        self._child: Optional[LineChild] = None
        self._closed = False
        self._apps_wake = threading.Event()
        self.apps_period = max(apps_period, interval)
        self.exe = exe or _which("nvidia-smi")
        if not self.exe:
            return
        # All start-up probes share one deadline: a wedged driver can hang nvidia-smi for
        # minutes, and the controller gives up on a host whose hello takes over 30 s.
        deadline = time.monotonic() + SMI_STARTUP_S
        first_error = ""
        rows: List[Dict[str, Any]] = []
        for reason_field in SMI_REASON_FIELDS:
            fields = SMI_GPU_FIELDS + ((reason_field,) if reason_field else ())
            rc, out = _run(
                [self.exe, "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"],
                timeout=max(deadline - time.monotonic(), 1.0),
            )
            rows = parse_nvidia_smi_csv(out, fields) if rc == 0 else []
            if rows:
                self.fields = fields
                break
            first_error = first_error or _first_line(out) or f"exit status {rc}"
            if rc is None:
                break  # hung or could not start: retrying with other fields will not help
        if not rows:
            self.status = f"unavailable: {first_error}"
            return
        now = time.monotonic()
        for row in rows:
            idx = row.get("index")
            if isinstance(idx, int):
                self._rows[idx] = (now, row)
                self.static.append(
                    {
                        "id": f"gpu{idx}",
                        "kind": "gpu",
                        "name": row.get("name"),
                        "uuid": row.get("uuid"),
                        "mem_total": row.get("memory.total"),
                    }
                )
        # Only the plain table shows the driver's CUDA version.
        rc, out = _run([self.exe], timeout=max(deadline - time.monotonic(), 1.0))
        self.driver, self.cuda = parse_nvidia_smi_banner(out if rc == 0 else "")
        self._start_loop()
        threading.Thread(target=self._poll_apps, name="edgetop-smi-apps", daemon=True).start()
        self.status = "ok"

    def _start_loop(self) -> None:
        ms = max(int(self.interval * 1000), 100)
        argv = [
            self.exe or "nvidia-smi",
            "--query-gpu=" + ",".join(self.fields),
            "--format=csv,noheader,nounits",
            f"--loop-ms={ms}",
        ]
        try:
            self._child = LineChild(argv, self._on_line)
        except OSError as exc:
            self._child = None
            self._loop_error = _errstr(exc)

    def _on_line(self, line: str) -> None:
        self._store(parse_nvidia_smi_csv(line, self.fields))
        self._loop_row_at = time.monotonic()

    def _store(self, rows: List[Dict[str, Any]]) -> None:
        now = time.monotonic()
        with self._lock:
            for row in rows:
                idx = row.get("index")
                if isinstance(idx, int):
                    self._rows[idx] = (now, row)

    def _poll_gpus(self) -> None:
        """One-shot queries every interval, when the loop child gives nothing (see sample)."""
        wake = threading.Event()
        while not self._closed:
            started = time.monotonic()
            rc, out = _run(
                [
                    self.exe or "nvidia-smi",
                    "--query-gpu=" + ",".join(self.fields),
                    "--format=csv,noheader,nounits",
                ],
                timeout=self.stale_after,
            )
            if rc == 0:
                self._store(parse_nvidia_smi_csv(out, self.fields))
            wake.wait(max(self.interval - (time.monotonic() - started), 0.05))

    def _check_loop(self, problems: List[str]) -> None:
        child = self._child
        now = time.monotonic()
        if child is None or not child.alive:
            why = child.last_line if child else getattr(self, "_loop_error", "not started")
            problems.append(f"nvidia-smi loop exited: {why or 'no output'}")
            # restart, but not more often than every 30 s
            if not self._closed and (child is None or now - child.started > 30):
                self._start_loop()
        elif self._loop_row_at < child.started and now - child.started > self.stale_after:
            # Alive but silent: an nvidia-smi that block-buffers a piped stdout would hold
            # rows back for minutes. Poll with one-shot queries instead, in the background.
            child.stop()
            self._oneshot = True
            threading.Thread(target=self._poll_gpus, name="edgetop-smi-poll", daemon=True).start()
            problems.append("nvidia-smi --loop-ms gave no rows; polling instead")

    def _poll_apps(self) -> None:
        while not self._closed:
            rc, out = _run(
                [
                    self.exe or "nvidia-smi",
                    "--query-compute-apps=" + ",".join(SMI_APP_FIELDS),
                    "--format=csv,noheader,nounits",
                ],
                timeout=max(10.0, self.apps_period),
            )
            with self._lock:
                if rc == 0:
                    self._apps = parse_nvidia_smi_csv(out, SMI_APP_FIELDS)
                    self._apps_error = None
                else:
                    self._apps = None
                    self._apps_error = _first_line(out) or f"exit status {rc}"
            self._apps_wake.wait(self.apps_period)

    def inventory(self) -> List[Dict[str, Any]]:
        return [dict(s) for s in self.static]

    def close(self) -> None:
        self._closed = True
        if self._child is not None:
            self._child.stop()
        self._apps_wake.set()

    def sample(self, errors: Dict[str, str]) -> List[Dict[str, Any]]:
        problems: List[str] = []
        if not self._oneshot:
            self._check_loop(problems)
        stale_after = self.stale_after
        now = time.monotonic()
        with self._lock:
            rows = dict(self._rows)
            apps = list(self._apps) if self._apps is not None else None
            apps_error = self._apps_error
        if apps_error:
            problems.append(f"compute-apps: {apps_error}")
        out = []
        for base in self.static:
            dev = dict(base)
            idx = _int(base["id"][3:])
            got = rows.get(idx) if idx is not None else None
            row: Dict[str, Any] = {}
            if got and now - got[0] <= stale_after:
                row = got[1]
            elif got:
                problems.append(f"{base['id']}: no reading for {now - got[0]:.0f} s")
            reasons = row.get(
                "clocks_event_reasons.active", row.get("clocks_throttle_reasons.active")
            )
            procs = None
            if apps is not None:
                procs = [
                    {
                        "pid": a.get("pid"),
                        "name": a.get("process_name"),
                        "mem_used": a.get("used_memory"),
                    }
                    for a in apps
                    if a.get("gpu_uuid") == base.get("uuid") and isinstance(a.get("pid"), int)
                ]
            dev.update(
                {
                    "util": row.get("utilization.gpu"),
                    "mem_used": row.get("memory.used"),
                    "mem_total": row.get("memory.total") or base.get("mem_total"),
                    "temp_c": row.get("temperature.gpu"),
                    "power_w": row.get("power.draw"),
                    "power_limit_w": row.get("power.limit"),
                    "sm_clock_mhz": row.get("clocks.sm"),
                    "throttle": reasons,
                    "processes": procs,
                    "mig": None,
                }
            )
            out.append(dev)
        if problems:
            errors[self.name] = "; ".join(problems)
        return out


# --------------------------------------------------------------------------------------------
# Jetson: jtop (jetson-stats service) or tegrastats
# --------------------------------------------------------------------------------------------

JTOP_SOCKET = "/run/jtop.sock"


def jtop_reading(jetson: Any) -> Dict[str, Any]:
    """Map a jetson-stats (4.x+) `jtop` object to the protocol's jetson fields."""
    out: Dict[str, Any] = dict.fromkeys((*JETSON_FIELDS, "power_mode"))
    gpus = jetson.gpu
    for _name, gpu in gpus.items():  # the integrated GPU is the first (and only) one
        out["util"] = _float(gpu.get("status", {}).get("load"))
        break
    memory = jetson.memory
    ram = memory.get("RAM") or {}
    if ram.get("tot") is not None:  # jtop reports KB
        out["mem_total"] = int(ram["tot"]) * 1024
        out["mem_used"] = int(ram.get("used", 0)) * 1024
    if "EMC" in memory:
        out["emc_util"] = _float(memory["EMC"].get("val"))
    cpu = jetson.cpu
    if isinstance(cpu, dict) and isinstance(cpu.get("cpu"), list):
        out["per_core"] = [
            round(100.0 - float(c.get("idle", 100.0)), 1) if c.get("online") else None
            for c in cpu["cpu"]
        ]
    temps = {}
    for name, sensor in (jetson.temperature or {}).items():
        value = _float(sensor.get("temp"))
        if sensor.get("online", True) and value is not None and value > -256:
            temps[str(name).lower()] = value
    if temps:
        out["temps"] = temps
        out["temp_c"] = next((temps[z] for z in ("gpu", "tj", "thermal") if z in temps), None)
    power = jetson.power or {}
    rails = {
        str(name): round(float(r["power"]) / 1000.0, 3)
        for name, r in (power.get("rail") or {}).items()
        if _float(r.get("power")) is not None
    }
    if rails:
        out["rails"] = rails
    tot = _float((power.get("tot") or {}).get("power"))
    out["power_w"] = round(tot / 1000.0, 3) if tot is not None else None
    model = jetson.nvpmodel
    if model is not None:
        out["power_mode"] = str(getattr(model, "name", model))
    return out


class JtopBackend:
    """Reads the jetson-stats service (jtop.service) over its socket."""

    name = "jtop"

    def __init__(self, jtop_cls: Any, interval: float, start_timeout: float = 5.0) -> None:
        self.jetson = jtop_cls(interval=interval)
        failure: List[Exception] = []

        def start() -> None:
            try:
                self.jetson.start()
            except Exception as exc:
                failure.append(exc)

        # jtop.start() blocks on the service; a wedged service must not wedge the agent.
        t = threading.Thread(target=start, name="edgetop-jtop", daemon=True)
        t.start()
        t.join(start_timeout)
        if t.is_alive():
            raise RuntimeError("jtop service not answering")
        if failure:
            raise failure[0]

    def sample(self) -> Dict[str, Any]:
        if not self.jetson.ok(spin=True):  # raises the reader thread's error if any
            raise RuntimeError("jtop connection lost")
        return jtop_reading(self.jetson)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.jetson.close()


class TegrastatsBackend:
    """A long-lived `tegrastats --interval` child; each tick parses its latest line."""

    name = "tegrastats"

    def __init__(self, exe: str, interval: float) -> None:
        self.exe = exe
        self.interval = interval
        self._line: Optional[str] = None
        self._got = threading.Event()
        self._child = self._spawn()

    def _spawn(self) -> LineChild:
        ms = max(int(self.interval * 1000), 100)
        return LineChild([self.exe, "--interval", str(ms)], self._on_line)

    def _on_line(self, line: str) -> None:
        self._line = line
        self._got.set()

    def close(self) -> None:
        self._child.stop()

    def sample(self) -> Dict[str, Any]:
        if self._line is None:  # the first line comes one tegrastats interval after start
            self._got.wait(min(2 * self.interval + 0.5, 3.0))
        if not self._child.alive:
            why = self._child.last_line or f"exit status {self._child.returncode}"
            if time.monotonic() - self._child.started > 30:
                self._line = None
                self._child = self._spawn()
            raise RuntimeError(f"tegrastats exited: {why}")
        if self._line is None:
            raise RuntimeError("no output from tegrastats yet")
        return parse_tegrastats(self._line)


class JetsonCollector:
    """The Jetson's integrated GPU and SoC: jtop when its service runs, else tegrastats."""

    name = "jetson"

    def __init__(
        self,
        model: Optional[str],
        interval: float,
        device_id: str = "gpu0",
        jtop_cls: Any = None,
        jtop_socket: str = JTOP_SOCKET,
        tegrastats_exe: Optional[str] = None,
        nvpmodel_exe: Optional[str] = None,
        jtop_timeout: float = 5.0,
    ) -> None:
        self.model = model
        self.interval = interval
        self.device_id = device_id
        self.status = {"jtop": "unavailable", "tegrastats": "unavailable: not found"}
        self.backend: Any = None
        self._tegrastats_exe = tegrastats_exe
        self._nvpmodel_exe = nvpmodel_exe
        self._power_mode: Optional[str] = None
        self._power_mode_at = -1e9
        if jtop_cls is None and os.path.exists(jtop_socket):
            try:  # importing jtop costs memory: only when its service socket exists
                from jtop import jtop as jtop_cls
            except Exception as exc:
                self.status["jtop"] = f"unavailable: jtop not importable ({_errstr(exc)})"
        elif jtop_cls is None:
            self.status["jtop"] = f"unavailable: {jtop_socket} not found"
        if jtop_cls is not None:
            try:
                self.backend = JtopBackend(jtop_cls, interval, jtop_timeout)
                self.status["jtop"] = "ok"
                self.status["tegrastats"] = "skipped: jtop ok"
            except Exception as exc:
                self.status["jtop"] = f"unavailable: {_errstr(exc)}"
        if self.backend is None:
            self._start_tegrastats()

    def _start_tegrastats(self) -> None:
        exe = self._tegrastats_exe or _which("tegrastats", ("/usr/local/bin",))
        if not exe:
            self.status["tegrastats"] = "unavailable: not found"
            return
        try:
            self.backend = TegrastatsBackend(exe, self.interval)
            self.status["tegrastats"] = "ok"
        except OSError as exc:
            self.status["tegrastats"] = f"unavailable: {_errstr(exc)}"

    def power_mode(self) -> Optional[str]:
        """nvpmodel -q, at most every 30 s (modes change rarely; spawning costs)."""
        now = time.monotonic()
        if now - self._power_mode_at >= 30:
            self._power_mode_at = now
            exe = self._nvpmodel_exe or _which("nvpmodel")
            if exe:
                rc, out = _run([exe, "-q"], timeout=5)
                mode = parse_nvpmodel(out) if rc is not None else None
                self._power_mode = mode or self._power_mode
        return self._power_mode

    def inventory(self) -> List[Dict[str, Any]]:
        return [{"id": self.device_id, "kind": "jetson", "name": self.model}]

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()

    def sample(self, errors: Dict[str, str]) -> List[Dict[str, Any]]:
        dev: Dict[str, Any] = {"id": self.device_id, "kind": "jetson", "name": self.model}
        reading: Dict[str, Any] = {}
        backend = self.backend
        if backend is not None:
            try:
                reading = backend.sample()
            except Exception as exc:
                errors[backend.name] = _errstr(exc)
                if isinstance(backend, JtopBackend):
                    # jtop broke at runtime: drop to tegrastats for the rest of this session
                    backend.close()
                    self.backend = None
                    self.status["jtop"] = f"unavailable: {_errstr(exc)}"
                    self._start_tegrastats()
        for key in ("util", "mem_used", "mem_total", "temp_c", "power_w", "emc_util"):
            dev[key] = reading.get(key)
        for key in ("per_core", "temps", "rails"):
            dev[key] = reading.get(key)
        dev["power_mode"] = reading.get("power_mode") or self.power_mode()
        return [dev]


# --------------------------------------------------------------------------------------------
# Host facts and the agent
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Inference workers on this host (edgetop.remote.worker): forwarded with the telemetry
# --------------------------------------------------------------------------------------------

DEFAULT_DEPLOYMENTS_DIR = "~/.local/state/edgetop/deployments"
_DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_DEPLOYMENTS = 64  # a line stays a few KiB however many directories pile up
_METRIC_KEYS = (
    "p50_ms", "p90_ms", "p99_ms", "throughput", "slo_compliance", "busy", "count", "t",
)  # fmt: skip


def last_json_line(path: str, tail_bytes: int = 8192) -> Optional[Dict[str, Any]]:
    """The last complete JSON object line of a file, reading only its tail."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - tail_bytes))
            lines = handle.read().splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        try:
            obj = json.loads(raw.decode("utf-8"))
        except ValueError:
            continue  # a line being written, or the cut first line of the tail
        if isinstance(obj, dict):
            return obj
    return None


def _pid_alive(directory: str) -> bool:
    text = _read_text(os.path.join(directory, "pid"), 64)
    pid = _int((text or "").strip())
    if pid is None or pid <= 0:
        return False
    args = (_read_bytes(f"/proc/{pid}/cmdline") or b"").split(b"\0")
    # A reused pid belongs to someone else: it must be a worker of exactly this directory.
    return os.path.realpath(directory).encode() in [
        os.path.realpath(a.decode("utf-8", "replace")).encode() for a in args if a
    ]


def _process_entry(directory: str, entry_id: str, status: Any) -> Optional[Dict[str, Any]]:
    """What a worker's and a pipeline stage's directories share (pid, status.json,
    metrics.jsonl): id, state (`dead` when its process is gone), reason and the latest
    window; None once stopped."""
    state = status.get("state") if isinstance(status, dict) else None
    if state == "stopped":
        return None
    if state in (None, "starting", "running") and not _pid_alive(directory):
        state = "dead"
    out: Dict[str, Any] = {"id": entry_id, "state": state}
    if isinstance(status, dict) and status.get("reason"):
        out["reason"] = str(status["reason"])[:300]
    metrics = last_json_line(os.path.join(directory, "metrics.jsonl"))
    if metrics:
        for key in _METRIC_KEYS:
            out[key] = metrics.get(key)
    return out


def read_deployment(directory: str) -> Optional[Dict[str, Any]]:
    """One deployment directory as the sample reports it; None for a stopped one."""
    status = _load_json(os.path.join(directory, "status.json"))
    out = _process_entry(directory, os.path.basename(directory), status)
    spec = _load_json(os.path.join(directory, "spec.json"))
    if out is not None and isinstance(spec, dict):
        for key in ("model", "batch", "scenario", "slo_ms"):
            out[key] = spec.get(key)
    return out


def _load_json(path: str) -> Any:
    text = _read_text(path, 1 << 16)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def scan_deployments(root: str) -> List[Dict[str, Any]]:
    """Workers under `root` that are not stopped (missing root: none)."""
    root = os.path.expanduser(root)
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    found: List[Dict[str, Any]] = []
    for name in names:
        directory = os.path.join(root, name)
        if _DEPLOYMENT_ID.match(name) and os.path.isdir(directory):
            entry = read_deployment(directory)
            if entry is not None:
                found.append(entry)
        if len(found) >= _MAX_DEPLOYMENTS:
            break
    return found


# Pipeline stages (edgetop.remote.stage): <root>/<pipeline label>/<stage index>/, each a
# directory like a worker's; reported as deployment entries naming their pipeline.
DEFAULT_PIPELINES_DIR = "~/.local/state/edgetop/pipelines"
_STAGE_INDEX = re.compile(r"^[0-9]{1,3}$")


def read_stage(directory: str, label: str) -> Optional[Dict[str, Any]]:
    """One stage directory as the sample reports it; None for a stopped one. Its id,
    `<label>/<index>`, cannot be taken for a worker's (`<deployment>.<launch>`)."""
    index = os.path.basename(directory)
    status = _load_json(os.path.join(directory, "status.json"))
    out = _process_entry(directory, label + "/" + index, status)
    if out is None:
        return None
    out.update(pipeline=label, stage=int(index))
    if isinstance(status, dict):
        out["model"] = status.get("model")
        first, stop = _int(status.get("first")), _int(status.get("stop"))
        if first is not None and stop is not None:
            out["blocks"] = f"{first}:{stop}"
    return out


def scan_pipelines(root: str) -> List[Dict[str, Any]]:
    """Pipeline stages under `root` that are not stopped (missing root: none)."""
    root = os.path.expanduser(root)
    try:
        labels = sorted(os.listdir(root))
    except OSError:
        return []
    found: List[Dict[str, Any]] = []
    for label in labels:
        pipeline = os.path.join(root, label)
        if not (_DEPLOYMENT_ID.match(label) and os.path.isdir(pipeline)):
            continue
        try:
            indexes = sorted(os.listdir(pipeline), key=lambda n: (len(n), n))
        except OSError:
            continue
        for index in indexes:
            directory = os.path.join(pipeline, index)
            if _STAGE_INDEX.match(index) and os.path.isdir(directory):
                entry = read_stage(directory, label)
                if entry is not None:
                    found.append(entry)
            if len(found) >= _MAX_DEPLOYMENTS:
                return found
    return found


def detect_jetson(root: str = "/") -> Optional[Dict[str, Any]]:
    """A Jetson has /etc/nv_tegra_release or a device-tree model naming a Jetson."""
    release = _read_text(_under(root, "/etc/nv_tegra_release"), 4096)
    model = parse_device_tree_model(_read_bytes(_under(root, "/proc/device-tree/model")))
    if release is None and not (model and "jetson" in model.lower()):
        return None
    l4t = parse_nv_tegra_release(release or "")
    return {"model": model or "NVIDIA Jetson", "l4t": l4t, "jetpack": jetpack_for_l4t(l4t)}


def _mem_total_bytes() -> Optional[int]:
    return parse_meminfo(_read_text("/proc/meminfo") or "").get("MemTotal")


class Agent:
    """Owns the collectors; builds hello and sample messages."""

    def __init__(
        self,
        interval: float,
        *,
        cpu: Optional[CpuCollector] = None,
        gpus: Optional[List[Any]] = None,
        jetson: Optional[JetsonCollector] = None,
        detect_jetson_host: bool = True,
        root: str = "/",
        deployments_dir: str = DEFAULT_DEPLOYMENTS_DIR,
        pipelines_dir: str = DEFAULT_PIPELINES_DIR,
    ) -> None:
        self.interval = interval
        self.deployments_dir = deployments_dir
        self.pipelines_dir = pipelines_dir
        self.phys_mem = _mem_total_bytes()
        self.cgroup = read_cgroup_limits(
            _read_text(_under(root, "/proc/self/cgroup")) or "",
            _read_text(_under(root, "/proc/self/mountinfo")) or "",
            root,
            self.phys_mem,
        )
        self.cpu = cpu or CpuCollector(cgroup=self.cgroup)
        self.cpu_name = parse_cpuinfo_model(_read_text("/proc/cpuinfo", 1 << 18) or "")
        self.collectors: Dict[str, str] = {}
        if gpus is None:
            gpus = []
            nvml = NvmlCollector()
            self.collectors["nvml"] = nvml.status
            if nvml.status == "ok":
                gpus.append(nvml)
                self.collectors["nvidia-smi"] = "skipped: nvml ok"
            else:
                smi = NvidiaSmiCollector(interval)
                self.collectors["nvidia-smi"] = smi.status
                if smi.status == "ok":
                    gpus.append(smi)
        self.gpus = gpus
        self.jetson_info = detect_jetson(root) if detect_jetson_host else None
        if jetson is None:
            if self.jetson_info:
                n_gpus = sum(len(g.inventory()) for g in gpus)
                jetson = JetsonCollector(
                    self.jetson_info["model"], interval, device_id=f"gpu{n_gpus}"
                )
            else:
                self.collectors["jtop"] = "unavailable: not a Jetson"
                self.collectors["tegrastats"] = "unavailable: not a Jetson"
        self.jetson: Optional[JetsonCollector] = jetson
        if self.jetson is not None:
            self.collectors.update(self.jetson.status)
        self.collectors.update(self.cpu.status)

    def hello(self) -> Dict[str, Any]:
        uname = os.uname() if hasattr(os, "uname") else None
        os_release = parse_os_release(
            _read_text("/etc/os-release") or _read_text("/usr/lib/os-release") or ""
        )
        driver = cuda = None
        for g in self.gpus:
            driver = driver or getattr(g, "driver", None)
            cuda = cuda or getattr(g, "cuda", None)
        devices: List[Dict[str, Any]] = [{"id": "cpu", "kind": "cpu", "name": self.cpu_name}]
        for g in self.gpus:
            devices.extend(g.inventory())
        power_mode = None
        if self.jetson is not None:
            devices.extend(self.jetson.inventory())
            power_mode = self.jetson.power_mode()
        if self.jetson is not None:  # the collector status may have changed since __init__
            self.collectors.update(self.jetson.status)
        info = self.jetson_info or {}
        return {
            "v": PROTOCOL_VERSION,
            "type": "hello",
            "agent": AGENT_VERSION,
            "hostname": socket.gethostname(),
            "os": os_release.get("PRETTY_NAME") or os_release.get("NAME"),
            "kernel": uname.release if uname else None,
            "arch": uname.machine if uname else None,
            "python": ".".join(str(n) for n in sys.version_info[:3]),
            "cpu_count": os.cpu_count(),
            "mem_total": self.phys_mem,
            "nvidia_driver": driver,
            "cuda": cuda,
            "l4t": info.get("l4t"),
            "jetpack": info.get("jetpack"),
            "power_mode": power_mode,
            "cgroup": {
                "cpu_quota": self.cgroup["cpu_quota"],
                "mem_limit": self.cgroup["mem_limit"],
            },
            "devices": devices,
            "collectors": dict(self.collectors),
            "interval": self.interval,
        }

    def close(self) -> None:
        """Stop child processes and release NVML (tests; the agent itself just exits)."""
        for source in [*self.gpus, *([self.jetson] if self.jetson else [])]:
            with contextlib.suppress(Exception):
                source.close()

    def sample(self, seq: int) -> Dict[str, Any]:
        errors: Dict[str, str] = {}
        cpu: Dict[str, Any] = {"id": "cpu", "kind": "cpu", "name": self.cpu_name}
        try:
            cpu.update(self.cpu.sample())
        except Exception as exc:
            errors[self.cpu.name] = _errstr(exc)
            for key in ("util", "per_core", "mem_used", "mem_total", "load", "procs"):
                cpu.setdefault(key, None)
            cpu.setdefault("temp_c", None)
            cpu.setdefault("power_w", None)
        devices = [cpu]
        sources: List[Any] = [*self.gpus, *([self.jetson] if self.jetson else [])]
        for source in sources:
            try:
                devices.extend(source.sample(errors))
            except Exception as exc:  # one collector failing never breaks the line
                errors[source.name] = _errstr(exc)
                devices.extend(source.inventory())
        if self.jetson is not None:
            self.collectors.update(self.jetson.status)
        try:
            deployments = scan_deployments(self.deployments_dir)
        except Exception as exc:
            errors["deployments"] = _errstr(exc)
            deployments = []
        try:
            deployments.extend(scan_pipelines(self.pipelines_dir))
        except Exception as exc:
            errors["pipelines"] = _errstr(exc)
        return {
            "v": PROTOCOL_VERSION,
            "type": "sample",
            "seq": seq,
            "t": round(time.time(), 3),
            "devices": devices,
            "deployments": deployments,
            "errors": errors,
        }


# --------------------------------------------------------------------------------------------
# Main loop
# --------------------------------------------------------------------------------------------


def encode_line(obj: Dict[str, Any]) -> bytes:
    return (json.dumps(_clean(obj), separators=(",", ":"), allow_nan=False) + "\n").encode()


def _emit(obj: Dict[str, Any]) -> None:
    data = encode_line(obj)
    try:
        out = sys.stdout.buffer
        out.write(data)
        out.flush()
    except (BrokenPipeError, ValueError, OSError):
        _shutdown(0)  # the reader is gone: nothing left to do


def _watch_stdin() -> None:
    """Exit as soon as stdin reaches EOF: the controller (or its SSH channel) went away."""
    stream = getattr(sys.stdin, "buffer", None)
    try:
        while stream is not None:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
    except (OSError, ValueError):
        pass
    _shutdown(0)


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edgetop-agent", description="edgetop host agent")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--once", action="store_true", help="print hello and one sample, exit")
    parser.add_argument(
        "--deployments-dir",
        default=DEFAULT_DEPLOYMENTS_DIR,
        help="where this host's inference workers keep their state",
    )
    parser.add_argument(
        "--pipelines-dir",
        default=DEFAULT_PIPELINES_DIR,
        help="where this host's pipeline stages keep their state",
    )
    args = parser.parse_args(argv)
    if not math.isfinite(args.interval) or args.interval <= 0:
        parser.error("--interval must be a positive number")
    args.interval = max(args.interval, 0.05)
    return args


def run(
    interval: float,
    once: bool = False,
    deployments_dir: str = DEFAULT_DEPLOYMENTS_DIR,
    pipelines_dir: str = DEFAULT_PIPELINES_DIR,
) -> None:
    agent = Agent(interval, deployments_dir=deployments_dir, pipelines_dir=pipelines_dir)
    _emit(agent.hello())
    seq = 0
    next_tick = time.monotonic()
    while True:
        # Sleep to the next tick on the monotonic clock: no drift, no busy wait. After a long
        # stall (suspend, overloaded host) resynchronise instead of bursting catch-up samples.
        next_tick += interval
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif -delay > interval:
            next_tick = time.monotonic()
        seq += 1
        _emit(agent.sample(seq))
        if once:
            return


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for signame in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, signame, None)
        if sig is not None:
            signal.signal(sig, lambda _s, _f: _shutdown(0))
    if not args.once:
        threading.Thread(target=_watch_stdin, name="edgetop-stdin", daemon=True).start()
    try:
        run(
            args.interval,
            once=args.once,
            deployments_dir=args.deployments_dir,
            pipelines_dir=args.pipelines_dir,
        )
    except KeyboardInterrupt:
        _shutdown(0)
    except Exception as exc:
        try:
            _emit({"v": PROTOCOL_VERSION, "type": "error", "message": _errstr(exc)})
        finally:
            _shutdown(1)
    _shutdown(0)


if __name__ in ("__main__", "__edgetop_agent__"):
    main(sys.argv[1:])
