"""Training orchestration, its metrics, measured rows, and the shipped weights' accuracy."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgetop.core import training
from edgetop.core.measured import MeasuredDataError, load_measured, parse_measured
from edgetop.core.profile import COLUMNS
from edgetop.core.trainingdata import TRAINING_EXCLUDED, TrainingSet, generate
from edgetop.models.catalog import load_catalog
from edgetop.models.predictor import SHIPPED_WEIGHTS, LatencyPredictor
from edgetop.models.schedfeatures import FEATURE_NAMES

# Small enough for a test, large enough that every phase runs for real.
TINY = training.Settings(rows=900, unseen_rows=200, members=2, epochs=3,
                         family_members=2, family_epochs=2)  # fmt: skip


# -- metrics ------------------------------------------------------------------------------


def test_accuracy_counts_within_10pct_and_mape() -> None:
    true = np.array([100.0, 100.0, 100.0, 100.0])
    predicted = np.array([100.0, 109.0, 85.0, 150.0])
    a = training.accuracy(predicted, true)
    assert a.rows == 4
    assert a.within_10pct == 0.5
    assert math.isclose(a.mape, (0 + 0.09 + 0.15 + 0.5) / 4)


def test_accuracy_of_nothing_is_nan_with_zero_rows() -> None:
    a = training.accuracy(np.zeros(0), np.zeros(0))
    assert a.rows == 0 and math.isnan(a.within_10pct) and math.isnan(a.spearman)
    with pytest.raises(ValueError):
        training.accuracy(np.ones(3), np.ones(2))


def test_spearman_is_rank_correlation_with_average_ranks_for_ties() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert training.spearman(x, x**3) == pytest.approx(1.0)
    assert training.spearman(x, -x) == pytest.approx(-1.0)
    # Ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): Pearson of the ranks is 0.9486833.
    assert training.spearman(np.array([1.0, 2.0, 2.0, 3.0]), np.arange(4.0)) == pytest.approx(
        0.9486833, abs=1e-6
    )
    assert math.isnan(training.spearman(np.ones(1), np.ones(1)))
    assert math.isnan(training.spearman(np.ones(5), x))  # no variation, no correlation


# -- train() ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_data() -> tuple[TrainingSet, TrainingSet]:
    catalog = load_catalog()
    unseen = {name: catalog[name] for name in TRAINING_EXCLUDED}
    return generate(TINY.rows, seed=3), generate(TINY.unseen_rows, seed=4, workloads=unseen)


def test_train_scores_seen_unseen_and_each_left_out_family(
    small_data: tuple[TrainingSet, TrainingSet],
) -> None:
    data, unseen = small_data
    phases: list[tuple[str, int, int]] = []
    report = training.train(
        data, unseen, seed=0, settings=TINY, progress=lambda *p: phases.append(p)
    )
    families = [f for f in training.FAMILIES if f in set(data.families)]
    assert list(report.by_family) == families and len(families) >= 3
    for family, score in report.by_family.items():
        assert score.rows == sum(f == family for f in data.families)
    assert report.seen.rows == round(len(data.x) * training.HOLDOUT_FRACTION)
    assert report.unseen.rows == len(unseen.x)
    assert report.rows_generated == len(data.x) and report.rows_measured == 0
    assert report.measured is None
    assert report.p50 is not None and report.p50["unseen"].rows == len(unseen.x)
    for score in (report.seen, report.unseen, *report.by_family.values()):
        assert 0 <= score.within_10pct <= 1 and score.mape >= 0 and -1 <= score.spearman <= 1
    # Progress runs through every phase once, its count climbing to the total.
    total = TINY.epochs + TINY.family_epochs * len(families)
    assert [p[1] for p in phases] == list(range(1, total + 1))
    assert {p[2] for p in phases} == {total}
    assert [p[0] for p in phases][: TINY.epochs] == ["fitting"] * TINY.epochs
    assert phases[-1][0] == f"without {families[-1]}"
    predictor = report.predictor
    assert predictor.members == TINY.members
    assert predictor.notes["generated_rows"] == len(data.x)
    assert predictor.notes["seen_within_10pct"] == round(report.seen.within_10pct, 4)


def test_train_refuses_held_out_models_in_its_data(
    small_data: tuple[TrainingSet, TrainingSet],
) -> None:
    data, unseen = small_data
    with pytest.raises(ValueError, match="must stay out of the training data"):
        training.train(TrainingSet.concat([data, unseen]), unseen, settings=TINY)


def test_measured_rows_join_the_training_and_are_counted(
    small_data: tuple[TrainingSet, TrainingSet],
) -> None:
    data, unseen = small_data
    measured = parse_measured(profile_csv(cpu_rows(30)), "m.csv").rows
    report = training.train(data, unseen, settings=TINY, measured=measured)
    assert report.rows_measured == 30
    assert report.measured is not None
    assert report.measured.rows == round(30 * training.HOLDOUT_FRACTION)
    assert report.predictor.notes["measured_rows"] == 30


def test_measured_rows_keep_their_share_of_the_loss_as_generated_rows_grow(
    small_data: tuple[TrainingSet, TrainingSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert training.measured_weight(900) == training.MEASURED_WEIGHT  # never below the base
    assert training.measured_weight(600_000) == 12 * training.measured_weight(50_000)
    seen: list[np.ndarray] = []
    real = training.train_ensemble

    def spy(*args: Any, sample_weight: np.ndarray | None = None, **kw: Any) -> Any:
        if sample_weight is not None:
            seen.append(sample_weight)
        return real(*args, sample_weight=sample_weight, **kw)

    monkeypatch.setattr(training, "train_ensemble", spy)
    data, unseen = small_data
    measured = parse_measured(profile_csv(cpu_rows(30)), "m.csv").rows
    training.train(data, unseen, settings=TINY, measured=measured)
    (weights,) = seen  # the shipped ensemble; the family ensembles are unweighted
    fitted_measured = 30 - round(30 * training.HOLDOUT_FRACTION)
    assert list(np.unique(weights[-fitted_measured:])) == [training.measured_weight(len(data.x))]
    assert np.all(weights[:-fitted_measured] == 1.0)


# -- measured rows ------------------------------------------------------------------------

CPU_ROW: Mapping[str, object] = {
    "host": "tb-1", "device": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", "device_kind": "cpu",
    "model": "mobilenetv2", "family": "conv", "batch": 1, "scenario": "singlestream",
    "options": "", "params": 3504872, "gflops": 0.6, "activation_bytes": 4816896,
    "arithmetic_intensity": 10.0, "input_shape": "1x3x224x224", "cpu_quota": 1.0,
    "mem_limit": 1 << 30, "device_util": 12.5, "device_mem_free": 20 << 30,
    "device_temp_c": "", "power_mode": "", "p50_ms": 21.5, "p90_ms": 23.0, "p99_ms": 30.1,
    "throughput": 46.0, "queries": 60, "threads": 1, "worker_device": "cpu",
    "measured_at": 1.0, "edgetop_version": "0.1.0",
}  # fmt: skip


def cpu_rows(n: int) -> list[dict[str, object]]:
    """n CPU rows of mobilenetv2 at growing batch sizes (latency roughly linear in batch)."""
    return [
        {**CPU_ROW, "batch": b, "p50_ms": 20.0 * b, "p90_ms": 22.0 * b, "p99_ms": 26.0 * b}
        for b in range(1, n + 1)
    ]


def profile_csv(rows: Sequence[Mapping[str, object]]) -> str:
    """A CSV exactly as `edgetop profile` writes it (its own column list)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return buffer.getvalue()


