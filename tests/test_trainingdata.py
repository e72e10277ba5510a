"""The scheduler's training data: reproducible, free of the unseen models, consistent with the
performance model and the feature schema."""

from __future__ import annotations

import math

import numpy as np
import pytest
from agentlines import hello_view

from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.live import fleet_from_snapshot
from edgetop.core.perfmodel import DeviceCondition, Placement, device_features, evaluate
from edgetop.core.placement import link_transfer_ms
from edgetop.core.profiles import PROFILES
from edgetop.core.trainingdata import (
    TRAINING_EXCLUDED,
    Sample,
    TrainingSet,
    corunner_deployments,
    default_workloads,
    generate,
    placement_rows,
    sample_states,
)
from edgetop.models.catalog import load_catalog
from edgetop.models.schedfeatures import (
    DEVICE_COLUMNS,
    FEATURE_NAMES,
    MIX_COLUMNS,
    WORKLOAD_COLUMNS,
    CoRunner,
    CorunnerMix,
    corunner_mix,
    feature_rows,
)
from edgetop.remote.link import HostStatus
from edgetop.remote.protocol import DeploymentReading, DeviceReading

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
    mix = np.zeros(len(FEATURE_NAMES), dtype=bool)
    mix[len(WORKLOAD_COLUMNS) :][: len(DEVICE_COLUMNS)][MIX_COLUMNS] = True
    assert [FEATURE_NAMES[k] for k in np.flatnonzero(mix)] == list(DEVICE_COLUMNS[MIX_COLUMNS])
    for i, s in enumerate(samples):
        before = evaluate(s.profile, s.colocated, s.condition)
        expected = feature_rows(
            s.target.workload,
            s.target.batch,
            [device_features(s.profile, before, s.condition)],
            s.target.qps,
        )[0]
        # Everything but the co-runner columns is the performance model's telemetry ...
        assert np.allclose(rows.x[i][~mix], expected[~mix])
        # ... and those are 0 exactly when nothing else runs there.
        assert (rows.x[i][mix] == 0).all() == (not s.colocated)
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


# -- the co-runner columns (schema 3) --------------------------------------------------------


def test_corunner_mix_by_hand() -> None:
    mix = corunner_mix(
        [
            CoRunner("server", 8, 400.0, 10.0),  # 50 batches/s x 10 ms: 0.5 of the device
            CoRunner("offline", 32, None, 90.0),  # closed loops share the other 0.5 ...
            CoRunner("singlestream", 1, None, 10.0),  # ... by batch time: 0.45 and 0.05
        ]
    )
    assert mix.open_load == pytest.approx(0.5)
    assert (mix.closed, mix.closed_ms) == (2, pytest.approx(100.0))
    # (0.5 x 10 + 0.45 x 90 + 0.05 x 10) / 1.0
    assert mix.weighted_ms == pytest.approx(46.0)
    assert corunner_mix([]) == CorunnerMix()
    # Offline never counts as open, even with a rate; a paced single stream offers at most 1.
    assert corunner_mix([CoRunner("offline", 1, 50.0, 10.0)]).closed == 1
    assert corunner_mix([CoRunner("singlestream", 1, 1000.0, 10.0)]).open_load == 1.0
    # Overload reads as such (the column is bounded later, at MAX_OPEN_LOAD).
    assert corunner_mix([CoRunner("server", 1, 300.0, 10.0)]).open_load == pytest.approx(3.0)


def test_open_busy_sums_what_open_workers_measure() -> None:
    """Schema 4: the open co-runners' measured busy shares; their offered load (at most 1)
    stands in for a worker that has not reported one; closed loops never count."""
    mix = corunner_mix(
        [
            CoRunner("server", 8, 400.0, 10.0, busy=0.3),  # measured: its load (0.5) ignored
            CoRunner("server", 1, 20.0, 10.0),  # not measured yet: its load, 0.2
            CoRunner("offline", 32, None, 90.0, busy=0.4),  # a closed loop
        ]
    )
    assert mix.open_busy == pytest.approx(0.5)
    assert mix.open_load == pytest.approx(0.7)  # the latency-based column is unchanged
    # Bounded at the whole device, whatever the workers report or offer.
    overloaded = [CoRunner("server", 1, 300.0, 10.0), CoRunner("server", 1, 10.0, 5.0, busy=0.9)]
    assert corunner_mix(overloaded).open_busy == 1.0


