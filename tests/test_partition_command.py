"""`edgetop partition`: plans over simulated and local hosts, figures' sources, bad input."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edgetop.core.config import HostConfig
from edgetop.core.partition import PartitionPlan, Stage
from edgetop.tui import partition_command
from edgetop.tui.cli import build_parser, main
from edgetop.tui.partition_command import PER_CORE_GFLOPS, capability

MIB = 1 << 20
FLEET = """
[[host]]
name = "a100-1"
transport = "sim"
device = "a100-40gb"

[[host]]
name = "xavier-1"
transport = "sim"
device = "jetson-agx-xavier"

[[host]]
name = "nano-1"
transport = "sim"
device = "jetson-orin-nano"
"""
LOCAL = '\n[[host]]\nname = "me"\ntransport = "local"\nkind = "cpu"\npython = "{python}"\n'


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(FLEET)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["partition", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_plan_covers_every_block_with_sources(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run_json(capsys, "mobilenetv2", "--on", "nano-1,xavier-1", "--hosts", str(fleet),
                    "--option", "image_size=64")  # fmt: skip
    assert data["model"] == "mobilenetv2" and data["objective"] == "throughput"
    assert data["blocks"] == 20
    stages = data["stages"]
    assert stages[0]["first"] == 0 and stages[-1]["stop"] == 20
    for before, after in itertools.pairwise(stages):
        assert before["stop"] == after["first"]
    for stage in stages:
        assert set(stage) >= {"host", "first", "stop", "blocks", "compute_ms", "transfer_ms",
                              "memory_bytes"}  # fmt: skip
        assert len(stage["blocks"]) == stage["stop"] - stage["first"]
    assert stages[-1]["transfer_ms"] == 0.0
    assert data["bottleneck_ms"] > 0 and data["latency_ms"] >= data["bottleneck_ms"]
    hosts = {h["host"]: h for h in data["hosts"]}
    assert hosts["xavier-1"]["compute_source"].startswith("device profile jetson-agx-xavier")
    assert hosts["nano-1"]["memory_source"] == "device profile jetson-orin-nano"
    assert data["link"] == {"bandwidth_bytes_s": 125e6, "latency_s": 0.0005}
    assert "stages" in data["amp4ec"]  # AMP4EC's split, evaluated the same way


def test_latency_objective_and_link_flags(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["resnet50", "--on", "xavier-1,a100-1", "--hosts", str(fleet), "--batch", "4",
            "--option", "image_size=64"]  # fmt: skip
    fast = run_json(capsys, *base, "--objective", "latency", "--link-mbps", "100000")
    slow = run_json(capsys, *base, "--objective", "latency", "--link-mbps", "1", "--link-ms", "50")
    assert fast["objective"] == "latency" and fast["batch"] == 4
    assert slow["link"] == {"bandwidth_bytes_s": 125e3, "latency_s": 0.05}
    assert slow["input_ms"] > fast["input_ms"]
    assert slow["latency_ms"] >= fast["latency_ms"]


def test_the_human_plan_names_stages_and_totals(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["partition", "mobilenetv2", "--on", "a100-1,xavier-1", "--hosts", str(fleet)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "mobilenetv2: 20 blocks, batch 1, objective throughput" in text
    assert "features.0" in text and "head" in text
    assert "bottleneck" in text and "samples/s" in text
    assert "AMP4EC's proportional split" in text


def write_profile(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = ["host", "model", "batch", "options", "gflops", "throughput"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def test_profile_rows_replace_the_estimate(
    fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "profile.csv"
    row = {"host": "nano-1", "model": "mobilenetv2", "options": "", "gflops": 0.6}
    write_profile(profile, [
        {**row, "batch": 1, "throughput": 50.0},
        {**row, "batch": 8, "throughput": 80.0},
        {**row, "batch": 1, "throughput": 999.0, "options": "image_size=64"},  # other options
        {**row, "host": "xavier-1", "batch": 1, "throughput": ""},  # a failed run
    ])  # fmt: skip
    data = run_json(capsys, "mobilenetv2", "--on", "nano-1,xavier-1", "--hosts", str(fleet),
                    "--profile", str(profile))  # fmt: skip
    hosts = {h["host"]: h for h in data["hosts"]}
    assert hosts["nano-1"]["gflops_per_s"] == pytest.approx(50.0 * 0.6)  # the batch-1 row
    assert hosts["nano-1"]["compute_source"].startswith("profile: 50 samples/s at batch 1")
    assert hosts["xavier-1"]["compute_source"].startswith("device profile")
    data = run_json(capsys, "mobilenetv2", "--on", "nano-1", "--hosts", str(fleet),
                    "--profile", str(profile), "--batch", "4")  # fmt: skip
    assert data["hosts"][0]["gflops_per_s"] == pytest.approx(80.0 * 0.6)  # no batch-4 row: best


def test_a_model_too_big_for_every_host_exits_1(
    fleet: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    argv = ["partition", "tiny_models:terabyte", "--on", "xavier-1,a100-1", "--hosts", str(fleet)]
    assert main(argv) == 1
    assert "no split fits: block 0 (linear) alone needs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["mobilenetv2", "--on", "a100-1,nope"], "--on: no host nope"),
        (["mobilenetv2", "--on", "a100-1,a100-1"], "named twice"),
        (["mobilenetv2", "--on", " , "], "no host named"),
        (["no-such-model", "--on", "a100-1"], "unknown model 'no-such-model'"),
        (["mobilenetv2", "--on", "a100-1", "--option", "bogus"], "--option"),
        (["mobilenetv2", "--on", "a100-1", "--option", "seq_len=3"], "takes no option seq_len"),
        (["mobilenetv2", "--on", "a100-1", "--deploy"], "simulated hosts cannot run"),
        (["mobilenetv2", "--on", "a100-1", "--profile", "/no/such.csv"], "--profile"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    fleet: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["partition", *extra, "--hosts", str(fleet)]) == 2
    assert message in capsys.readouterr().err


def test_a_csv_that_is_not_a_profile_is_refused(
    fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    argv = ["partition", "mobilenetv2", "--on", "a100-1", "--hosts", str(fleet)]
    assert main([*argv, "--profile", str(bad)]) == 2
    assert "not an edgetop profile CSV" in capsys.readouterr().err


def test_objective_choices_are_checked_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["partition", "m", "--on", "a", "--objective", "energy"])


def real_host(name: str = "box") -> HostConfig:
    return HostConfig(name=name, transport="ssh", kind="cpu", address="10.0.0.1")


def hello(**fields: Any) -> SimpleNamespace:
    base = {"cpu_quota": None, "cpu_count": None, "mem_limit": None, "mem_total": None}
    return SimpleNamespace(hello=SimpleNamespace(**{**base, **fields}))


def test_a_real_host_is_sized_by_its_cgroup_first() -> None:
    view = hello(cpu_quota=0.4, cpu_count=16, mem_limit=512 * MIB, mem_total=64 << 30)
    cap = capability(real_host(), view, [], "m", "", 1)  # type: ignore[arg-type]
    assert cap.device.gflops_per_s == pytest.approx(0.4 * PER_CORE_GFLOPS)
    assert cap.device.memory_bytes == 512 * MIB
    assert "cgroup quota" in cap.compute_source and cap.memory_source == "cgroup limit"
    view = hello(cpu_count=16, mem_total=64 << 30)
    cap = capability(real_host(), view, [], "m", "", 1)  # type: ignore[arg-type]
    assert cap.device.gflops_per_s == pytest.approx(16 * PER_CORE_GFLOPS)
    assert cap.memory_source == "host memory"


def test_a_real_host_without_figures_is_an_error() -> None:
    with pytest.raises(ValueError, match="did not answer"):
        capability(real_host(), None, [], "m", "", 1)
    with pytest.raises(ValueError, match="neither a CPU quota nor a core count"):
        capability(real_host(), hello(mem_total=1), [], "m", "", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no memory figure"):
        capability(real_host(), hello(cpu_count=2), [], "m", "", 1)  # type: ignore[arg-type]


def test_a_local_host_answers_with_its_hello(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(FLEET + LOCAL.format(python=sys.executable))
    data = run_json(capsys, "mobilenetv2", "--on", "me,a100-1", "--hosts", str(path),
                    "--option", "image_size=32")  # fmt: skip
    me = data["hosts"][0]
    assert me["host"] == "me" and me["compute_source"].startswith("CPU: ")
    assert me["memory_source"] in ("cgroup limit", "host memory") and me["memory_bytes"] > 0


def test_deploy_hook_runs_the_plan_through_core_pipeline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    class FakePipeline:
        async def run(self, state: Any, *, requests: int, samples: int) -> Any:
            seen.update(shape=tuple(state.shape), requests=requests, samples=samples)
            stats = SimpleNamespace(p50_ms=12.5, p99_ms=20.0, throughput=160.0)
            return SimpleNamespace(stats=stats)

        async def close(self) -> None:
            seen["closed"] = True

    async def fake_deploy(config: Any, plan: PartitionPlan, **kwargs: Any) -> FakePipeline:
        seen.update(plan=plan, options=kwargs["options"])
        return FakePipeline()

    import edgetop.core.pipeline as pipeline

    monkeypatch.setattr(pipeline, "deploy_pipeline", fake_deploy)
    plan = PartitionPlan("mobilenetv2", "throughput", 2, (Stage("me", 0, 20, 1.0, 0.0, 1),),
                         1.0, 1.0, 2000.0)  # fmt: skip
    args = SimpleNamespace(requests=3, accept_new_hosts=False)
    from rich.console import Console

    out, err = Console(), Console(stderr=True)
    code = partition_command.deploy_and_measure(None, plan, {"image_size": 32}, args, out, err)  # type: ignore[arg-type]
    assert code == 0
    assert seen["plan"] is plan and seen["options"] == {"image_size": 32} and seen["closed"]
    assert seen["shape"] == (2, 3, 32, 32) and seen["requests"] == 3 and seen["samples"] == 2
    assert "p50 12.50 ms" in capsys.readouterr().out


def test_deploy_runs_the_plan_as_real_stage_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--deploy` end to end on two local hosts: stage processes start, answer, are stopped."""
    monkeypatch.setenv("HOME", str(tmp_path))  # the stages' state and code cache
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(
        "".join(LOCAL.format(python=sys.executable).replace('"me"', f'"{n}"') for n in "ab")
    )
    argv = ["partition", "mobilenetv2", "--on", "a,b", "--hosts", str(hosts),
            "--option", "image_size=64", "--deploy", "--requests", "3"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "measured over 3 request(s): p50 " in out and "p50 - " not in out
    pipelines = tmp_path / ".local" / "state" / "edgetop" / "pipelines"
    statuses = [json.loads(p.read_text()) for p in pipelines.rglob("status.json")]
    assert statuses and all(s["state"] != "running" for s in statuses)  # all stopped again


def test_deploy_repartitions_once_when_a_stage_dies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import edgetop.core.pipeline as pipeline

    closed: list[str] = []

    class Pipe:
        def __init__(self, name: str, hosts: tuple[str, ...], broken: bool) -> None:
            self.name, self.broken = name, broken
            self.stages = [SimpleNamespace(spec=SimpleNamespace(host=h)) for h in hosts]

        async def run(self, state: Any, *, requests: int, samples: int) -> Any:
            if self.broken:
                raise pipeline.PipelineBroken("stage 1 on b: connection lost")
            return SimpleNamespace(stats=SimpleNamespace(p50_ms=5.0, p99_ms=9.0, throughput=50.0))

        async def recover(self) -> Pipe:
            closed.append(self.name)  # recover closes the broken one
            return Pipe("survivor", ("a",), False)

        async def close(self) -> None:
            closed.append(self.name)

    async def fake_deploy(config: Any, plan: PartitionPlan, **kwargs: Any) -> Pipe:
        return Pipe("first", ("a", "b"), True)

    monkeypatch.setattr(pipeline, "deploy_pipeline", fake_deploy)
    plan = PartitionPlan("mobilenetv2", "throughput", 1,
                         (Stage("a", 0, 10, 1.0, 0.1, 1), Stage("b", 10, 20, 1.0, 0.0, 1)),
                         1.0, 2.1, 1000.0)  # fmt: skip
    from rich.console import Console

    args = SimpleNamespace(requests=3, accept_new_hosts=False)
    code = partition_command.deploy_and_measure(
        None,  # type: ignore[arg-type]
        plan, {"image_size": 32}, args, Console(), Console(stderr=True),
    )  # fmt: skip
    assert code == 0 and closed == ["first", "survivor"]
    captured = capsys.readouterr()
    assert "connection lost; repartitioning" in captured.err
    assert "running again on a" in captured.err and "p50 5.00 ms" in captured.out