def test_a_profile_row_becomes_a_feature_row() -> None:
    parsed = parse_measured(profile_csv([CPU_ROW]), "m.csv")
    rows = parsed.rows
    assert rows.x.shape == (1, len(FEATURE_NAMES)) and parsed.skipped == {}
    column = dict(zip(FEATURE_NAMES, rows.x[0], strict=True))
    assert column["kind_cpu"] == 1.0 and column["edge"] == 1.0
    assert column["log_peak_tflops"] == pytest.approx(math.log(0.05))  # 1 core (the quota)
    assert column["util"] == pytest.approx(0.125)
    assert column["mem_free_fraction"] == 1.0  # free host memory above the cgroup limit
    assert column["log_mem_total_gib"] == pytest.approx(0.0)  # the 1 GiB limit
    # mobilenetv2 at its default size: the catalog's exact features, not the CSV's rounding.
    assert column["log_gflops"] == pytest.approx(math.log(load_catalog()["mobilenetv2"].gflops))
    assert rows.y[0] == pytest.approx([math.log(21.5), math.log(30.1)])
    assert rows.models == ("mobilenetv2",) and rows.families == ("conv",)


def test_a_users_own_model_is_rebuilt_from_its_columns() -> None:
    row = {**CPU_ROW, "model": "tiny_models:tiny", "family": "conv", "params": 1000,
           "gflops": 0.002, "activation_bytes": 40000, "arithmetic_intensity": 20.0,
           "input_shape": "1x3x16x16 + 1x4", "cpu_quota": "", "threads": 4}  # fmt: skip
    rows = parse_measured(profile_csv([row]), "m.csv").rows
    column = dict(zip(FEATURE_NAMES, rows.x[0], strict=True))
    assert column["log_gflops"] == pytest.approx(math.log(0.002))
    assert column["log_param_bytes"] == pytest.approx(math.log(4000))
    assert column["log_input_bytes"] == pytest.approx(math.log((3 * 16 * 16 + 4) * 4))
    assert column["log_peak_tflops"] == pytest.approx(math.log(0.2))  # 4 threads, no quota


