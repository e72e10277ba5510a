"""The inference worker: one deployed model on one host, driven by loadgen, reporting metrics.

    python -m edgetop.remote.worker --dir DIR              run the deployment described in DIR
    python -m edgetop.remote.worker --describe DIR         print its state as JSON
    python -m edgetop.remote.worker --stop DIR [--timeout S]   SIGTERM it, wait, print its state
    python -m edgetop.remote.worker --scan ROOT            print every deployment under ROOT

`remote/deploy.py` ships this package to the host and runs these commands there; the last three
are stdlib-only and quick, so the controller can find and stop workers with one command each.

A deployment directory holds:

- `spec.json`: what to run (`WorkerSpec`), written by the deployer before the launch.
- `pid`: the worker's process id.
- `status.json`: `{"state": "starting" | "running" | "failed" | "stopped", "reason": ...}`,
  replaced atomically (temp file + rename) at every change, so a reader never sees half of it.
- `metrics.jsonl`: one JSON line per `metrics_interval_s` (default 1 s) with the sliding
  window's p50/p90/p99 (ms), throughput (samples/s), SLO compliance, count, window, device,
  threads and RSS. Bounded: past `METRICS_MAX_LINES` lines the file is atomically rewritten
  with the last `METRICS_KEEP_LINES`, so a worker running for months cannot fill the disk.
- `worker.log`: the worker's own stdout/stderr (the launcher redirects it there).

Before allocating anything the worker estimates the memory the model needs from a build on
torch's meta device (weights + activations at the batch size, +25% margin + 32 MiB), and
refuses to start (status failed, with the numbers) when that exceeds what the device has free:
on CUDA `torch.cuda.mem_get_info`, on the CPU min(MemAvailable, cgroup limit - cgroup usage).
So a model that cannot fit is reported, never OOM-killed in silence. On the CPU the worker uses
ceil(cgroup CPU quota) threads, at most the cores it may run on.

Declared models (a Triton or custom server, see edgetop.models.declared): a spec with a
`declared` field ({"launch": argv, "query": argv}) is run without torch and WITHOUT the memory
check. The worker starts `launch` (if any) as its child in its own process group (output in
`server.log`; the group is stopped with the worker, and gets SIGTERM if the worker is
killed outright), waits until one query succeeds, then has
loadgen time each run of `query` (argv, no shell, `{batch}` replaced, process start-up
included) as one query. The server exiting, or DECLARED_MAX_FAILURES failed queries in a row,
fail the worker with the server's exit status and output or the query's stderr.

Exit status: 0 stopped (SIGTERM/SIGINT or `duration_s` reached), 1 failed while loading or
running, 2 bad spec, 3 torch is not installed (or older than `MIN_TORCH`), 4 the model does not
fit in free memory.

Host Python: this module, loadgen and the model zoo run on >= 3.8 (JetPack 5's Python, with
NVIDIA's torch wheels; see deploy.MIN_PYTHON and tests/test_host_python.py). Host torch: >= 2.0
(`MIN_TORCH`: the zoo builds on the meta device under `with torch.device(...)` and its
transformers call `scaled_dot_product_attention`); the activation estimate uses
`torch.utils.flop_counter` (2.1), and on an older torch falls back to a cruder guess. Importing
this module needs only the standard library and the agent's cgroup reader; torch and the zoo
are imported when a worker runs, so --describe/--scan/--stop work on any host Python.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetop.remote.agent import cgroup_memory_used, parse_meminfo, read_cgroup_limits
from edgetop.remote.loadgen import SCENARIOS, SlidingWindow, WindowStats, make_scenario

if TYPE_CHECKING:
    from collections.abc import Iterator

SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
PID_FILE = "pid"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "worker.log"
MODULE = "edgetop.remote.worker"

STATES = ("starting", "running", "failed", "stopped")
EXIT_STOPPED, EXIT_FAILED, EXIT_BAD_SPEC, EXIT_NO_TORCH, EXIT_NO_MEMORY = 0, 1, 2, 3, 4

METRICS_MAX_LINES = 1200
METRICS_KEEP_LINES = 600
MEMORY_MARGIN = 1.25
MEMORY_SLACK = 32 << 20
# Eager CPU inference holds about twice its live activation set at peak (allocator caching,
# oneDNN reorders): measured peak RSS growth over weights + activations was 1.6x for ResNet-50
# and MobileNetV2 at batch 8. Without this, ResNet-50 at batch 8 passed the check on a
# 0.4 CPU / 512 MiB host and was OOM-killed (bench/profile_amp4ec.py).
ACTIVATION_FACTOR = 2.0
STOP_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 5

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# A catalog name, or `package.module:function` made of Python identifiers. Nothing else can
# name a model, so a model name never carries quotes, spaces or shell syntax anywhere.
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
MODEL_RE = re.compile(rf"^(?:[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}|{_IDENT}(?:\.{_IDENT})*:{_IDENT})$")
DEVICE_RE = re.compile(r"^(?:auto|cpu|cuda(?::[0-9]{1,2})?)$")
MAX_BATCH = 4096
# `with torch.device(...)` (meta-device builds and estimates) and scaled_dot_product_attention
# are torch 2.0; JetPack 5.0's torch 1.12/1.13 wheels are refused with that said.
MIN_TORCH = (2, 0)
DECLARED_KEYS = ("launch", "query", "query_timeout_s", "start_timeout_s")
DECLARED_MAX_FAILURES = 5  # consecutive failed queries before a declared model's worker fails
PR_SET_PDEATHSIG = 1  # linux/prctl.h
SERVER_LOG_FILE = "server.log"  # a declared model's launched server: its stdout and stderr


class SpecError(ValueError):
    """spec.json is missing, unreadable or has a bad field."""


class MemoryRefusal(RuntimeError):
    """The model would not fit in the device's free memory."""


