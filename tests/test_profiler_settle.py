"""A profiled row's telemetry is a sample taken after the previous run on the host ended."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from edgetop.core.profiler import settled_view


class TickingMonitor:
    """A monitor whose host reports a new sample (seq + 1, util of the moment) every tick."""

    def __init__(self, utils: list[float]) -> None:
        self.utils = utils
        self.seq = 0

    @property
    def snapshot(self) -> Any:
        view = SimpleNamespace(seq=self.seq, util=self.utils[min(self.seq, len(self.utils) - 1)])
        return SimpleNamespace(host=lambda name: view)

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float) -> bool:
        for _ in range(100):
            if predicate(self.snapshot):
                return True
            self.seq += 1
            await asyncio.sleep(0)
        return False


async def test_the_view_skips_samples_that_may_straddle_the_previous_run() -> None:
    # seq 0: the previous run still loads the host; seq 1 straddles its end; seq 2 is clean.
    monitor = TickingMonitor([100.0, 60.0, 2.0])
    view = await settled_view(monitor, "tb1", 0.5)  # type: ignore[arg-type]
    assert (view.seq, view.util) == (2, 2.0)


async def test_a_quiet_host_gives_its_latest_sample() -> None:
    monitor = TickingMonitor([5.0])

    async def never(predicate: Callable[[Any], bool], timeout: float) -> bool:
        return False

    monitor.wait_for = never  # type: ignore[method-assign]
    view = await settled_view(monitor, "tb1", 0.5)  # type: ignore[arg-type]
    assert view.seq == 0