def test_accelerator_rows_map_to_profiles_and_power_modes() -> None:
    orin = {
        **CPU_ROW,
        "device": "NVIDIA Jetson AGX Orin",
        "device_kind": "jetson",
        "power_mode": "MODE_30W",
        "device_mem_free": 40 << 30,
        "device_temp_c": 51.0,
    }
    a100 = {**CPU_ROW, "device": "NVIDIA A100-SXM4-80GB", "device_kind": "gpu",
            "power_mode": ""}  # fmt: skip
    rows = parse_measured(profile_csv([orin, a100]), "m.csv").rows
    orin_col, a100_col = (dict(zip(FEATURE_NAMES, r, strict=True)) for r in rows.x)
    assert orin_col["kind_jetson"] == 1.0 and orin_col["power_fraction"] == pytest.approx(0.5)
    assert orin_col["temp_norm"] == pytest.approx(0.51)
    assert orin_col["log_peak_tflops"] == pytest.approx(math.log(137.0))
    assert a100_col["kind_gpu-server"] == 1.0 and a100_col["edge"] == 0.0
    assert a100_col["log_mem_total_gib"] == pytest.approx(math.log(80))
    assert rows.devices == ("tb-1:jetson-agx-orin", "tb-1:a100-80gb")


def test_rows_that_cannot_be_learned_from_are_skipped_and_counted() -> None:
    rows = [
        CPU_ROW,
        {**CPU_ROW, "scenario": "server"},
        {**CPU_ROW, "model": "gpt2", "family": "language-model"},
        {**CPU_ROW, "device": "Radeon Instinct MI100", "device_kind": "gpu"},
        {**CPU_ROW, "device": "", "device_kind": ""},
    ]
    parsed = parse_measured(profile_csv(rows), "m.csv")
    assert len(parsed.rows.x) == 1
    assert parsed.skipped_total == 4
    assert set(parsed.skipped) == {
        "scenario server: latency includes queueing",
        "gpt2: held out for evaluation",
        "accelerator Radeon Instinct MI100 matches no device profile",
        "no device recorded",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"p50_ms": "fast"}, "m.csv:3: column p50_ms is 'fast', not a number"),
        ({"p99_ms": "0"}, "m.csv:3: column p99_ms is '0', not a positive number"),
        ({"batch": "2.5"}, "m.csv:3: column batch is 2.5, not a whole number"),
        ({"batch": ""}, "m.csv:3: column batch is '', not a number"),
        ({"device_util": "-3"}, "m.csv:3: column device_util is '-3'"),
        ({"model": "x:y", "input_shape": "1xA"}, "m.csv:3: column input_shape is '1xA'"),
    ],
)
def test_malformed_rows_name_file_line_and_column(
    change: Mapping[str, object], message: str
) -> None:
    text = profile_csv([CPU_ROW, {**CPU_ROW, **change}])
    with pytest.raises(MeasuredDataError) as info:
        parse_measured(text, "m.csv")
    assert str(info.value).startswith(message)