# --------------------------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    id: str
    model: str
    batch: int = 1
    scenario: str = "singlestream"
    qps: float | None = None  # server only: target queries (batches) per second
    slo_ms: float | None = None
    window_s: float = 10.0
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # build()/make_input() options
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # of the server scenario's arrivals (the zoo seeds the weights itself)
    warmup: int = 3  # batches run before measuring
    duration_s: float | None = None  # stop by itself after this long (profiling runs)
    # ... but not before this many queries have completed (a p99 of 6 queries is their
    # slowest), and never after max_duration_s
    min_queries: int | None = None
    max_duration_s: float | None = None
    metrics_interval_s: float = 1.0
    launch: str = ""  # token of one launch, echoed in status and metrics
    # A declared (non-torch) model, see edgetop.models.declared: {"launch": argv, "query": argv,
    # "query_timeout_s": s, "start_timeout_s": s}. None: a torch model from the zoo.
    declared: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        problems = _spec_problems(self)
        if problems:
            raise SpecError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> WorkerSpec:
        if not isinstance(data, dict):
            raise SpecError(f"spec must be a JSON object, not {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown spec field(s): {', '.join(map(str, unknown))}")
        missing = [k for k in ("id", "model") if k not in data]
        if missing:
            raise SpecError(f"spec lacks {', '.join(missing)}")
        try:
            return cls(**data)
        except TypeError as exc:  # defensive: __post_init__ reports types itself
            raise SpecError(str(exc)) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_scalar_or_list(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_json_scalar_or_list(v) for v in value)
    return value is None or isinstance(value, (str, bool, int, float))


def _spec_problems(spec: WorkerSpec) -> list[str]:
    p: list[str] = []
    if not isinstance(spec.id, str) or not ID_RE.match(spec.id):
        p.append(f"id {spec.id!r} must match {ID_RE.pattern}")
    if not isinstance(spec.model, str) or not MODEL_RE.match(spec.model):
        p.append(
            f"invalid model name {spec.model!r}: expected a catalog name or package.module:function"
        )
    if not _is_int(spec.batch) or not 1 <= spec.batch <= MAX_BATCH:
        p.append(f"batch {spec.batch!r} must be an integer in 1..{MAX_BATCH}")
    if spec.scenario not in SCENARIOS:
        p.append(f"scenario {spec.scenario!r} must be one of {', '.join(SCENARIOS)}")
    qps_ok = _is_number(spec.qps) and spec.qps > 0  # type: ignore[operator]
    if spec.scenario == "server" and not qps_ok:
        p.append(f"the server scenario needs a positive qps, got {spec.qps!r}")
    elif spec.qps is not None and not qps_ok:
        p.append(f"qps {spec.qps!r} must be a positive number")
    if spec.slo_ms is not None and not (_is_number(spec.slo_ms) and spec.slo_ms > 0):
        p.append(f"slo_ms {spec.slo_ms!r} must be a positive number")
    if not (_is_number(spec.window_s) and 0 < spec.window_s <= 3600):
        p.append(f"window_s {spec.window_s!r} must be in (0, 3600]")
    if not isinstance(spec.model_kwargs, dict) or not all(
        isinstance(k, str) and re.match(rf"^{_IDENT}$", k) and _json_scalar_or_list(v)
        for k, v in spec.model_kwargs.items()
    ):
        p.append("model_kwargs must map identifiers to numbers, strings, booleans or lists")
    if not isinstance(spec.device, str) or not DEVICE_RE.match(spec.device):
        p.append(f"device {spec.device!r} must be auto, cpu, cuda or cuda:N")
    if not _is_int(spec.seed):
        p.append(f"seed {spec.seed!r} must be an integer")
    if not _is_int(spec.warmup) or not 0 <= spec.warmup <= 1000:
        p.append(f"warmup {spec.warmup!r} must be an integer in 0..1000")
    if spec.duration_s is not None and not (_is_number(spec.duration_s) and spec.duration_s > 0):
        p.append(f"duration_s {spec.duration_s!r} must be a positive number")
    if spec.min_queries is not None:
        if not _is_int(spec.min_queries) or not 1 <= spec.min_queries <= 1_000_000:
            p.append(f"min_queries {spec.min_queries!r} must be an integer in 1..1000000")
        if spec.duration_s is None or spec.max_duration_s is None:
            p.append("min_queries needs duration_s and max_duration_s")
    if spec.max_duration_s is not None and not (
        _is_number(spec.max_duration_s)
        and _is_number(spec.duration_s)
        and spec.max_duration_s >= spec.duration_s
    ):
        p.append(f"max_duration_s {spec.max_duration_s!r} must be a number no less than duration_s")
    if not (_is_number(spec.metrics_interval_s) and 0.05 <= spec.metrics_interval_s <= 60):
        p.append(f"metrics_interval_s {spec.metrics_interval_s!r} must be in [0.05, 60]")
    if not isinstance(spec.launch, str) or len(spec.launch) > 64:
        p.append("launch must be a short string")
    if spec.declared is not None:
        p.extend(_declared_problems(spec.declared))
    return p


