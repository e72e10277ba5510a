"""Runs a profile sweep: each run deploys a worker for a fixed time and reads its statistics.

Runs go one at a time, so no two measurements share a machine's cores or a switch (a fleet of
testbed "hosts" shares one machine). A run that fails becomes an outcome with its reason and
the sweep goes on; an interrupted sweep stops the worker it was measuring.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgetop import __version__
from edgetop.core.config import FleetConfig
from edgetop.core.hostshell import host_python, open_host_shell, user_module_files
from edgetop.core.monitor import FleetMonitor
from edgetop.core.profile import Run, profile_row
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.deploy import DeployError, Layout, deploy, stop
from edgetop.remote.deploy import list_deployments as scan
from edgetop.remote.errors import EdgetopError

# Profiling runs live apart from the operator's deployments, so `ps` never lists them.
PROFILE_LAYOUT = Layout(state="~/.local/state/edgetop/profile-runs")
POLL_S = 0.5
FINISHED = ("stopped", "failed", "dead")


@dataclass(frozen=True)
class RunOutcome:
    run: Run
    row: dict[str, Any] | None = None
    error: str | None = None


MAX_DURATION_FACTOR = 10.0


@dataclass(frozen=True)
class SweepSettings:
    duration_s: float = 10.0
    # A run lasts duration_s and then until min_queries have completed (a p99 needs ~100;
    # slow batches give a handful in 10 s), but at most MAX_DURATION_FACTOR x duration_s
    # (and an hour).
    min_queries: int | None = None
    qps: float | None = None  # server scenario only
    model_kwargs: Mapping[str, Any] | None = None  # e.g. seq_len, image_size, rows_scale
    accept_new_hosts: bool = False
    # Declared (non-torch) models: name -> the worker spec's `declared` field (launch, query).
    declared: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def max_duration_s(self) -> float:
        """The longest a run may last."""
        if self.min_queries is None:
            return self.duration_s
        # The worker keeps at most an hour of statistics (its window_s).
        return max(self.duration_s, min(self.duration_s * MAX_DURATION_FACTOR, 3600.0))


async def settled_view(monitor: FleetMonitor, host: str, interval: float) -> Any:
    """The host as the run starts: a sample taken wholly after the previous run on it ended
    (two samples on, so none straddles it), or the latest one if the host goes quiet. A row's
    telemetry describes the device without the measured workload, as training rows do."""
    seq = monitor.snapshot.host(host).seq
    await monitor.wait_for(lambda s: s.host(host).seq >= seq + 2, 3 * interval + 1.0)
    return monitor.snapshot.host(host)


async def measure(
    config: FleetConfig,
    run: Run,
    features: WorkloadFeatures,
    monitor: FleetMonitor,
    settings: SweepSettings,
) -> RunOutcome:
    host = config.host(run.host)
    if host.transport == "sim":
        return RunOutcome(run, error="simulated host: nothing real to measure")
    view = await settled_view(monitor, run.host, host.interval)
    spec = {
        "id": f"profile-{secrets.token_hex(4)}",
        "model": run.model,
        "batch": run.batch,
        "scenario": run.scenario,
        "qps": settings.qps,
        "duration_s": settings.duration_s,
        "window_s": settings.max_duration_s,  # the final statistics cover the whole run
        "model_kwargs": dict(settings.model_kwargs or {}),
    }
    if settings.min_queries is not None:
        spec["min_queries"] = settings.min_queries
        spec["max_duration_s"] = settings.max_duration_s
    if settings.declared and run.model in settings.declared:
        spec["declared"] = dict(settings.declared[run.model])
    python = host_python(host)
    user_modules = user_module_files(run.model)
    try:
        shell, conn = await open_host_shell(config, host, settings.accept_new_hosts)
    except EdgetopError as exc:
        return RunOutcome(run, error=str(exc))
    try:
        try:
            await deploy(
                shell, spec, python=python, layout=PROFILE_LAYOUT, user_modules=user_modules
            )
            info = await _wait_finished(shell, spec["id"], python, settings.max_duration_s)
        except DeployError as exc:
            return RunOutcome(run, error=str(exc))
        finally:
            # Never leave a profiling worker behind: interrupted, timed out, or refused (a
            # worker that reports its refusal is still exiting, and the next run's telemetry
            # must not carry it). `stop` waits until the process is gone.
            with contextlib.suppress(EdgetopError, asyncio.CancelledError):
                await asyncio.shield(stop(shell, spec["id"], python=python, layout=PROFILE_LAYOUT))
        if info is None or not info.metrics or info.state != "stopped":
            reason = info.reason if info else "the worker never finished"
            return RunOutcome(run, error=f"run did not complete: {reason}")
        row = profile_row(run, features, view, info.metrics, measured_at=time.time(),
                          version=__version__)  # fmt: skip
        return RunOutcome(run, row=row)
    finally:
        with contextlib.suppress(Exception):
            await shell.close()
        if conn is not None:
            conn.close()


async def _wait_finished(shell: Any, deployment_id: str, python: str, duration_s: float) -> Any:
    deadline = time.monotonic() + duration_s + 120  # model load and warm-up on a slow host
    while time.monotonic() < deadline:
        infos = await scan(shell, python=python, layout=PROFILE_LAYOUT)
        info = next((i for i in infos if i.id == deployment_id), None)
        if info is not None and info.state in FINISHED:
            return info
        await asyncio.sleep(POLL_S)
    return None


async def run_sweep(
    config: FleetConfig,
    runs: Sequence[Run],
    features: Mapping[str, WorkloadFeatures],
    settings: SweepSettings,
    on_outcome: Callable[[RunOutcome], None],
) -> None:
    """Measure every run in turn, reporting each outcome as soon as it is known."""
    async with FleetMonitor(config, accept_new_hosts=settings.accept_new_hosts) as monitor:
        await monitor.wait_for(lambda s: s.all_settled, 30)
        for run in runs:
            on_outcome(await measure(config, run, features[run.model], monitor, settings))
