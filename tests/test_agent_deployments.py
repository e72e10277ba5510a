"""The agent forwards the host's inference workers with its telemetry."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentlines import sample

from edgetop.remote.agent import Agent, last_json_line, scan_deployments, scan_pipelines
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
            "busy": 0.43,
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
    assert found["alive"]["busy"] == 0.43  # forwarded for the scheduler's co-runner columns
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


def make_stage(root: Path, label: str, index: int, state: str, **status: object) -> Path:
    """A stage directory as edgetop.remote.stage leaves it (status.json carries the range)."""
    directory = root / label / str(index)
    directory.mkdir(parents=True)
    fields = {"state": state, "model": "mobilenetv2", "first": index * 12, "stop": 12 + index * 8}
    (directory / "status.json").write_text(json.dumps({**fields, **status}))
    return directory


def test_pipeline_stages_are_reported_with_their_pipeline_index_and_blocks(
    tmp_path: Path,
) -> None:
    root = tmp_path / "pipelines"
    head = make_stage(root, "mobilenetv2-1a2b", 0, "running", port=40001, next="127.0.0.1:40002")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "--dir", str(head)]
    )
    try:
        (head / "pid").write_text(str(proc.pid))
        for _ in range(500):  # until the exec has happened
            if str(head).encode() in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
                break
            time.sleep(0.01)
        window = {"v": 1, "model": "mobilenetv2", "first": 0, "stop": 12, "p50_ms": 8.5}
        window.update(p90_ms=9.0, p99_ms=12.0, throughput=118.0, count=590, t=7.0, rss=1 << 20)
        (head / "metrics.jsonl").write_text(json.dumps(window) + "\n")
        gone = make_stage(root, "mobilenetv2-1a2b", 1, "running")
        (gone / "pid").write_text("999999")
        make_stage(root, "mobilenetv2-0ld", 0, "stopped")
        (root / "mobilenetv2-1a2b" / "notes").mkdir()  # not a stage index
        (root / "bad label!").mkdir()

        found = {d["id"]: d for d in scan_pipelines(str(root))}
        # The agent's sample carries them beside the workers, under `deployments`.
        agent = Agent(1.0, deployments_dir=str(tmp_path / "none"), pipelines_dir=str(root))
        listed = agent.sample(1)["deployments"]
    finally:
        proc.kill()
        proc.wait()
    assert set(found) == {"mobilenetv2-1a2b/0", "mobilenetv2-1a2b/1"}
    assert [d["id"] for d in listed] == ["mobilenetv2-1a2b/0", "mobilenetv2-1a2b/1"]
    first = found["mobilenetv2-1a2b/0"]
    assert first["state"] == "running" and first["pipeline"] == "mobilenetv2-1a2b"
    assert (first["stage"], first["blocks"], first["model"]) == (0, "0:12", "mobilenetv2")
    assert (first["p50_ms"], first["p99_ms"], first["throughput"]) == (8.5, 12.0, 118.0)
    assert found["mobilenetv2-1a2b/1"]["state"] == "dead"
    assert found["mobilenetv2-1a2b/1"]["blocks"] == "12:20"

    parsed = parse_line(sample(1, deployments=list(found.values())))
    assert isinstance(parsed, Sample)
    head_reading = parsed.deployments[0]
    assert (head_reading.pipeline, head_reading.stage, head_reading.blocks) == (
        "mobilenetv2-1a2b",
        0,
        "0:12",
    )
    assert head_reading.p99_ms == 12.0 and head_reading.batch is None
    assert scan_pipelines(str(tmp_path / "missing")) == []
