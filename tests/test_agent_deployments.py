"""The agent forwards the host's inference workers with its telemetry."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentlines import sample

from edgetop.remote.agent import last_json_line, scan_deployments
from edgetop.remote.protocol import Sample, parse_line


def make(root: Path, name: str, state: str, **status: object) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "spec.json").write_text(
        json.dumps(
            {"id": name, "model": "resnet50", "batch": 8, "scenario": "singlestream", "slo_ms": 50}
        )
    )
    (directory / "status.json").write_text(json.dumps({"state": state, **status}))
    return directory


@pytest.fixture
def worker_like(tmp_path: Path) -> Iterator[Path]:
    """A live process whose command line names a deployment directory, as a worker's does."""
    directory = make(tmp_path / "deployments", "alive", "running")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "--dir", str(directory)]
    )
    (directory / "pid").write_text(str(proc.pid))
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    for _ in range(500):  # until the exec has happened (a loaded machine can lag)
        if str(directory).encode() in cmdline.read_bytes():
            break
        time.sleep(0.01)
    yield directory
    proc.kill()
    proc.wait()


def test_running_dead_failed_and_stopped_workers(worker_like: Path) -> None:
    root = worker_like.parent
    metrics = [
        {
            "p50_ms": 10.0,
            "p90_ms": 12.0,
            "p99_ms": 20.0,
            "throughput": 400.0,
            "count": 50,
            "t": 5.0,
        },
        {
            "p50_ms": 11.0,
            "p90_ms": 13.0,
            "p99_ms": 21.0,
            "throughput": 390.0,
            "count": 60,
            "t": 6.0,
        },
    ]
    (worker_like / "metrics.jsonl").write_text(
        "".join(json.dumps(m) + "\n" for m in metrics) + '{"p50_ms": 1'  # a line mid-write
    )
    gone = make(root, "gone", "running")
    (gone / "pid").write_text("999999")
    make(root, "oom", "failed", reason="not enough memory on cpu")
    make(root, "old", "stopped")
    (root / "not a deployment").mkdir()

    found = {d["id"]: d for d in scan_deployments(str(root))}
    assert set(found) == {"alive", "gone", "oom"}
    assert found["alive"]["state"] == "running", found
    assert found["alive"]["p50_ms"] == 11.0 and found["alive"]["model"] == "resnet50"
    assert found["gone"]["state"] == "dead"
    assert found["oom"]["state"] == "failed" and "memory" in found["oom"]["reason"]

    line = sample(1, deployments=list(found.values()))
    parsed = parse_line(line)
    assert isinstance(parsed, Sample)
    alive = next(d for d in parsed.deployments if d.id == "alive")
    assert alive.p99_ms == 21.0 and alive.batch == 8 and alive.slo_ms == 50


def test_a_pid_reused_by_another_process_is_not_the_worker(tmp_path: Path) -> None:
    directory = make(tmp_path, "reused", "running")
    (directory / "pid").write_text("1")  # init: alive, but not this deployment's worker
    assert scan_deployments(str(tmp_path))[0]["state"] == "dead"


def test_missing_directory_and_files_are_quietly_empty(tmp_path: Path) -> None:
    assert scan_deployments(str(tmp_path / "none")) == []
    assert last_json_line(str(tmp_path / "none.jsonl")) is None