def _finished(spec: WorkerSpec, queries: int) -> str:
    """Why a run that nobody stopped ended."""
    if spec.min_queries is not None and queries < spec.min_queries:
        return (
            f"max duration of {spec.max_duration_s:g} s reached with {queries} of "
            f"{spec.min_queries} queries"
        )
    return f"duration of {spec.duration_s:g} s reached"


def _is_argv(value: Any, required: bool) -> bool:
    return (
        isinstance(value, list)
        and (bool(value) or not required)
        and all(isinstance(a, str) and "\0" not in a for a in value)
        and (not value or bool(value[0]))
    )


def _declared_problems(declared: Any) -> list[str]:
    if not isinstance(declared, dict):
        return ["declared must be an object with launch and query"]
    p: list[str] = []
    unknown = sorted(set(declared) - set(DECLARED_KEYS))
    if unknown:
        p.append(f"unknown declared field(s): {', '.join(map(str, unknown))}")
    if not _is_argv(declared.get("launch", []), required=False):
        p.append("declared.launch must be a list of strings (an argv)")
    if not _is_argv(declared.get("query"), required=True):
        p.append("declared.query must be a non-empty list of strings (an argv)")
    for key in ("query_timeout_s", "start_timeout_s"):
        value = declared.get(key, 1.0)
        if not (_is_number(value) and 0 < value <= 3600):
            p.append(f"declared.{key} {value!r} must be in (0, 3600]")
    return p


def load_spec(directory: Path) -> WorkerSpec:
    path = directory / SPEC_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from None
    return WorkerSpec.from_dict(data)


# --------------------------------------------------------------------------------------------
# Files: atomic writes, status, bounded metrics
# --------------------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old or the new file, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class StatusFile:
    """status.json: the current state, its reason, and facts learned along the way."""

    def __init__(self, directory: Path, launch: str = "") -> None:
        self.path = directory / STATUS_FILE
        self.fields: dict[str, Any] = {"v": 1, "pid": os.getpid(), "launch": launch}

    def set(self, state: str, reason: str | None = None, **facts: Any) -> None:
        assert state in STATES
        self.fields.update(facts)
        self.fields.update(state=state, reason=reason, t=time.time())
        write_atomic(self.path, json.dumps(self.fields) + "\n")


class MetricsLog:
    """Appends JSON lines; past `max_lines` it rewrites the file with the last `keep_lines`."""

    def __init__(
        self, path: Path, max_lines: int = METRICS_MAX_LINES, keep_lines: int = METRICS_KEEP_LINES
    ) -> None:
        if not 0 < keep_lines < max_lines:
            raise ValueError("need 0 < keep_lines < max_lines")
        self.path = path
        self.max_lines = max_lines
        self._recent: deque[str] = deque(maxlen=keep_lines)
        self._lines = 0
        write_atomic(path, "")  # a new launch starts a new series

    def append(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj)
        self._recent.append(line)
        if self._lines + 1 > self.max_lines:
            write_atomic(self.path, "".join(f"{x}\n" for x in self._recent))
            self._lines = len(self._recent)
        else:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            self._lines += 1


