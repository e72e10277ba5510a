"""Training data for the learned scheduler, generated from the performance model.

A row is one random device state and one deployment placed on it:
- a device profile, a power mode, an ambient temperature (sometimes hot enough to throttle)
  or a forced temperature (as a demo does);
- 0..3 deployments already running on it (random workloads, batches, scenarios; their offered
  load drawn so the device is rarely hopelessly overloaded);
- a target workload at a batch (server at a random share of its capacity, or singlestream).

Features are what the scheduler sees before placing the target (the device with its current
co-runners, `device_features`); labels are log p50 and log p99 of the target once placed
(`evaluate` of co-runners + target). Seeded: the same arguments give identical arrays.

The co-runner columns (schemas 3 and 4) go through the live path: each co-runner becomes the
reading its worker would report (scenario, batch, measured p50, throughput and busy share,
as core/simphysics reports them), then the Deployment `core.live` makes of a reading, then
`placement.with_corunners`, so a training row and a live decision never disagree on them.

GPT-2 and YOLOv5 (TRAINING_EXCLUDED) are the held-out "unseen" models: they are never a target
nor a co-runner unless `workloads` names them explicitly (to build their evaluation rows).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgetop.core.live import deployment_from_reading
from edgetop.core.perfmodel import (
    DEFAULT_MODEL,
    DEVICE_CLASSES,
    DeviceCondition,
    DeviceOutcome,
    PerfModel,
    Placement,
    device_features,
)
from edgetop.core.placement import Deployment, with_corunners
from edgetop.core.profiles import PROFILES, DeviceProfile
from edgetop.models.catalog import load_catalog
from edgetop.models.schedfeatures import FEATURE_NAMES, device_row, feature_matrix
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.protocol import DeploymentReading

__all__ = [
    "DEFAULT_BATCHES",
    "TRAINING_EXCLUDED",
    "Sample",
    "TrainingSet",
    "corunner_deployments",
    "default_workloads",
    "generate",
    "placement_rows",
    "sample_states",
]

TRAINING_EXCLUDED = ("gpt2", "gpt2-medium", "yolov5s", "yolov5m")  # unseen models
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)

# The state distribution (documented in docs/perf-model.md).
COLOCATED_WEIGHTS = (0.3, 0.3, 0.25, 0.15)  # P(0, 1, 2, 3 co-runners)
CORUNNER_SCENARIOS = (("server", 0.8), ("singlestream", 0.1), ("offline", 0.1))
TARGET_SCENARIOS = (("server", 0.75), ("singlestream", 0.25))
OVERLOAD_SHARE = 0.05  # rows whose co-runners offer more than the device can serve
DEFAULT_MODE_SHARE = 0.6  # rows in the profile's default power mode
HOT_SHARE = 0.15  # rows at a hot ambient (35-55 °C)
FORCED_TEMP_SHARE = 0.05  # rows with a forced temperature around the throttle point
TARGET_LOAD = (0.02, 0.4)  # a server target offers this share of its standalone capacity


@dataclass(frozen=True)
class TrainingSet:
    """Feature rows and their labels, with what each row is about."""

    x: np.ndarray  # (n, len(FEATURE_NAMES)) from models.schedfeatures
    y: np.ndarray  # (n, 2): log(p50_ms), log(p99_ms) of the target placement
    models: tuple[str, ...]  # per row
    families: tuple[str, ...]
    devices: tuple[str, ...]  # profile names
    scenarios: tuple[str, ...] = ()  # the target's scenario per row (empty: unknown)
    qps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # target's qps; NaN: none

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, mask: np.ndarray) -> TrainingSet:
        """The rows where `mask` (booleans, or indices) selects."""
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)

        def pick(values: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(values[i] for i in idx) if values else ()

        return TrainingSet(
            x=self.x[idx],
            y=self.y[idx],
            models=pick(self.models),
            families=pick(self.families),
            devices=pick(self.devices),
            scenarios=pick(self.scenarios),
            qps=self.qps[idx] if len(self.qps) else self.qps,
        )

    @staticmethod
    def concat(parts: Sequence[TrainingSet]) -> TrainingSet:
        if not parts:
            return TrainingSet(np.zeros((0, len(FEATURE_NAMES))), np.zeros((0, 2)), (), (), ())
        complete = all(len(p.scenarios) == len(p) and len(p.qps) == len(p) for p in parts)
        return TrainingSet(
            x=np.concatenate([p.x for p in parts]),
            y=np.concatenate([p.y for p in parts]),
            models=tuple(m for p in parts for m in p.models),
            families=tuple(f for p in parts for f in p.families),
            devices=tuple(d for p in parts for d in p.devices),
            scenarios=tuple(s for p in parts for s in p.scenarios) if complete else (),
            qps=np.concatenate([p.qps for p in parts]) if complete else np.zeros(0),
        )


@dataclass(frozen=True)
class Sample:
    """One random device state and the placement whose latency is the label."""

    profile: DeviceProfile
    condition: DeviceCondition
    colocated: tuple[Placement, ...]
    target: Placement


def default_workloads() -> dict[str, WorkloadFeatures]:
    """The catalog without the unseen models."""
    return {n: w for n, w in load_catalog().items() if n not in TRAINING_EXCLUDED}


def _weighted(rng: random.Random, choices: Sequence[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _condition(rng: random.Random, profile: DeviceProfile, origin: str) -> DeviceCondition:
    modes = profile.power_modes
    mode = profile.default_power_mode if rng.random() < DEFAULT_MODE_SHARE else rng.choice(modes)
    roll = rng.random()
    if roll < FORCED_TEMP_SHARE:
        threshold = DEVICE_CLASSES[profile.kind].throttle_c
        return DeviceCondition(mode, rng.uniform(threshold - 15, threshold + 12), 25.0, origin)
    ambient = rng.uniform(35.0, 55.0) if roll < FORCED_TEMP_SHARE + HOT_SHARE else 25.0
    return DeviceCondition(mode, None, ambient, origin)


def _capacity(
    model: PerfModel, w: WorkloadFeatures, batch: int, p: DeviceProfile, mode: str
) -> float:
    """Samples/s the placement serves alone (one batch after another)."""
    return batch * 1000.0 / model.service_ms(w, batch, p, mode)


def _fits(profile: DeviceProfile, placements: Sequence[Placement]) -> bool:
    cls = DEVICE_CLASSES[profile.kind]
    need = cls.idle_bytes + sum(
        p.workload.memory_bytes_at(p.batch) + cls.runtime_bytes for p in placements
    )
    return need <= profile.memory_bytes


def _corunners(
    rng: random.Random,
    model: PerfModel,
    profile: DeviceProfile,
    mode: str,
    workloads: Sequence[WorkloadFeatures],
    batches: Sequence[int],
) -> tuple[Placement, ...]:
    count = rng.choices(range(len(COLOCATED_WEIGHTS)), weights=COLOCATED_WEIGHTS)[0]
    # Total offered load of the open co-runners, split at random between them.
    total = rng.uniform(0.9, 1.5) if rng.random() < OVERLOAD_SHARE else rng.uniform(0.0, 0.85)
    split = [rng.random() + 0.05 for _ in range(count)]
    out: list[Placement] = []
    for share in split:
        w = rng.choice(workloads)
        batch = rng.choice(batches)
        scenario = _weighted(rng, CORUNNER_SCENARIOS)
        qps = None
        if scenario == "server":
            qps = total * share / sum(split) * _capacity(model, w, batch, profile, mode)
        candidate = Placement(w, batch, scenario, qps)
        if _fits(profile, [*out, candidate]):
            out.append(candidate)
    return tuple(out)


def sample_states(
    n: int,
    seed: int = 0,
    workloads: Mapping[str, WorkloadFeatures] | None = None,
    profiles: Sequence[DeviceProfile] | None = None,
    batches: Sequence[int] = DEFAULT_BATCHES,
    origin: str = "edge",
    model: PerfModel = DEFAULT_MODEL,
) -> list[Sample]:
    """`n` random device states with a target that fits beside its co-runners."""
    rng = random.Random(seed)
    pool = list((default_workloads() if workloads is None else workloads).values())
    devices = list(PROFILES.values()) if profiles is None else list(profiles)
    if not pool or not devices or not batches:
        raise ValueError("training data needs at least one workload, profile and batch size")
    out: list[Sample] = []
    misses = 0
    while len(out) < n:
        profile = rng.choice(devices)
        condition = _condition(rng, profile, origin)
        mode = condition.power_mode or profile.default_power_mode
        colocated = _corunners(rng, model, profile, mode, pool, batches)
        w, batch = rng.choice(pool), rng.choice(batches)
        scenario = _weighted(rng, TARGET_SCENARIOS)
        qps = None
        if scenario == "server":
            qps = rng.uniform(*TARGET_LOAD) * _capacity(model, w, batch, profile, mode)
        target = Placement(w, batch, scenario, qps)
        # The scheduler never places what does not fit, so such rows teach it nothing.
        if not _fits(profile, [*colocated, target]):
            misses += 1
            if misses > 100 * (n + 10):
                raise ValueError("no sampled target fits on the given profiles")
            continue
        out.append(Sample(profile, condition, colocated, target))
    return out


def corunner_deployments(
    placements: Sequence[Placement], outcome: DeviceOutcome
) -> tuple[Deployment, ...]:
    """The co-runners as the live fleet would see them on a device in `outcome`: each one's
    worker reading (what the simulated agent reports) turned into a Deployment by core.live."""
    workloads = {p.workload.name: p.workload for p in placements}
    return tuple(
        deployment_from_reading(
            DeploymentReading(
                id=f"c{k}",
                state="running",
                model=p.workload.name,
                batch=p.batch,
                scenario=p.scenario,
                p50_ms=perf.p50_ms,
                p90_ms=perf.p90_ms,
                p99_ms=perf.p99_ms,
                throughput=perf.throughput,
                busy=perf.util,
            ),
            "",
            "",
            workloads,
        )
        for k, (p, perf) in enumerate(zip(placements, outcome.performances, strict=True))
    )


def _rate(p: Placement) -> float:
    return math.nan if p.qps is None else p.qps


def placement_rows(samples: Sequence[Sample], model: PerfModel = DEFAULT_MODEL) -> TrainingSet:
    """Features (device before the target) and labels (target after) of each sample."""
    labels = np.zeros((len(samples), 2))
    drows = []
    for i, s in enumerate(samples):
        before = model.evaluate(s.profile, s.colocated, s.condition)
        features = device_features(s.profile, before, s.condition)
        deployments = corunner_deployments(s.colocated, before)
        drows.append(device_row(with_corunners(features, deployments, s.condition.origin)))
        after = model.evaluate(s.profile, (*s.colocated, s.target), s.condition)
        perf = after.performances[-1]
        labels[i] = (math.log(perf.p50_ms), math.log(perf.p99_ms))
    x = np.zeros((len(samples), len(FEATURE_NAMES)))
    # One feature_matrix call per (workload, batch): the rows are built in bulk.
    groups: dict[tuple[str, int], list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault((s.target.workload.name, s.target.batch), []).append(i)
    for idx in groups.values():
        first = samples[idx[0]].target
        rates = np.array([_rate(samples[i].target) for i in idx])
        x[idx] = feature_matrix(
            first.workload, first.batch, np.stack([drows[i] for i in idx]), rates
        )
    return TrainingSet(
        x=x,
        y=labels,
        models=tuple(s.target.workload.name for s in samples),
        families=tuple(s.target.workload.family for s in samples),
        devices=tuple(s.profile.name for s in samples),
        scenarios=tuple(s.target.scenario for s in samples),
        qps=np.array([_rate(s.target) for s in samples]),
    )


def generate(
    n: int,
    seed: int = 0,
    workloads: Mapping[str, WorkloadFeatures] | None = None,
    profiles: Sequence[DeviceProfile] | None = None,
    batches: Sequence[int] = DEFAULT_BATCHES,
    origin: str = "edge",
) -> TrainingSet:
    """`n` rows from the performance model. Default workloads: the catalog minus the unseen
    models; default profiles: every profile. `origin` is where the target's queries come from
    (the labels include their input transfer)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return placement_rows(sample_states(n, seed, workloads, profiles, batches, origin))
