"""`edgetop eval`: the JSON contract for every policy, the markdown table, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_recommend_command import tiny_predictor

from edgetop.tui.cli import main

POLICIES = ("learned", "random", "round-robin", "least-loaded", "weighted-score", "oracle")
KEYS = ("success", "success_unseen", "p50_ms", "p99_ms", "throughput", "regret", "decision_ms")


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "weights.npz"
    tiny_predictor().save(path)
    monkeypatch.setenv("EDGETOP_WEIGHTS", str(path))
    return path


def test_quick_eval_writes_every_policy(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "eval.json"
    argv = ["eval", "--quick", "--seeds", "1", "--fleet", "a100-40gb,jetson-agx-xavier*2"]
    assert main([*argv, "--json", str(out_file)]) == 0
    data = json.loads(out_file.read_text())
    assert set(data["policies"]) == set(POLICIES)
    for name in POLICIES:
        entry = data["policies"][name]
        for key in KEYS:
            assert key in entry
        assert set(entry["by_load"]) == {"light", "medium", "high", "overload"}
        assert 0.0 <= entry["success"] <= 1.0
    assert data["policies"]["oracle"]["regret"] == 0.0
    assert data["experiment"]["fleet"] == ["a100-40gb", "jetson-agx-xavier", "jetson-agx-xavier"]
    assert data["experiment"]["slo_bounds_ms"]["resnet50"] == 15.0
    out = capsys.readouterr().out
    assert "| policy | load | success % |" in out
    assert out.count("| learned |") == 5  # four loads and the summary


def test_first_seed_gives_other_streams(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--quick", "--seeds", "1", "--fleet", "a100-40gb,jetson-agx-xavier*2"]
    runs = []
    for first in ("0", "7", "7"):
        out_file = tmp_path / f"eval-{first}.json"
        assert main([*argv, "--first-seed", first, "--json", str(out_file)]) == 0
        runs.append(json.loads(out_file.read_text()))
    assert "(seeds 7-7)" in capsys.readouterr().out
    assert runs[1]["experiment"]["first_seed"] == 7
    oracle = [r["policies"]["oracle"]["by_load"]["high"]["success"] for r in runs]
    assert oracle[0] != oracle[1] and oracle[1] == oracle[2]
    assert main([*argv, "--first-seed", "-1"]) == 2
    assert "--first-seed must be at least 0, got -1" in capsys.readouterr().err


def test_bad_fleet_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--fleet", "a100-40gb*x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgetop eval: error: --fleet: 'a100-40gb*x'")
    assert main(["eval", "--fleet", "h100"]) == 2
    assert "unknown device profile 'h100'" in capsys.readouterr().err


def test_real_fleet_eval_needs_a_real_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text('[[host]]\nname = "a1"\ntransport = "sim"\ndevice = "a100-40gb"\n')
    assert main(["eval", "--hosts", str(hosts)]) == 2
    assert "no real host" in capsys.readouterr().err