def test_files_that_are_not_profile_csvs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MeasuredDataError, match="not an edgetop profile CSV"):
        parse_measured("a,b\n1,2\n", "x.csv")
    with pytest.raises(MeasuredDataError, match="more fields than the header"):
        parse_measured(profile_csv([CPU_ROW]).replace("0.1.0", "0.1.0,extra"), "x.csv")
    with pytest.raises(MeasuredDataError, match="cannot read"):
        load_measured([tmp_path / "missing.csv"])


def test_several_files_are_concatenated(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(profile_csv(cpu_rows(3)))
    second.write_text(profile_csv([*cpu_rows(2), {**CPU_ROW, "scenario": "server"}]))
    data = load_measured([first, second])
    assert len(data.rows.x) == 5 and data.skipped_total == 1
    assert len(load_measured([]).rows.x) == 0


# -- the shipped weights: the real guard ----------------------------------------------------

# The targets: p99 within 10% on 90% of held-out rows of seen workloads; Spearman 0.9 on
# the unseen models. Schema 2 added the request's own rate (seen within 10% 40% -> 57%); schema 3
# the co-runners' mix (57% -> 72%, unseen Spearman 0.91 -> 0.97: that target is met); twelve
# times the generated rows and a third layer, 72% -> 83% (unseen Spearman 0.98); the open
# co-runners' measured busy share (schema 4), 83% -> 86%. The rest of
# the seen gap is the queueing term near saturation (docs/scheduler-model.md, sections 5-6):
# the seen target stays a strict expected failure (it reports the day it passes) and these
# floors, just under what the shipped weights reach on fresh rows, guard against regressions.
SEEN_TARGET, UNSEEN_TARGET = 0.90, 0.90
SEEN_FLOOR, UNSEEN_FLOOR = 0.84, 0.96
CONFIDENT = 0.9  # predictions at least this confident ...
CONFIDENT_FLOOR = 0.85  # ... are within 10% at least this often


@pytest.fixture(scope="module")
def shipped_scores() -> dict[str, training.Accuracy]:
    """The shipped weights on fresh rows: seeds that training never used."""
    predictor = LatencyPredictor.load(SHIPPED_WEIGHTS)
    catalog = load_catalog()
    seen = generate(4000, seed=424_242)
    unseen = generate(2000, seed=434_343, workloads={n: catalog[n] for n in TRAINING_EXCLUDED})
    seen_prediction = predictor.predict(seen.x)
    confident = seen_prediction.confidence >= CONFIDENT
    true_p99 = np.exp(seen.y[:, 1])
    return {
        "seen": training.accuracy(seen_prediction.p99_ms, true_p99),
        "unseen": training.accuracy(predictor.predict(unseen.x).p99_ms, np.exp(unseen.y[:, 1])),
        "confident": training.accuracy(seen_prediction.p99_ms[confident], true_p99[confident]),
    }


def test_shipped_weights_hold_their_accuracy_on_fresh_rows(
    shipped_scores: dict[str, training.Accuracy],
) -> None:
    assert shipped_scores["seen"].within_10pct >= SEEN_FLOOR
    assert shipped_scores["unseen"].spearman >= UNSEEN_FLOOR
    # The ensemble's confidence means something: its confident answers are mostly right.
    assert shipped_scores["confident"].rows >= 100
    assert shipped_scores["confident"].within_10pct >= CONFIDENT_FLOOR


def test_shipped_weights_reach_the_unseen_target(
    shipped_scores: dict[str, training.Accuracy],
) -> None:
    assert shipped_scores["unseen"].spearman >= UNSEEN_TARGET


@pytest.mark.xfail(
    strict=True, reason="86% on fresh rows: queueing near saturation is what is left"
)
def test_shipped_weights_reach_the_seen_target(
    shipped_scores: dict[str, training.Accuracy],
) -> None:
    assert shipped_scores["seen"].within_10pct >= SEEN_TARGET