def _as_live_host(s: Sample) -> HostView:
    """The sample's device before the target, as a simulated host reports it."""
    before = evaluate(s.profile, s.colocated, s.condition)
    mode = s.condition.power_mode or s.profile.default_power_mode
    device = DeviceReading(
        "gpu0", "jetson" if s.profile.kind == "jetson" else "gpu", s.profile.display_name,
        util=before.util * 100.0, mem_used=before.mem_used_bytes,
        mem_total=before.mem_total_bytes, temp_c=before.temp_c, power_mode=mode,
    )  # fmt: skip
    readings = tuple(
        DeploymentReading(f"w{k}", "running", p.workload.name, p.batch, p.scenario,
                          p50_ms=perf.p50_ms, p99_ms=perf.p99_ms, throughput=perf.throughput,
                          busy=perf.util)
        for k, (p, perf) in enumerate(zip(s.colocated, before.performances, strict=True))
    )  # fmt: skip
    return HostView(
        "sim", "sim", s.profile.kind, 1.0, status=HostStatus.ONLINE, devices=(device,),
        samples=1, sample_at=100.0, deployments=readings,
        hello=hello_view(os=f"simulated ({s.profile.name})"),
    )  # fmt: skip


def test_live_and_training_compute_identical_corunner_columns() -> None:
    """The same device state seen by the training generator and by the live fleet view (a
    simulated host reporting the performance model's figures) gives the same co-runner
    columns, power fraction and co-location."""
    catalog = load_catalog()
    accelerators = [p for p in PROFILES.values() if p.kind != "cpu"]
    samples = [
        s for s in sample_states(300, seed=5, workloads=default_workloads(),
                                 profiles=accelerators)
        if s.colocated
    ][:60]  # fmt: skip
    assert len(samples) >= 40
    assert any(s.condition.power_mode not in (None, s.profile.power_modes[0]) for s in samples)
    training = placement_rows(samples).x[:, len(WORKLOAD_COLUMNS) :]
    columns = [*DEVICE_COLUMNS[MIX_COLUMNS], "power_fraction", "colocated"]
    for i, s in enumerate(samples):
        fleet = fleet_from_snapshot(FleetSnapshot((_as_live_host(s),)), catalog=catalog)
        (live,) = fleet.matrix
        for c in columns:
            k = DEVICE_COLUMNS.index(c)
            assert live[k] == pytest.approx(training[i, k], rel=1e-9, abs=1e-12), (c, s)


def test_corunner_batch_time_is_p50_less_transfer() -> None:
    """A co-runner's batch time is its measured p50 less the link's input transfer (most of a
    cloud server's p50 from the edge), at least its roofline time."""
    resnet = load_catalog()["resnet50"]
    a100 = PROFILES["a100-40gb"]
    placements = (Placement(resnet, 8, "server", 400.0),)
    before = evaluate(a100, placements, DeviceCondition())
    (dep,) = corunner_deployments(placements, before)
    perf = before.performances[0]
    transfer = link_transfer_ms(resnet, 8, "gpu-server")
    assert transfer == pytest.approx(perf.transfer_ms) and transfer > perf.p50_ms / 2
    assert dep.qps == pytest.approx(perf.throughput) and dep.p50_ms == perf.p50_ms
    (row,) = placement_rows([Sample(a100, DeviceCondition(), placements, placements[0])]).x
    load = row[FEATURE_NAMES.index("corunner_open_load")]
    assert load == pytest.approx(400.0 / 8 * (perf.p50_ms - transfer) / 1000.0)
