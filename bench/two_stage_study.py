"""Study: does the newcomer's own busy share, estimated by the shipped network, help as a column?

    python bench/two_stage_study.py [--rows 200000] [--epochs 60] [--variants schema4,own,own+after]

docs/scheduler-model.md, end of section 6. Stage one is the shipped network (`load_default()`):
for every row, training and scored alike, the target alone on its device (the idle row, one
query at a time) gives a p50, and the column is qps / batch x max(p50 - input transfer,
roofline bound) / 1000, 0 for a closed loop, at most 2: what `recommend` estimates. Each
variant trains 2 members of (128, 128, 128) on `--rows` rows of seed 0 (with the size
variants) and is scored on 8,000 rows of seed 777. About 35 s of rows and 110 s per variant
on 2 vCPUs at the defaults.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

import edgetop.models.predictor as predictor_module
from edgetop.core.placement import idle_rows, link_transfer_ms, offers_load
from edgetop.core.recommend import roofline_bound
from edgetop.core.training import accuracy, training_workloads
from edgetop.core.trainingdata import Sample, TrainingSet, placement_rows, sample_states
from edgetop.models.predictor import LatencyPredictor, load_default, train_ensemble
from edgetop.models.schedfeatures import (
    DEVICE_COLUMNS,
    FEATURE_NAMES,
    WORKLOAD_COLUMNS,
    feature_matrix,
)

DEVICE = slice(len(WORKLOAD_COLUMNS), len(WORKLOAD_COLUMNS) + len(DEVICE_COLUMNS))
COL_OPEN_BUSY = FEATURE_NAMES.index("corunner_open_busy")
VARIANTS = ("schema4", "own", "own+after")


def rows(n: int, seed: int) -> tuple[list[Sample], TrainingSet]:
    started = time.time()
    samples = sample_states(n, seed, training_workloads())
    data = placement_rows(samples)
    print(f"{n} rows of seed {seed}: {time.time() - started:.0f} s", flush=True)
    return samples, data


def own_busy(samples: Sequence[Sample], x: np.ndarray, stage1: LatencyPredictor) -> np.ndarray:
    """Each row's target busy share from stage one's p50 of the target alone on its device."""
    devices = x[:, DEVICE]
    idle = idle_rows(devices)
    groups: dict[tuple[str, int, str], list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault((s.target.workload.name, s.target.batch, s.profile.kind), []).append(i)
    alone = np.zeros_like(x)
    transfer = np.zeros(len(x))
    floor = np.zeros(len(x))
    for (_, batch, kind), idx in groups.items():
        workload = samples[idx[0]].target.workload
        alone[idx] = feature_matrix(workload, batch, idle[idx])
        transfer[idx] = link_transfer_ms(workload, batch, kind, "edge")
        floor[idx] = roofline_bound(workload, batch, devices[idx])
    device_ms = np.maximum(stage1.predict(alone).p50_ms - transfer, floor)
    qps = np.array(
        [
            s.target.qps if s.target.qps and offers_load(s.target.scenario, s.target.qps) else 0.0
            for s in samples
        ]
    )
    batch = np.array([s.target.batch for s in samples], dtype=np.float64)
    return np.clip(qps / batch * device_ms / 1000.0, 0.0, 2.0)


def with_columns(x: np.ndarray, own: np.ndarray, variant: str) -> np.ndarray:
    if variant == "schema4":
        return x
    if variant == "own":
        return np.column_stack([x, own])
    return np.column_stack([x, own, np.minimum(x[:, COL_OPEN_BUSY] + own, 1.0)])


def _variants(text: str) -> list[str]:
    names = [v for v in text.split(",") if v]
    if not names or any(v not in VARIANTS for v in names):
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of {VARIANTS}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--variants", type=_variants, default=",".join(VARIANTS))
    args = parser.parse_args()
    stage1 = load_default()
    train_samples, train = rows(args.rows, 0)
    test_samples, test = rows(8_000, 777)
    own_train = own_busy(train_samples, train.x, stage1)
    own_test = own_busy(test_samples, test.x, stage1)
    for variant in args.variants:
        x_train = with_columns(train.x, own_train, variant)
        extra = tuple(f"extra{k}" for k in range(x_train.shape[1] - len(FEATURE_NAMES)))
        # train_ensemble checks rows against the schema's names: widen them for this study.
        predictor_module.FEATURE_NAMES = FEATURE_NAMES + extra
        try:
            started = time.time()
            model = train_ensemble(
                x_train, train.y, members=2, epochs=args.epochs, seed=0,
                hidden=(128, 128, 128), batch_size=256,
            )  # fmt: skip
            pred = model.predict(with_columns(test.x, own_test, variant))
        finally:
            predictor_module.FEATURE_NAMES = FEATURE_NAMES
        p99 = accuracy(pred.p99_ms, np.exp(test.y[:, 1]))
        p50 = accuracy(pred.p50_ms, np.exp(test.y[:, 0]))
        print(
            f"{variant:10s} p99 within 10% {p99.within_10pct:.1%}, MAPE {p99.mape:.1%}; "
            f"p50 within 10% {p50.within_10pct:.1%} ({time.time() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