def last_json_line(path: Path, chunk: int = 65536) -> dict[str, Any] | None:
    """The last complete, parseable JSON object line of a file (a line being written is skipped)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - chunk))
            data = handle.read()
    except OSError:
        return None
    for raw in reversed(data.split(b"\n")):
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def tail_lines(path: Path, n: int = LOG_TAIL_LINES, chunk: int = 16384) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - chunk))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.strip()[:300] for line in text.splitlines() if line.strip()][-n:]


# --------------------------------------------------------------------------------------------
# The host: cgroup CPU quota and free memory, RSS
# --------------------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def cgroup_limits() -> dict[str, Any]:
    """The agent's reader of this process's effective cgroup limits (v1 or v2)."""
    try:
        return read_cgroup_limits(_read("/proc/self/cgroup"), _read("/proc/self/mountinfo"))
    except Exception:  # a cgroup layout nobody foresaw must not stop the worker
        return {"cpu_quota": None, "mem_limit": None, "mem_dir": None, "version": None}


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_threads(cpu_quota: float | None, cores: int) -> int:
    """Threads for torch on the CPU: ceil(quota), at most the usable cores, at least 1."""
    if cpu_quota is None or not cpu_quota > 0:
        return max(1, cores)
    return max(1, min(cores, math.ceil(round(cpu_quota, 6))))


def cpu_free_memory(limits: dict[str, Any]) -> tuple[int | None, str]:
    """min(MemAvailable, cgroup limit - cgroup usage), with how it was worked out."""
    candidates: list[int] = []
    parts: list[str] = []
    available = parse_meminfo(_read("/proc/meminfo")).get("MemAvailable")
    if available is not None:
        candidates.append(available)
        parts.append(f"MemAvailable {human_bytes(available)}")
    limit, mem_dir = limits.get("mem_limit"), limits.get("mem_dir")
    if limit is not None:
        version = limits.get("mem_version") or limits.get("version") or 1
        used = cgroup_memory_used(mem_dir, version) if mem_dir else None
        if used is not None:
            candidates.append(max(0, limit - used))
            parts.append(f"cgroup limit {human_bytes(limit)}, {human_bytes(used)} in use")
        else:
            candidates.append(limit)
            parts.append(f"cgroup limit {human_bytes(limit)}")
    return (min(candidates) if candidates else None), "; ".join(parts)


def rss_bytes() -> int | None:
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmRSS:"):
            try:
                return int(line.split()[1]) * 1024
            except (IndexError, ValueError):
                return None
    return None


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # unreachable


# --------------------------------------------------------------------------------------------
# Process liveness, describe / scan / stop (stdlib only: run by the controller over SSH)
# --------------------------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0") if a]


def is_worker_process(pid: int, directory: Path) -> bool:
    """Whether `pid` is a live worker of exactly this deployment directory.

    Checked on /proc/PID/cmdline, so a pid reused by another process is never taken for ours
    (and a zombie, whose cmdline is empty, counts as gone)."""
    args = _cmdline(pid)
    if MODULE not in args:
        return False
    want = os.path.realpath(directory)
    return any(
        args[i] == "--dir" and os.path.realpath(args[i + 1]) == want for i in range(len(args) - 1)
    )


def read_pid(directory: Path) -> int | None:
    text = _read(str(directory / PID_FILE)).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def describe(directory: Path) -> dict[str, Any]:
    """What a deployment directory says, checked against the process table.

    `state` is the status file's, except that a worker whose status says starting/running but
    whose process is gone (OOM-killed, SIGKILLed, host rebooted) is reported as `dead`."""
    directory = Path(directory)
    now = time.time()
    spec = read_json(directory / SPEC_FILE)
    status = read_json(directory / STATUS_FILE)
    if not isinstance(status, dict):
        status = None
    pid = read_pid(directory)
    alive = pid is not None and is_worker_process(pid, directory)
    metrics = last_json_line(directory / METRICS_FILE)
    state = status.get("state") if status else None
    reason = status.get("reason") if status else None
    log_tail: list[str] = []
    if not alive and state in (None, "starting", "running"):
        log_tail = tail_lines(directory / LOG_FILE)
        said = f"status said {state}" if state else "no status was written"
        reason = f"worker{f' (pid {pid})' if pid else ''} is gone and {said}" + (
            f"; log: {' | '.join(log_tail)}" if log_tail else ""
        )
        state = "dead"
    elif state == "failed":
        log_tail = tail_lines(directory / LOG_FILE)
    age = None
    if metrics is not None and isinstance(metrics.get("t"), (int, float)):
        age = round(now - metrics["t"], 3)
    return {
        "id": directory.name,
        "dir": str(directory),
        "state": state,
        "reason": reason,
        "pid": pid,
        "alive": alive,
        "spec": spec if isinstance(spec, dict) else None,
        "status": status,
        "metrics": metrics,
        "metrics_age_s": age,
        "log_tail": log_tail,
        "t": now,
    }


def scan(root: Path) -> list[dict[str, Any]]:
    """Every deployment directory under `root` (none when it does not exist)."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [
        describe(Path(root) / name)
        for name in names
        if ID_RE.match(name) and (Path(root) / name).is_dir()
    ]


