"""A profiled row's telemetry is a sample taken after the previous run on the host ended."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from edgetop.core import profiler
from edgetop.core.config import parse_config
from edgetop.core.profile import Run
from edgetop.core.profiler import settled_view
from edgetop.models.catalog import load_catalog
from edgetop.remote.deploy import DeployError

HOST = '[[host]]\nname = "tb2"\ntransport = "ssh"\naddress = "127.0.0.2"\n'


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


class _Shell:
    async def close(self) -> None:
        return None


def refusing_hosts(monkeypatch: Any) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Every deploy refused for memory, as a worker reports it: (deploy/stop calls, specs)."""
    calls: list[tuple[str, str]] = []
    specs: list[dict[str, Any]] = []

    async def refuse(shell: Any, spec: dict[str, Any], **_: Any) -> None:
        calls.append(("deploy", spec["id"]))
        specs.append(spec)
        raise DeployError(f"deployment {spec['id']} on tb2 failed: not enough memory on cpu")

    async def stop(shell: Any, deployment_id: str, **_: Any) -> None:
        calls.append(("stop", deployment_id))

    async def open_shell(*_: Any) -> tuple[_Shell, None]:
        return _Shell(), None

    monkeypatch.setattr(profiler, "deploy", refuse)
    monkeypatch.setattr(profiler, "stop", stop)
    monkeypatch.setattr(profiler, "open_host_shell", open_shell)
    return calls, specs


async def test_a_refused_worker_is_stopped_before_the_next_run(monkeypatch: Any) -> None:
    # A worker reports its refusal (not enough memory) and only then exits: the sweep must
    # wait for it, or the next run's telemetry carries its load.
    calls, _ = refusing_hosts(monkeypatch)
    config = parse_config(HOST, "hosts.toml")
    run = Run("tb2", "resnet50", 8, "singlestream")
    features = load_catalog()["resnet50"]
    outcome = await profiler.measure(
        config,
        run,
        features,
        TickingMonitor([0.0]),
        profiler.SweepSettings(1.0),  # type: ignore[arg-type]
    )
    assert outcome.row is None and outcome.error is not None
    assert "not enough memory" in outcome.error
    assert [c[0] for c in calls] == ["deploy", "stop"]
    assert calls[0][1] == calls[1][1]  # the refused worker itself


async def test_min_queries_reaches_the_worker_with_its_hard_limit(monkeypatch: Any) -> None:
    _, specs = refusing_hosts(monkeypatch)
    config = parse_config(HOST, "hosts.toml")
    run = Run("tb2", "yolov5s", 8, "singlestream")
    features = load_catalog()["yolov5s"]
    for settings in (profiler.SweepSettings(10.0, 100), profiler.SweepSettings(10.0)):
        await profiler.measure(config, run, features, TickingMonitor([0.0]), settings)  # type: ignore[arg-type]
    bounded, plain = specs
    assert (bounded["min_queries"], bounded["max_duration_s"], bounded["window_s"]) == (
        100,
        100.0,
        100.0,
    )
    assert "min_queries" not in plain and plain["window_s"] == 10.0
    # The worker keeps at most an hour of statistics.
    assert profiler.SweepSettings(1000.0, 5).max_duration_s == 3600.0
