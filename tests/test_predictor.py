"""The latency predictor: training, numpy inference, the weights file and where it is found."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgetop.models.errors import ModelError
from edgetop.models.predictor import (
    CONFIDENCE_SCALE,
    ROW_BLOCK,
    SHIPPED_WEIGHTS,
    LatencyPredictor,
    PredictorError,
    default_weights_path,
    load_default,
    train_ensemble,
    user_weights_path,
)
from edgetop.models.schedfeatures import FEATURE_NAMES, SCHEMA_VERSION

D = len(FEATURE_NAMES)


def toy_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose log latency is a smooth function of a few columns, p99 above p50."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    log_p50 = 1.0 + 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * np.tanh(x[:, 2])
    return x, np.column_stack([log_p50, log_p50 + 0.2 + 0.1 * np.abs(x[:, 3])])


@pytest.fixture(scope="module")
def trained() -> LatencyPredictor:
    x, y = toy_rows(800)
    return train_ensemble(x, y, members=3, epochs=8, seed=1, hidden=(16, 16))


def test_training_fits_and_reports_progress() -> None:
    x, y = toy_rows(1000)
    seen: list[tuple[int, int]] = []
    predictor = train_ensemble(
        x[:800], y[:800], members=3, epochs=10, seed=0, hidden=(16, 16), batch_size=32,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen == [(i, 10) for i in range(1, 11)]
    assert predictor.members == 3 and predictor.hidden == (16, 16)
    assert predictor.schema_version == SCHEMA_VERSION and predictor.feature_names == FEATURE_NAMES
    prediction = predictor.predict(x[800:])
    error = np.abs(np.log(prediction.p50_ms) - y[800:, 0])
    assert np.median(error) < 0.1  # a smooth target is learned, not memorised


def test_training_is_reproducible_for_a_seed() -> None:
    x, y = toy_rows(300)
    a = train_ensemble(x, y, members=2, epochs=3, seed=7, hidden=(8,))
    b = train_ensemble(x, y, members=2, epochs=3, seed=7, hidden=(8,))
    c = train_ensemble(x, y, members=2, epochs=3, seed=8, hidden=(8,))
    assert np.array_equal(a.predict(x).p99_ms, b.predict(x).p99_ms)
    assert not np.array_equal(a.predict(x).p99_ms, c.predict(x).p99_ms)


def test_prediction_shapes_and_invariants(trained: LatencyPredictor) -> None:
    x, _ = toy_rows(50, seed=3)
    prediction = trained.predict(x)
    for values in (prediction.p50_ms, prediction.p99_ms, prediction.confidence):
        assert values.shape == (50,) and np.all(np.isfinite(values))
    assert np.all(prediction.p50_ms > 0)
    assert np.all(prediction.p99_ms >= prediction.p50_ms)
    assert np.all((prediction.confidence > 0) & (prediction.confidence <= 1))
    assert trained.predict(np.zeros((0, D))).p50_ms.shape == (0,)


def test_a_rows_prediction_does_not_depend_on_the_rows_beside_it(
    trained: LatencyPredictor,
) -> None:
    # Inference runs in blocks of ROW_BLOCK rows: rows either side of a block boundary get what
    # they get alone.
    x, _ = toy_rows(2 * ROW_BLOCK + 5, seed=4)
    together = trained.predict(x)
    for i in (0, ROW_BLOCK - 1, ROW_BLOCK, 2 * ROW_BLOCK + 4):
        alone = trained.predict(x[i : i + 1])
        np.testing.assert_allclose(together.p99_ms[i], alone.p99_ms[0], rtol=1e-5)
        np.testing.assert_allclose(together.confidence[i], alone.confidence[0], rtol=1e-4)


def test_a_row_with_nan_gets_no_confidence(trained: LatencyPredictor) -> None:
    x, _ = toy_rows(3, seed=4)
    x[1, 5] = np.nan
    confidence = trained.predict(x).confidence
    assert confidence[1] == 0.0 and confidence[0] > 0 and confidence[2] > 0


@pytest.mark.parametrize("shape", [(4, D - 1), (D,), (2, D + 3)])
def test_rows_of_the_wrong_width_are_refused(trained: LatencyPredictor, shape: tuple) -> None:
    with pytest.raises(ValueError, match=f"{D} features"):
        trained.predict(np.zeros(shape))


def test_confidence_follows_member_agreement(trained: LatencyPredictor) -> None:
    """confidence = exp(-CONFIDENCE_SCALE * std over members of log p99), as documented."""
    x, _ = toy_rows(5, seed=5)
    same = dataclasses.replace(
        trained,
        weights=tuple(np.repeat(w[:1], 3, axis=0) for w in trained.weights),
        biases=tuple(np.repeat(b[:1], 3, axis=0) for b in trained.biases),
        shortcut=np.repeat(trained.shortcut[:1], 3, axis=0),
    )
    assert np.allclose(same.predict(x).confidence, 1.0)
    # Shift the members' p99 outputs by -s, 0, +s (in log ms): their std is s * sqrt(2/3).
    s = 0.05
    bias = same.biases[-1].copy()
    bias[:, 1] += np.array([-s, 0.0, s]) / same.y_std[1]
    spread = dataclasses.replace(same, biases=(*same.biases[:-1], bias))
    expected = np.exp(-CONFIDENCE_SCALE * s * np.sqrt(2 / 3))
    assert np.allclose(spread.predict(x).confidence, expected, rtol=1e-4)


def test_training_refuses_bad_input() -> None:
    x, y = toy_rows(10)
    with pytest.raises(ValueError, match="features"):
        train_ensemble(x[:, :5], y, epochs=1)
    with pytest.raises(ValueError, match="targets"):
        train_ensemble(x, y[:, :1], epochs=1)
    with pytest.raises(ValueError, match="hidden"):
        train_ensemble(x, y, epochs=1, hidden=())
    with pytest.raises(ValueError, match="loss"):
        train_ensemble(x, y, epochs=1, loss="huber")
    x[0, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        train_ensemble(x, y, epochs=1)


# -- the weights file -------------------------------------------------------------------


def test_save_and_load_round_trip(trained: LatencyPredictor, tmp_path: Path) -> None:
    path = tmp_path / "deep" / "w.npz"
    trained.save(path)
    loaded = LatencyPredictor.load(path)
    x, _ = toy_rows(20, seed=6)
    assert np.allclose(loaded.predict(x).p99_ms, trained.predict(x).p99_ms, rtol=1e-5)
    assert loaded.version == trained.version and loaded.notes["epochs"] == 8
    assert loaded.feature_names == FEATURE_NAMES
    assert not list(tmp_path.glob("deep/*.partial"))


def test_missing_and_corrupt_files_are_clear_errors(
    trained: LatencyPredictor, tmp_path: Path
) -> None:
    with pytest.raises(PredictorError, match="no such file"):
        LatencyPredictor.load(tmp_path / "nowhere.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(PredictorError, match=r"unreadable.*edgetop train"):
        LatencyPredictor.load(garbage)
    good = tmp_path / "good.npz"
    trained.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(PredictorError, match="edgetop train"):
        LatencyPredictor.load(truncated)
    assert issubclass(PredictorError, ModelError)


def rewrite(source: Path, target: Path, **changes: object) -> None:
    """Copy a weights file with some arrays (or header keys, as header_<key>) changed."""
    with np.load(source, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(arrays["header"].tobytes())
    for key, value in changes.items():
        if key.startswith("header_"):
            header[key.removeprefix("header_")] = value
        elif value is None:
            del arrays[key]
        else:
            arrays[key] = value  # type: ignore[assignment]
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(target, **arrays)  # type: ignore[arg-type]


def test_weights_of_another_schema_say_to_retrain(
    trained: LatencyPredictor, tmp_path: Path
) -> None:
    good = tmp_path / "good.npz"
    trained.save(good)
    other = tmp_path / "other.npz"
    rewrite(good, other, header_schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(PredictorError) as info:
        LatencyPredictor.load(other)
    message = str(info.value)
    assert f"trained on schema {SCHEMA_VERSION + 1}" in message
    assert f"this edgetop uses schema {SCHEMA_VERSION}" in message
    assert "retrain with `edgetop train`" in message
    renamed = tmp_path / "renamed.npz"
    rewrite(good, renamed, header_feature_names=[*FEATURE_NAMES[:-1], "something_else"])
    with pytest.raises(PredictorError, match="something_else"):
        LatencyPredictor.load(renamed)
    newer = tmp_path / "newer.npz"
    rewrite(good, newer, header_format=99)
    with pytest.raises(PredictorError, match="file format 99"):
        LatencyPredictor.load(newer)


@pytest.mark.parametrize(
    "change",
    [
        {"w1": None},
        {"x_std": np.ones(3)},
        {"w0": np.zeros((3, D, 5), dtype=np.float32)},
        {"y_mean": np.array([np.nan, 1.0])},
        {"header_layers": "two"},
    ],
)
def test_inconsistent_arrays_are_corrupt(
    trained: LatencyPredictor, tmp_path: Path, change: dict[str, object]
) -> None:
    good = tmp_path / "good.npz"
    trained.save(good)
    bad = tmp_path / "bad.npz"
    rewrite(good, bad, **change)
    with pytest.raises(PredictorError, match="corrupt"):
        LatencyPredictor.load(bad)


def test_pickled_arrays_are_never_loaded(trained: LatencyPredictor, tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    trained.save(good)
    evil = tmp_path / "evil.npz"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(evil, "w") as target:
        for item in source.namelist():
            if item != "x_mean.npy":
                target.writestr(item, source.read(item))
        buffer = io.BytesIO()
        np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
        target.writestr("x_mean.npy", buffer.getvalue())
    with pytest.raises(PredictorError, match="unreadable"):
        LatencyPredictor.load(evil)


# -- where the weights come from ----------------------------------------------------------


def test_user_weights_live_in_the_xdg_state_dir(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    assert user_weights_path(env) == tmp_path / "state" / "edgetop" / "scheduler-weights.npz"
    home_only = {"HOME": str(tmp_path)}
    expected = tmp_path / ".local" / "state" / "edgetop" / "scheduler-weights.npz"
    assert user_weights_path(home_only) == expected


def test_load_default_prefers_env_then_user_then_shipped(
    trained: LatencyPredictor, tmp_path: Path
) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    assert default_weights_path(env) == SHIPPED_WEIGHTS
    trained.save(user_weights_path(env))
    assert default_weights_path(env) == user_weights_path(env)
    assert load_default(env).version == trained.version
    chosen = tmp_path / "chosen.npz"
    env["EDGETOP_WEIGHTS"] = str(chosen)
    with pytest.raises(PredictorError, match="no such file"):
        load_default(env)  # a weights file named on purpose is never silently replaced


def test_shipped_weights_load_and_match_this_schema() -> None:
    shipped = LatencyPredictor.load(SHIPPED_WEIGHTS)
    assert shipped.schema_version == SCHEMA_VERSION
    assert shipped.feature_names == FEATURE_NAMES
    assert shipped.members >= 3
    assert SHIPPED_WEIGHTS.stat().st_size < 1 << 20
    assert load_default({"XDG_STATE_HOME": "/nonexistent-edgetop-test"}).version == (
        shipped.version
    )


def test_load_default_reads_a_file_once_and_a_retrained_one_again(
    trained: LatencyPredictor, tmp_path: Path
) -> None:
    env = {"EDGETOP_WEIGHTS": str(tmp_path / "w.npz")}
    trained.save(tmp_path / "w.npz")
    first = load_default(env)
    assert load_default(env) is first  # deciding every round reads nothing again
    trained.save(tmp_path / "w.npz")
    os.utime(tmp_path / "w.npz", ns=(1, 1))  # a new version of the file
    again = load_default(env)
    assert again is not first and again.version == trained.version
