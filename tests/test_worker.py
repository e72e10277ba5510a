"""The inference worker as a real local process (no SSH): metrics, status, stop, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edgetop.remote import worker
from edgetop.remote.deploy import code_bundle
from edgetop.remote.worker import MetricsLog, SpecError, WorkerSpec

TESTS = Path(__file__).resolve().parent
START_TIMEOUT_S = 60.0


def make_dir(tmp_path: Path, **spec: Any) -> Path:
    directory = tmp_path / str(spec["id"])
    directory.mkdir()
    (directory / "spec.json").write_text(json.dumps(spec))
    return directory


def start(directory: Path, *python_flags: str, pythonpath: str = str(TESTS)) -> subprocess.Popen:
    log = open(directory / "worker.log", "ab")  # noqa: SIM115  (the child keeps it)
    return subprocess.Popen(
        [sys.executable, *python_flags, "-m", worker.MODULE, "--dir", str(directory)],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": pythonpath},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def status(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "status.json").read_text())


def wait_state(directory: Path, proc: subprocess.Popen, *states: str) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        current = worker.read_json(directory / "status.json")
        if isinstance(current, dict) and current.get("state") in states:
            return current
        if proc.poll() is not None and not (directory / "status.json").exists():
            break
        time.sleep(0.05)
    log = (directory / "worker.log").read_text(errors="replace")
    raise AssertionError(f"worker never reached {states}; log:\n{log}")


def metrics(directory: Path) -> list[dict[str, Any]]:
    text = (directory / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_worker_reports_metrics_and_stops_on_sigterm(tmp_path: Path, procs: list) -> None:
    directory = make_dir(
        tmp_path, id="w1", model="tiny_models:tiny", batch=4, scenario="server", qps=200,
        slo_ms=50, window_s=5, metrics_interval_s=0.25,
    )  # fmt: skip
    proc = start(directory)
    procs.append(proc)
    running = wait_state(directory, proc, "running", "failed")
    assert running["state"] == "running", running
    assert int((directory / "pid").read_text()) == proc.pid == running["pid"]
    assert running["device"] == "cpu" and running["threads"] >= 1
    assert 0 < running["memory"]["need"] < running["memory"]["free"]

    time.sleep(2.0)
    lines = metrics(directory)
    assert len(lines) >= 4
    last = lines[-1]
    assert last["id"] == "w1" and last["scenario"] == "server" and last["batch"] == 4
    assert last["device"] == "cpu" and last["threads"] == running["threads"]
    assert last["count"] > 50  # ~200 queries per second
    assert 0 < last["min_ms"] <= last["p50_ms"] <= last["p90_ms"] <= last["p99_ms"] <= 50 * 20
    assert last["throughput"] == pytest.approx(4 * last["qps"])
    assert last["qps"] > 50  # ~200 (the CPU is shared: tests assert behaviour, not timings)
    assert 0 <= last["slo_compliance"] <= 1
    # Busy share: its batches' execution time over the window, never the queueing too.
    assert 0 < last["busy"] <= 1
    assert last["rss"] > 10 << 20
    assert last["t"] == pytest.approx(time.time(), abs=5)
    assert [line["count"] for line in lines] != [lines[0]["count"]] * len(lines)  # moving

    described = worker.describe(directory)
    assert described["state"] == "running" and described["alive"]
    assert described["metrics"]["t"] >= last["t"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == worker.EXIT_STOPPED
    final = status(directory)
    assert final["state"] == "stopped" and final["reason"] == "stop requested"
    assert final["queries"] >= last["total_queries"]
    gone = worker.describe(directory)
    assert gone["state"] == "stopped" and not gone["alive"]


def test_worker_stops_by_itself_after_its_duration(tmp_path: Path, procs: list) -> None:
    directory = make_dir(
        tmp_path, id="w2", model="tiny_models:tiny", scenario="offline", batch=8, duration_s=0.5,
        metrics_interval_s=0.1,
    )  # fmt: skip
    proc = start(directory)
    procs.append(proc)
    assert proc.wait(timeout=START_TIMEOUT_S) == worker.EXIT_STOPPED
    assert status(directory)["reason"] == "duration of 0.5 s reached"
    last = metrics(directory)[-1]
    assert last["scenario"] == "offline" and last["throughput"] > 0
    assert last["total_samples"] == 8 * last["total_queries"]


def test_a_run_with_min_queries_says_when_the_hard_limit_cut_it_short(
    tmp_path: Path, procs: list
) -> None:
    directory = make_dir(
        tmp_path, id="w3", model="tiny_models:tiny", scenario="offline", batch=8, duration_s=0.2,
        min_queries=10**6, max_duration_s=0.6, metrics_interval_s=0.1,
    )  # fmt: skip
    proc = start(directory)
    procs.append(proc)
    assert proc.wait(timeout=START_TIMEOUT_S) == worker.EXIT_STOPPED
    final = status(directory)
    assert final["reason"] == (
        f"max duration of 0.6 s reached with {final['queries']} of 1000000 queries"
    )


@pytest.mark.parametrize(
    ("model", "code", "reason"),
    [
        ("tiny_models:terabyte", worker.EXIT_NO_MEMORY, "not enough memory on cpu"),
        ("tiny_models:broken", worker.EXIT_FAILED, "RuntimeError: this model cannot be built"),
        ("tiny_models:missing", worker.EXIT_FAILED, "cannot load model tiny_models:missing"),
    ],
)
def test_worker_refuses_what_it_cannot_run(
    tmp_path: Path, procs: list, model: str, code: int, reason: str
) -> None:
    directory = make_dir(tmp_path, id="w3", model=model)
    proc = start(directory)
    procs.append(proc)
    assert proc.wait(timeout=START_TIMEOUT_S) == code
    final = status(directory)
    assert final["state"] == "failed" and reason in final["reason"]
    if model.endswith("terabyte"):  # the numbers are in the reason: 1 TiB weights
        assert "weights 1024.0 GiB" in final["reason"] and "MemAvailable" in final["reason"]
    assert worker.describe(directory)["state"] == "failed"


def test_a_hostile_model_name_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    directory = make_dir(tmp_path, id="w4", model=f"tiny_models:$(touch {marker});touch {marker}")
    proc = start(directory)
    assert proc.wait(timeout=30) == worker.EXIT_BAD_SPEC
    assert "bad spec: invalid model name" in status(directory)["reason"]
    assert not marker.exists()


def test_torch_missing_is_reported_with_exit_status_3(tmp_path: Path) -> None:
    # `python -S` has no site-packages, so no torch; the shipped bundle provides edgetop.
    code = tmp_path / "code"
    for rel, data in code_bundle().files.items():
        (code / rel).parent.mkdir(parents=True, exist_ok=True)
        (code / rel).write_bytes(data)
    directory = make_dir(tmp_path, id="w5", model="tiny_models:tiny")
    proc = start(directory, "-S", pythonpath=str(code))
    assert proc.wait(timeout=30) == worker.EXIT_NO_TORCH
    version = ".".join(map(str, sys.version_info[:3]))
    assert status(directory)["reason"] == f"torch is not installed on this host (python {version})"


# -- pieces ------------------------------------------------------------------------------------


def test_metrics_file_stays_bounded(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl", max_lines=10, keep_lines=4)
    for i in range(95):
        log.append({"i": i})
        lines = (tmp_path / "m.jsonl").read_text().splitlines()
        assert len(lines) <= 10
        assert json.loads(lines[-1]) == {"i": i}
    assert worker.last_json_line(tmp_path / "m.jsonl") == {"i": 94}


def test_last_json_line_skips_a_line_being_written(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert worker.last_json_line(path) == {"a": 2}
    assert worker.last_json_line(tmp_path / "none") is None


@pytest.mark.parametrize(
    ("quota", "cores", "threads"),
    [
        (None, 2, 2),
        (1.0, 2, 1),
        (1.5, 2, 2),
        (0.4, 8, 1),
        (8.0, 2, 2),
        (2.5, 4, 3),
        (2.0000000001, 4, 2),
    ],
)
def test_cpu_threads_follow_the_cgroup_quota(quota: float | None, cores: int, threads: int) -> None:
    assert worker.cpu_threads(quota, cores) == threads


def test_cpu_free_memory_is_the_tighter_of_meminfo_and_the_cgroup() -> None:
    free, detail = worker.cpu_free_memory({"mem_limit": None})
    assert free is not None and free > 0 and "MemAvailable" in detail
    tight, detail = worker.cpu_free_memory({"mem_limit": 64 << 20, "mem_dir": None})
    assert tight == 64 << 20 and "cgroup limit 64.0 MiB" in detail


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"id": "../etc"}, "id"),
        ({"id": "a b"}, "id"),
        ({"model": "a'; touch X; '"}, "invalid model name"),
        ({"model": "mod:fn()"}, "invalid model name"),
        ({"batch": 0}, "batch"),
        ({"batch": True}, "batch"),
        ({"scenario": "server"}, "positive qps"),
        ({"scenario": "multistream"}, "scenario"),
        ({"slo_ms": -1}, "slo_ms"),
        ({"device": "tpu"}, "device"),
        ({"model_kwargs": {"bad key": 1}}, "model_kwargs"),
        ({"nonsense": 1}, "unknown spec field"),
        ({"duration_s": 5, "max_duration_s": 50, "min_queries": 0}, "min_queries"),
        ({"duration_s": 5, "max_duration_s": 50, "min_queries": 2.5}, "min_queries"),
        ({"min_queries": 10}, "min_queries needs duration_s and max_duration_s"),
        ({"duration_s": 5, "max_duration_s": 2}, "max_duration_s"),
    ],
)
def test_spec_validation(fields: dict[str, Any], problem: str) -> None:
    data = {"id": "ok", "model": "resnet50", **fields}
    with pytest.raises(SpecError, match=problem):
        WorkerSpec.from_dict(data)


def test_spec_round_trips() -> None:
    spec = WorkerSpec(
        id="r1", model="pkg.mod:fn", batch=8, scenario="server", qps=5.5, slo_ms=20,
        model_kwargs={"image_size": 64, "layers": [1, 2]}, device="cuda:1",
    )  # fmt: skip
    assert WorkerSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_a_worker_that_vanished_is_dead_and_a_reused_pid_is_not_ours(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, id="w6", model="tiny_models:tiny")
    other = subprocess.Popen(["sleep", "30"])
    try:
        (directory / "pid").write_text(f"{other.pid}\n")
        (directory / "status.json").write_text(json.dumps({"state": "running", "pid": other.pid}))
        (directory / "worker.log").write_text("Killed\n")
        assert not worker.is_worker_process(other.pid, directory)
        described = worker.describe(directory)
        assert described["state"] == "dead" and not described["alive"]
        assert "is gone and status said running" in described["reason"]
        assert "Killed" in described["reason"]
        # stop() must not signal a process that is not this deployment's worker
        stopped = worker.stop_worker(directory, timeout=1)
        assert other.poll() is None
        assert stopped["state"] == "stopped" and "already gone" in stopped["reason"]
    finally:
        other.kill()
        other.wait()
    assert [d["id"] for d in worker.scan(tmp_path)] == ["w6"]
    assert worker.scan(tmp_path / "missing") == []
