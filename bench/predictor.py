"""Latency predictor inference: `LatencyPredictor.predict` on n feature rows.

    python bench/predictor.py [--rows 1 100 1000 10000] [--repeats 30]

Rows are generated training rows (every device profile in random live states), so values are
realistic. Each size is timed in `--repeats` rounds of 20 calls after a warm-up (time.perf_counter,
this process, torch NOT imported: the controller's situation); the table gives the per-call
minimum and median over rounds. The weights are the ones the scheduler would use
(`load_default()`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

from edgetop.core.trainingdata import generate
from edgetop.models.predictor import default_weights_path, load_default


def per_call_ms(fn: object, repeats: int, calls: int = 20) -> list[float]:
    for _ in range(3):
        fn()  # type: ignore[operator]
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()  # type: ignore[operator]
        out.append((time.perf_counter() - start) / calls * 1e3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    predictor = load_default()
    pool = generate(max(args.rows), seed=7).x
    print(f"weights: {default_weights_path()} ({predictor.version}), {predictor.members} "
          f"members, hidden {predictor.hidden}")  # fmt: skip
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, numpy "
          f"{np.__version__}; torch imported: {'torch' in sys.modules}")  # fmt: skip
    print("\n| rows | min ms | median ms | µs per row (median) |\n|---|---|---|---|")
    for n in args.rows:
        x = pool[:n]
        times = per_call_ms(lambda x=x: predictor.predict(x), args.repeats)
        median = statistics.median(times)
        print(f"| {n} | {min(times):.3f} | {median:.3f} | {median * 1e3 / n:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
