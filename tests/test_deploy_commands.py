"""`edgetop deploy | ps | stop` through the CLI on a simulated fleet and a temporary state dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fleets import SIM_PAIR
from test_recommend_command import tiny_predictor

from edgetop.core.statestore import StateStore
from edgetop.tui.cli import main


@pytest.fixture(autouse=True)
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "weights.npz"
    tiny_predictor().save(path)
    monkeypatch.setenv("EDGETOP_WEIGHTS", str(path))
    return path


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(SIM_PAIR.format(jetson="xavier-1"))
    state = tmp_path / "state"

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--hosts", str(hosts), "--state-dir", str(state)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    run.state = StateStore(state)  # type: ignore[attr-defined]
    return run


def ps(run: Any) -> dict[str, dict[str, Any]]:
    code, out, _ = run("ps", "--json")
    assert code == 0
    return {d["id"]: d for d in json.loads(out)["deployments"]}


def test_deploy_ps_stop_ps(run: Any) -> None:
    code, out, err = run("deploy", "resnet50", "--batch", "8", "--slo", "500", "--host", "xavier-1")
    assert code == 0, err
    assert out.startswith("resnet50-1: running on xavier-1/gpu0 (p50 ")
    assert "operator override; recommended was" in out

    listed = ps(run)["resnet50-1"]
    assert listed["status"] == "running" and listed["where"] == "xavier-1/gpu0"
    assert {
        "id",
        "model",
        "batch",
        "scenario",
        "slo_ms",
        "where",
        "status",
        "p50_ms",
        "p99_ms",
        "throughput",
        "reason",
    } <= listed.keys()
    # Measured by this `ps` process, which placed the sim deployment again.
    assert listed["p99_ms"] > 0 and listed["throughput"] > 0

    code, out, _ = run("stop", "resnet50-1")
    assert code == 0 and out.strip() == "resnet50-1: stopped (was running on xavier-1/gpu0)"
    stopped = ps(run)["resnet50-1"]
    assert stopped["status"] == "stopped" and stopped["p99_ms"] is None
    assert run("stop", "resnet50-1")[1].strip() == "resnet50-1 is already stopped"

    code, out, _ = run("ps")
    assert code == 0 and "resnet50-1" in out and "stopped" in out
    log = run.state.decisions()
    assert [e["action"] for e in log] == ["override", "running", "stop"]
    assert {e["who"] for e in log} == {"operator"} and log[0]["deployment"] == "resnet50-1"


def test_deploy_without_host_follows_the_recommendation(run: Any) -> None:
    code, out, err = run("deploy", "resnet50", "--batch", "1", "--slo", "1000", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["decision"] == "accept" and data["deployment"]["status"] == "running"
    followed = data["followed"]
    assert data["deployment"]["where"] == {"host": followed["host"], "device": followed["device"]}
    (first, running) = run.state.decisions()
    assert first["action"] == "accept" and first["followed"]["p99_ms"] > 0
    assert first["followed"]["confidence"] is not None and first["followed"]["policy"]
    assert running["measured"]["p99_ms"] > 0  # predicted, then measured, side by side
    history = [s for _, s in run.state.load()[0].history]
    assert history == ["recommended", "starting", "running"]


def test_override_onto_a_device_the_scheduler_turned_down_warns(run: Any) -> None:
    # Predicted far over a 0.5 ms SLO everywhere: no candidate, so every device is rejected.
    code, _, err = run("deploy", "bert-large", "--batch", "64", "--slo", "0.5")
    assert code == 1 and "no device qualifies" in err and run.state.load() == ()
    code, _, err = run(
        "deploy", "bert-large", "--batch", "64", "--slo", "0.5", "--host", "xavier-1/gpu0"
    )
    assert code == 0
    assert "warning: xavier-1/gpu0 is predicted to miss the request" in err
    entry = run.state.decisions()[0]
    assert entry["action"] == "override" and entry["overrode"] is None
    assert entry["warning"] and entry["rejected_because"]


def test_a_worker_that_fails_exits_1_with_the_reason(run: Any) -> None:
    code, _, err = run(
        "deploy", "gpt2-medium", "--batch", "128", "--slo", "5000", "--host", "a100-1"
    )
    assert code == 1
    assert "edgetop deploy: gpt2-medium-1 failed:" in err and "GiB free" in err
    assert ps(run)["gpt2-medium-1"]["status"] == "failed"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["deploy", "nosuchnet", "--batch", "1", "--slo", "10", "--host", "a100-1"], "nosuchnet"),
        (["deploy", "resnet50", "--batch", "1", "--slo", "10", "--host", "nowhere"], "nowhere"),
        (["deploy", "resnet50", "--batch", "1", "--slo", "10", "--host", "a100-1/"], "empty"),
        (["deploy", "resnet50", "--batch", "1", "--slo", "10", "--host", "a100-1/gpu9"], "gpu9"),
        (["stop", "resnet50-9"], "no deployment 'resnet50-9'"),
    ],
)
def test_bad_input_exits_2_with_one_line(run: Any, argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert run.state.decisions() == []


@pytest.mark.parametrize("value", ["0", "-3", "many", "5000"])
def test_bad_numbers_exit_2(run: Any, value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("deploy", "resnet50", "--batch", value, "--slo", "10")
    assert exit_info.value.code == 2


def test_a_corrupt_state_file_is_named(run: Any) -> None:
    run.state.directory.mkdir(parents=True)
    (run.state.directory / "deployments.json").write_text("{not json")
    for argv in (["ps"], ["stop", "x-1"], ["deploy", "resnet50", "--batch", "1", "--slo", "9"]):
        code, _, err = run(*argv)
        assert code == 2 and "deployments.json is not valid JSON" in err


def test_no_weights_and_no_host_is_bad_input(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGETOP_WEIGHTS", str(tmp_path / "missing.npz"))
    code, _, err = run("deploy", "resnet50", "--batch", "1", "--slo", "100")
    assert code == 2 and "--host" in err
    code, _, err = run("deploy", "resnet50", "--batch", "1", "--slo", "100", "--host", "a100-1")
    assert code == 0
    assert run.state.decisions()[0]["recommendation"] is None


def test_state_dir_before_the_command_works_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(SIM_PAIR.format(jetson="xavier-1"))
    state = tmp_path / "elsewhere"
    assert main(["--state-dir", str(state), "ps", "--json", "--hosts", str(hosts)]) == 0
    assert json.loads(capsys.readouterr().out) == {"deployments": [], "pipelines": []}
    argv = ["--state-dir", str(state), "deploy", "resnet50", "--batch", "1", "--slo", "100"]
    assert main([*argv, "--host", "a100-1", "--hosts", str(hosts)]) == 0
    assert [d.id for d in StateStore(state).load()] == ["resnet50-1"]


def test_the_decision_line_says_a_trial_was_followed() -> None:
    from edgetop.tui.deploy_commands import _decision_line

    followed = {"host": "a1", "device": "gpu0", "p99_ms": 5.0, "confidence": 0.3, "trial": True}
    assert _decision_line("accept", {"followed": followed}) == (
        "followed the recommendation: a1/gpu0 (predicted p99 5 ms, confidence 0.30, a trial: "
        "not cleared with headroom)"
    )
    followed["trial"] = False
    assert _decision_line("accept", {"followed": followed}).endswith("confidence 0.30)")
