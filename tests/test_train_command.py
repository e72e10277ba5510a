"""`edgetop train` end to end: generated plus measured rows, the table, the weights file."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_training import CPU_ROW, TINY, cpu_rows, profile_csv

from edgetop.core import training
from edgetop.models.predictor import LatencyPredictor
from edgetop.tui.cli import main


@pytest.fixture(autouse=True)
def tiny_quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--quick at test size; the user's state dir inside tmp_path."""
    monkeypatch.setattr(training, "QUICK", TINY)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_train_refits_on_measured_rows_and_writes_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = tmp_path / "profile.csv"
    measured.write_text(profile_csv([*cpu_rows(6), {**CPU_ROW, "scenario": "server"}]))
    weights = tmp_path / "out" / "w.npz"
    argv = ["train", "--quick", "--seed", "3", "--out", str(weights), "--data", str(measured)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for line in ("seen workloads (held out)", "unseen models (GPT-2, YOLOv5)",
                 "conv, trained without it", "transformer, trained without it",
                 "within 10%", "MAPE", "Spearman"):  # fmt: skip
        assert line in out
    assert "1 measured row(s) skipped: scenario server" in out
    assert "and 6 measured row(s)" in out
    assert f"written to {weights}" in out
    predictor = LatencyPredictor.load(weights)
    assert predictor.notes["measured_rows"] == 6 and predictor.notes["data_seed"] == 3


def test_weights_go_to_the_state_dir_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--quick"]) == 0
    target = tmp_path / "state" / "edgetop" / "scheduler-weights.npz"
    assert LatencyPredictor.load(target).members == TINY.members
    assert f"written to {target}" in capsys.readouterr().out.replace("\n", "")


def test_a_bad_measured_csv_is_one_clear_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = tmp_path / "profile.csv"
    measured.write_text(profile_csv([CPU_ROW, {**CPU_ROW, "p99_ms": "soon"}]))
    weights = tmp_path / "w.npz"
    assert main(["train", "--quick", "--out", str(weights), "--data", str(measured)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"edgetop train: error: --data: {measured}:3: column p99_ms is 'soon', not a number"
    )
    assert not weights.exists()


@pytest.mark.parametrize("problem", ["missing", "not-profile", "folder-out"])
def test_other_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    argv = ["train", "--quick", "--out", str(tmp_path / "w.npz")]
    if problem == "missing":
        argv += ["--data", str(tmp_path / "nowhere.csv")]
        expected = "cannot read"
    elif problem == "not-profile":
        (tmp_path / "other.csv").write_text("name,value\na,1\n")
        argv += ["--data", str(tmp_path / "other.csv")]
        expected = "not an edgetop profile CSV"
    else:
        argv = ["train", "--quick", "--out", str(tmp_path)]
        expected = "is a folder"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