def stop_worker(directory: Path, timeout: float = STOP_TIMEOUT_S) -> dict[str, Any]:
    """SIGTERM the deployment's worker (only if /proc says it is ours), wait for it to exit,
    SIGKILL it after `timeout`; leaves status.json saying stopped."""
    directory = Path(directory)
    pid = read_pid(directory)
    killed = False
    if pid is not None and is_worker_process(pid, directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, directory, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed = _wait_gone(pid, directory, 5.0)
    status = read_json(directory / STATUS_FILE)
    status = status if isinstance(status, dict) else {"v": 1, "pid": pid}
    if status.get("state") != "stopped" and not (pid and is_worker_process(pid, directory)):
        if killed:
            reason = f"did not stop within {timeout:g} s of SIGTERM; killed"
        elif status.get("state") == "failed":
            reason = f"stopped after it had failed: {status.get('reason')}"
        else:
            reason = "the worker was already gone"
        status.update(state="stopped", reason=reason, t=time.time())
        write_atomic(directory / STATUS_FILE, json.dumps(status) + "\n")
    return describe(directory)


def _wait_gone(pid: int, directory: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_worker_process(pid, directory):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def resolve_model(name: str) -> Any:
    """The zoo's ModelSpec for a catalog name or `package.module:function`.

    The worker is the one piece of remote/ that runs models, on the host, so it alone may
    import edgetop.models (tests/test_layout.py names this exception); lazily, so that
    `--scan`/`--stop` stay stdlib-only."""
    from edgetop.models.zoo import get_model

    return get_model(name)


def pipeline_blocks(model: Any) -> list:
    """The blocks a pipeline splits a built model into, the ones `edgetop partition` counted
    (models/blockcost.py): the zoo's own, or a user's module cut by torch.fx."""
    from edgetop.models.zoo import UserModel

    if isinstance(model, UserModel):
        from edgetop.models.blockcost import user_blocks

        return user_blocks(model.module, model.example)
    return model.blocks()


def _load_error(model: str, exc: BaseException) -> str:
    try:
        from edgetop.models.errors import ModelError

        model_error: Any = ModelError
    except ImportError:
        model_error = ()
    # The zoo's own errors already say what went wrong with which model.
    text = str(exc).strip() if isinstance(exc, model_error) else _error_text(exc)
    return f"cannot load model {model}: {text[:600]}"


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    activations: int  # at the deployment's batch size, inputs included
    note: str = ""

    @property
    def need(self) -> int:
        return (
            int((self.weights + ACTIVATION_FACTOR * self.activations) * MEMORY_MARGIN)
            + MEMORY_SLACK
        )


def estimate_memory(
    torch: Any, model_spec: Any, batch: int, kwargs: dict[str, Any]
) -> MemoryEstimate:
    """Weights and activations of the model at `batch`, measured on the meta device (nothing
    is allocated): peak live activations by `edgetop.models.features.extract` where it can
    trace the model, else as large as the weights (a guess, said so in `note`)."""
    try:
        from edgetop.models.features import extract

        f = extract(model_spec, **kwargs)
        return MemoryEstimate(f.param_bytes, (f.activation_bytes + f.input_bytes) * batch)
    except Exception as exc:
        with torch.device("meta"):
            model = model_spec.build(**kwargs)
        tensors = [*model.parameters(), *model.buffers()]
        weights = sum(t.numel() * t.element_size() for t in tensors)
        note = f"activations not measurable on meta ({type(exc).__name__}); assumed = weights"
        return MemoryEstimate(weights, weights, note)


# --------------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} edgetop worker: {message}", flush=True)


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


@contextlib.contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped session
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class Runtime:
    """The loaded model on its device, ready to run one batch."""

    def __init__(self, torch: Any, spec: WorkerSpec, status: StatusFile) -> None:
        self.torch = torch
        limits = cgroup_limits()
        self.device = self._device(spec.device)
        self.threads = cpu_threads(limits.get("cpu_quota"), usable_cores())
        torch.set_num_threads(self.threads)
        status.set("starting", device=self.device, threads=self.threads)
        _log(f"model {spec.model} batch {spec.batch} on {self.device}, {self.threads} thread(s)")

        # The zoo calls a user model's function once as it looks the name up: on the meta
        # device here, so that nothing is allocated before the memory check.
        kwargs = dict(spec.model_kwargs)
        with torch.device("meta"):
            estimate = estimate_memory(torch, resolve_model(spec.model), spec.batch, kwargs)
        if self.device.startswith("cuda"):
            free, detail = torch.cuda.mem_get_info(torch.device(self.device))[0], "cuda free"
        else:
            free, detail = cpu_free_memory(limits)
        memory = {"need": estimate.need, "weights": estimate.weights,
                  "activations": estimate.activations, "free": free}  # fmt: skip
        status.set("starting", memory=memory)
        free_text = "unknown" if free is None else human_bytes(free)
        _log(f"memory: need ~{human_bytes(estimate.need)}, free {free_text} ({detail})")
        if free is not None and estimate.need > free:
            raise MemoryRefusal(
                f"not enough memory on {self.device}: {spec.model} at batch {spec.batch} needs "
                f"about {human_bytes(estimate.need)} (weights {human_bytes(estimate.weights)}, "
                f"activations {human_bytes(estimate.activations)} x{ACTIVATION_FACTOR:g}, "
                f"+{round((MEMORY_MARGIN - 1) * 100)}% and {human_bytes(MEMORY_SLACK)} margin)"
                f", only {human_bytes(free)} free ({detail})"
                + (f"; {estimate.note}" if estimate.note else "")
            )

        with torch.device(self.device):  # weights go straight to the device, not via the CPU
            model_spec = resolve_model(spec.model)  # a user model's probe is freed right away
            model = model_spec.build(**kwargs)
        self.model = model.to(self.device).eval()
        self.inputs = tuple(model_spec.make_input(spec.batch, device=self.device, **kwargs))
        self._cuda = self.device.startswith("cuda")

    def _device(self, wanted: str) -> str:
        cuda = self.torch.cuda.is_available()
        if wanted == "auto":
            return "cuda:0" if cuda else "cpu"
        if wanted.startswith("cuda"):
            if not cuda:
                raise RuntimeError(f"device {wanted} was asked for but CUDA is not available")
            return wanted if ":" in wanted else "cuda:0"
        return "cpu"

    def run_batch(self) -> None:
        self.model(*self.inputs)
        if self._cuda:
            self.torch.cuda.synchronize(self.device)

    def device_memory(self) -> int | None:
        if self._cuda:
            return int(self.torch.cuda.memory_allocated(self.device))
        return None


def _die_with_parent() -> None:
    """In the server's child before exec: SIGTERM it when the worker dies, even by SIGKILL,
    so no server outlives its worker. Linux only (prctl); elsewhere a no-op. Safe because the
    worker creates the server from its main thread, which lives as long as the worker."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class DeclaredFailure(RuntimeError):
    """A declared model's server exited, or its queries kept failing."""


class DeclaredRuntime:
    """A declared (non-torch) model: its server, started as this worker's child in its own
    process group when the declaration has a launch command, and its query command, run once
    per batch (argv, no shell, `{batch}` replaced). torch is not imported and no memory check
    is made: the worker cannot see what the server allocates. A query that exits non-zero (or
    times out) is a failed query, still timed by loadgen, counted in the metrics'
    `query_failures`; DECLARED_MAX_FAILURES in a row fail the worker with the query's stderr."""

    device = "external"
    threads = None

    def __init__(self, spec: WorkerSpec, directory: Path, status: StatusFile) -> None:
        declared = spec.declared or {}
        self.query = [a.replace("{batch}", str(spec.batch)) for a in declared["query"]]
        self.timeout = float(declared.get("query_timeout_s", 30.0))
        self.start_timeout = float(declared.get("start_timeout_s", 60.0))
        self.failures = 0  # in a row
        self.failed_total = 0
        self.server: subprocess.Popen | None = None
        self.server_log = directory / SERVER_LOG_FILE
        status.set("starting", device=self.device, threads=None)
        launch = list(declared.get("launch") or [])
        _log(f"declared model {spec.model} batch {spec.batch}; query: {self.query}")
        if launch:
            with open(self.server_log, "ab") as log:
                self.server = subprocess.Popen(
                    launch,
                    cwd=directory,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, stopped with the worker
                    preexec_fn=_die_with_parent,
                )
            status.set("starting", server_pid=self.server.pid)
            _log(f"started the model's server (pid {self.server.pid}): {launch}")

    def check_server(self) -> None:
        if self.server is None:
            return
        code = self.server.poll()
        if code is not None:
            tail = tail_lines(self.server_log, 3)
            raise DeclaredFailure(
                f"the model's server exited with status {code}"
                + (f"; its output ends: {' | '.join(tail)}" if tail else "")
            )

    def query_once(self) -> str | None:
        """Run the query once: None on success, else what went wrong."""
        try:
            done = subprocess.run(
                self.query,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            return f"query timed out after {self.timeout:g} s"
        except OSError as exc:
            return f"query could not run: {_error_text(exc)}"
        if done.returncode == 0:
            return None
        text = done.stderr.decode("utf-8", "replace")
        tail = [line.strip()[:200] for line in text.splitlines() if line.strip()][-3:]
        return f"query exited with status {done.returncode}" + (
            f": {' | '.join(tail)}" if tail else ""
        )

    def wait_ready(self, stop: threading.Event) -> None:
        """Until one query succeeds (the server is up), the server exits or time runs out."""
        deadline = time.monotonic() + self.start_timeout
        while not stop.is_set():
            self.check_server()
            error = self.query_once()
            if error is None:
                return
            if time.monotonic() > deadline:
                raise DeclaredFailure(
                    f"no successful query within {self.start_timeout:g} s; last: {error}"
                )
            stop.wait(0.2)

    def run_batch(self) -> None:
        self.check_server()
        error = self.query_once()
        if error is None:
            self.failures = 0
            return
        self.failures += 1
        self.failed_total += 1
        if self.failures >= DECLARED_MAX_FAILURES:
            self.check_server()  # a dead server is the better reason
            raise DeclaredFailure(f"{self.failures} queries in a row failed; last: {error}")

    def device_memory(self) -> int | None:
        return None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the server's whole process group: SIGTERM, then SIGKILL after `timeout`."""
        if self.server is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.server.pid, sig)
            try:
                self.server.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        _log(f"stopped the model's server (status {self.server.poll()})")


def _metrics_line(
    spec: WorkerSpec, stats: WindowStats, runtime: Runtime | DeclaredRuntime, started: float
) -> dict[str, Any]:
    line: dict[str, Any] = {"v": 1, "t": round(time.time(), 3), "id": spec.id}
    line.update(launch=spec.launch, model=spec.model, scenario=spec.scenario, batch=spec.batch)
    line.update(stats.to_dict())
    line.update(
        device=runtime.device,
        threads=runtime.threads,
        rss=rss_bytes(),
        device_mem=runtime.device_memory(),
        uptime_s=round(time.monotonic() - started, 3),
    )
    if isinstance(runtime, DeclaredRuntime):
        line["query_failures"] = runtime.failed_total
    return line


def run_worker(directory: Path) -> int:
    """Run the deployment in `directory` until SIGTERM/SIGINT; returns the exit status."""
    directory = Path(directory).resolve()
    started = time.monotonic()
    write_atomic(directory / PID_FILE, f"{os.getpid()}\n")
    launch = read_json(directory / SPEC_FILE)
    status = StatusFile(directory, launch.get("launch", "") if isinstance(launch, dict) else "")
    status.set("starting")
    stop = threading.Event()
    with _signals(stop):
        try:
            spec = load_spec(directory)
        except SpecError as exc:
            status.set("failed", f"bad spec: {exc}")
            _log(f"bad spec: {exc}")
            return EXIT_BAD_SPEC
        if spec.declared is not None:  # not torch: no torch import, no memory check
            return _run_declared(spec, status, directory, stop, started)
        try:
            import torch
        except ImportError as exc:
            reason = f"torch is not installed on this host (python {platform.python_version()})"
            status.set("failed", reason)
            _log(f"{reason}: {exc}")
            return EXIT_NO_TORCH
        too_old = _torch_too_old(getattr(torch, "__version__", ""))
        if too_old:
            status.set("failed", too_old)
            _log(too_old)
            return EXIT_NO_TORCH
        try:
            runtime = Runtime(torch, spec, status)
        except MemoryRefusal as exc:
            status.set("failed", str(exc))
            _log(str(exc))
            return EXIT_NO_MEMORY
        except Exception as exc:
            reason = _load_error(spec.model, exc)
            status.set("failed", reason)
            _log(reason)
            return EXIT_FAILED
        return _serve(torch, spec, runtime, status, directory, stop, started)


def _run_declared(
    spec: WorkerSpec, status: StatusFile, directory: Path, stop: threading.Event, started: float
) -> int:
    runtime: DeclaredRuntime | None = None
    try:
        try:
            runtime = DeclaredRuntime(spec, directory, status)
            runtime.wait_ready(stop)
        except Exception as exc:
            text = str(exc) if isinstance(exc, DeclaredFailure) else _error_text(exc)
            reason = f"cannot start declared model {spec.model}: {text[:600]}"
            status.set("failed", reason)
            _log(reason)
            return EXIT_FAILED
        return _serve(None, spec, runtime, status, directory, stop, started)
    finally:
        if runtime is not None:
            runtime.close()


def _torch_too_old(version: str) -> str | None:
    """Why this torch cannot run the zoo (older than MIN_TORCH), or None. NVIDIA's Jetson
    wheels say e.g. '2.1.0a0+41361538.nv23.06'; a version that does not parse is let through."""
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None or (int(found[1]), int(found[2])) >= MIN_TORCH:
        return None
    need = ".".join(map(str, MIN_TORCH))
    return (
        f"torch {version} on this host (python {platform.python_version()}) is too old: "
        f"the model zoo needs torch >= {need}"
    )


def _serve(
    torch: Any,  # None for a declared model
    spec: WorkerSpec,
    runtime: Runtime | DeclaredRuntime,
    status: StatusFile,
    directory: Path,
    stop: threading.Event,
    started: float,
) -> int:
    window = SlidingWindow(spec.window_s, spec.slo_ms)
    scenario = make_scenario(
        spec.scenario,
        runtime.run_batch,
        batch=spec.batch,
        qps=spec.qps,
        seed=spec.seed,
        window=window,
        sleep=stop.wait,
    )
    metrics = MetricsLog(directory / METRICS_FILE)
    done = threading.Event()

    def report() -> None:
        metrics.append(_metrics_line(spec, window.stats(time.monotonic()), runtime, started))

    def reporter() -> None:
        while not done.wait(spec.metrics_interval_s):
            try:
                report()
            except OSError as exc:  # a full disk must not kill the inference loop
                _log(f"cannot write metrics: {exc}")

    thread = threading.Thread(target=reporter, name="edgetop-metrics", daemon=True)
    try:
        with torch.inference_mode() if torch is not None else contextlib.nullcontext():
            for _ in range(spec.warmup):
                if stop.is_set():
                    break
                runtime.run_batch()
            if stop.is_set():  # asked to stop while it was still loading
                status.set("stopped", "stop requested before it was running", queries=0)
                _log("stopped before running")
                return EXIT_STOPPED
            # Everything loaded so far lives as long as the worker: keep the cyclic garbage
            # collector from rescanning it (a full collection after `import torch` takes
            # ~100 ms, which would land in some query's latency).
            gc.collect()
            gc.freeze()
            status.set("running")
            _log("running")
            thread.start()
            scenario.run(
                duration_s=spec.duration_s,
                should_stop=stop.is_set,
                min_queries=spec.min_queries,
                max_duration_s=spec.max_duration_s,
            )
    except Exception as exc:
        oom = isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()
        text = str(exc)[:600] if isinstance(exc, DeclaredFailure) else _error_text(exc)
        reason = ("out of memory while running: " if oom else "inference failed: ") + text
        status.set("failed", reason)
        _log(reason)
        return EXIT_FAILED
    finally:
        done.set()
        if thread.is_alive():
            thread.join()
    with contextlib.suppress(OSError):
        report()  # the final window
    reason = "stop requested" if stop.is_set() else _finished(spec, scenario.queries)
    status.set("stopped", reason, queries=scenario.queries)
    _log(f"stopped: {reason}")
    return EXIT_STOPPED


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--describe", action="store_true", help="print the state of --dir")
    action.add_argument("--stop", action="store_true", help="stop the worker of --dir")
    action.add_argument("--scan", metavar="ROOT", help="print every deployment under ROOT")
    parser.add_argument("--dir", help="the deployment directory")
    parser.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, help="for --stop")
    args = parser.parse_args(argv)
    if args.scan is None and not args.dir:
        parser.error("--dir is required (or --scan ROOT)")
    return args


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.scan is not None:
        _print_json(scan(Path(args.scan)))
        return 0
    directory = Path(args.dir)
    if args.describe:
        _print_json(describe(directory))
        return 0
    if args.stop:
        _print_json(stop_worker(directory, args.timeout))
        return 0
    if not directory.is_dir():
        print(f"edgetop worker: {directory} is not a directory", file=sys.stderr)
        return EXIT_BAD_SPEC
    return run_worker(directory)


if __name__ == "__main__":
    sys.exit(main())
