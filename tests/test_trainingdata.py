"""The scheduler's training data: reproducible, free of the unseen models, consistent with the
performance model and the feature schema."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetop.core.perfmodel import device_features, evaluate
from edgetop.core.profiles import PROFILES
from edgetop.core.trainingdata import (
    TRAINING_EXCLUDED,
    TrainingSet,
    default_workloads,
    generate,
    placement_rows,
    sample_states,
)
from edgetop.models.catalog import load_catalog
from edgetop.models.schedfeatures import FEATURE_NAMES, feature_rows

N = 600


@pytest.fixture(scope="module")
def data() -> TrainingSet:
    return generate(N, seed=7)


def test_shape_and_labels(data: TrainingSet) -> None:
    assert data.x.shape == (N, len(FEATURE_NAMES)) and data.y.shape == (N, 2)
    assert len(data) == N
    assert len(data.models) == len(data.families) == len(data.devices) == N
    assert np.isfinite(data.x).all() and np.isfinite(data.y).all()
    assert (data.y[:, 1] > data.y[:, 0]).all()  # p99 above p50


def test_reproducible() -> None:
    a, b = generate(200, seed=3), generate(200, seed=3)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert (a.models, a.devices, a.scenarios) == (b.models, b.devices, b.scenarios)
    assert np.array_equal(a.qps, b.qps, equal_nan=True)
    c = generate(200, seed=4)
    assert not np.array_equal(a.y, c.y)


def test_unseen_models_are_never_in_training(data: TrainingSet) -> None:
    assert not set(data.models) & set(TRAINING_EXCLUDED)
    assert set(TRAINING_EXCLUDED) <= set(load_catalog())
    assert not set(default_workloads()) & set(TRAINING_EXCLUDED)
    for sample in sample_states(300, seed=1):
        names = {p.workload.name for p in (*sample.colocated, sample.target)}
        assert not names & set(TRAINING_EXCLUDED)


def test_unseen_models_on_request() -> None:
    catalog = load_catalog()
    unseen = {n: catalog[n] for n in TRAINING_EXCLUDED}
    rows = generate(100, seed=0, workloads=unseen)
    assert set(rows.models) <= set(TRAINING_EXCLUDED)
    assert set(rows.families) <= {"language-model", "detector"}


def test_covers_devices_and_states(data: TrainingSet) -> None:
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    assert len(set(data.devices)) == len(PROFILES)
    assert (data.x[:, col["colocated"]] > 0).mean() > 0.5
    assert (data.x[:, col["throttled"]] > 0).any()
    assert (data.x[:, col["power_fraction"]] < 1).any()
    assert (data.x[:, col["util"]] > 0.5).any() and (data.x[:, col["util"]] == 0).any()
    assert set(data.scenarios) == {"server", "singlestream"}
    # Mostly not hopelessly overloaded: a minute of backlog is rare.
    assert (np.exp(data.y[:, 0]) > 10_000).mean() < 0.15


def test_rows_are_the_model_s_view(data: TrainingSet) -> None:
    samples = sample_states(20, seed=11)
    rows = placement_rows(samples)
    for i, s in enumerate(samples):
        before = evaluate(s.profile, s.colocated, s.condition)
        expected = feature_rows(
            s.target.workload,
            s.target.batch,
            [device_features(s.profile, before, s.condition)],
            s.target.qps,
        )[0]
        assert np.allclose(rows.x[i], expected)
        after = evaluate(s.profile, (*s.colocated, s.target), s.condition).performances[-1]
        assert rows.y[i] == pytest.approx([math.log(after.p50_ms), math.log(after.p99_ms)])
        assert after.p50_ms > 0 and rows.devices[i] == s.profile.name


def test_targets_fit_in_memory() -> None:
    for s in sample_states(300, seed=5):
        assert evaluate(s.profile, (*s.colocated, s.target), s.condition).fits


def test_profiles_and_batches_can_be_restricted() -> None:
    rows = generate(80, seed=2, profiles=[PROFILES["t4"]], batches=(4,))
    assert set(rows.devices) == {"t4"}
    assert np.allclose(rows.x[:, FEATURE_NAMES.index("log_batch")], math.log(4))


def test_subset_and_concat(data: TrainingSet) -> None:
    mask = np.array([m == "resnet50" for m in data.models])
    part = data.subset(mask)
    assert len(part) == mask.sum() > 0 and set(part.models) == {"resnet50"}
    assert np.array_equal(part.x, data.x[mask])
    assert data.subset(np.arange(5)).devices == data.devices[:5]
    joined = TrainingSet.concat([part, data.subset(~mask)])
    assert len(joined) == len(data) and sorted(joined.models) == sorted(data.models)
    assert len(joined.scenarios) == len(joined) == len(joined.qps)
    empty = TrainingSet.concat([])
    assert empty.x.shape == (0, len(FEATURE_NAMES)) and len(empty) == 0


def test_concat_with_rows_lacking_the_extra_columns(data: TrainingSet) -> None:
    bare = TrainingSet(data.x[:3], data.y[:3], data.models[:3], data.families[:3], data.devices[:3])
    joined = TrainingSet.concat([bare, data.subset(np.arange(3))])
    assert len(joined) == 6 and joined.scenarios == () and len(joined.qps) == 0
    assert bare.subset(np.array([True, False, True])).models == (data.models[0], data.models[2])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate(-1)
    with pytest.raises(ValueError):
        generate(5, workloads={})
    assert len(generate(0)) == 0
