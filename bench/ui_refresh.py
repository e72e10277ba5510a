"""The interface with N simulated devices refreshed at 1 Hz, headless (Textual's run_test).

Measures: time from start to the first full screen (every host's panel drawn with data),
time per refresh (one `_render_all`: header, every panel, the table; median and p95) and the
process's CPU use while it runs (the simulated hosts' agents run in the same process, so this
is an upper bound on the interface's own share).

    python bench/ui_refresh.py --devices 200 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from edgetop.core.config import parse_config
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.statestore import StateStore
from edgetop.tui.app import EdgetopApp
from edgetop.tui.panels import HostPanel

PROFILES = ("a100-40gb", "v100-16gb", "t4", "jetson-agx-xavier", "jetson-orin-nano")
MODELS = ("resnet50", "mobilenetv2", "bert-base")


def fleet_file(n: int) -> str:
    return "\n".join(
        f'[[host]]\nname = "sim-{i:03d}"\ntransport = "sim"\n'
        f'device = "{PROFILES[i % len(PROFILES)]}"\ninterval = 1.0\n'
        for i in range(n)
    )


def state(directory: Path, n: int, deployments: int) -> StateStore:
    store = StateStore(directory)
    store.save(
        tuple(
            Deployment(
                f"{MODELS[i % len(MODELS)]}-{i + 1}",
                MODELS[i % len(MODELS)],
                1,
                50.0,
                status=Status.RUNNING,
                where=Where(f"sim-{(i * 7) % n:03d}", "gpu0"),
                worker=f"{MODELS[i % len(MODELS)]}-{i + 1}.1",
            )
            for i in range(deployments)
        )
    )
    return store


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(n: int, seconds: float, deployments: int) -> dict[str, float]:
    config = parse_config(fleet_file(n), "bench.toml")
    with tempfile.TemporaryDirectory() as tmp:
        app = EdgetopApp(config, FleetMonitor(config), store=state(Path(tmp), n, deployments))
        times: list[float] = []
        render = app._render_all

        def timed() -> None:
            t = time.perf_counter()
            render()
            times.append(time.perf_counter() - t)

        app._render_all = timed  # type: ignore[method-assign]
        start = time.perf_counter()
        async with app.run_test(size=(120, 40)) as pilot:
            while True:
                panels = list(app.query(HostPanel))
                snap = app.fleet
                if (
                    len(panels) == n
                    and snap is not None
                    and snap.all_answered
                    and all(p._shown is not None and p._shown[0].samples for p in panels)
                ):
                    break
                await pilot.pause(0.01)
            first_screen = time.perf_counter() - start
            times.clear()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await pilot.pause(seconds)
            cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            refreshes = list(times)
    return {
        "devices": float(n),
        "first_screen_s": first_screen,
        "refreshes": float(len(refreshes)),
        "refresh_median_ms": 1000 * statistics.median(refreshes),
        "refresh_p95_ms": 1000 * pct(refreshes, 0.95),
        "cpu_share": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--deployments", type=int, default=20)
    args = parser.parse_args()
    r = asyncio.run(run(args.devices, args.seconds, args.deployments))
    print(
        f"{r['devices']:.0f} simulated devices, {args.deployments} deployments, 1 Hz, "
        f"{args.seconds:g} s headless at 120x40\n"
        f"first full screen     {r['first_screen_s']:.2f} s\n"
        f"refreshes             {r['refreshes']:.0f}\n"
        f"refresh median        {r['refresh_median_ms']:.1f} ms\n"
        f"refresh p95           {r['refresh_p95_ms']:.1f} ms\n"
        f"process CPU           {100 * r['cpu_share']:.0f}% of one core "
        "(sim agents included)"
    )


if __name__ == "__main__":
    main()
