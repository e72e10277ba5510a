"""`edgetop --auto`: the unattended front. No TTY; JSON lines on stdout (and --log).

It runs the monitor, the orchestrator and the auto-pilot (core/autopilot.py) over the state
directory (`--state-dir`, shared with the interface and `edgetop deploy`): every `--interval`
seconds one auto-pilot step (a reconcile round, triggers, guarded moves). Lines, one JSON
object each (see docs/autopilot.md):

- `start` / `stop`: the process began / ended;
- `host`: a host's status changed;
- `fleet`: the fleet's status, once per monitor period;
- `decision`: one audit-log line written by this process (the auto-pilot's triggers, skips,
  rollbacks, and the orchestrator's moves, starts, failures), with `who`, `action`,
  `deployment` and the decision's details.

SIGTERM or SIGINT: the step in progress finishes (a move is never left half-done by us), the
workers keep running on their hosts, the state stays saved, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
import sys
import time
from typing import IO, Any

from edgetop.core.autopilot import Autopilot, AutoSettings, catalog_workload
from edgetop.core.config import FleetConfig
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.monitor import FleetMonitor
from edgetop.core.orchestrator import Orchestrator, OrchestratorSettings
from edgetop.core.report import fleet_dict
from edgetop.core.statestore import StateError, StateStore, default_state_dir
from edgetop.models.errors import ModelError
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.link import LinkEvent

DEFAULT_INTERVAL_S = 2.0
SETTLE_TIMEOUT_S = 30.0  # the first step waits this long for every host's first outcome


class JsonLines:
    def __init__(self, *streams: IO[str]) -> None:
        self._streams = streams

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        for stream in self._streams:
            stream.write(line)
            stream.flush()


def status_change_record(before: str | None, event: LinkEvent) -> dict[str, Any] | None:
    """A `host` record when a host's status changed, else None."""
    if event.status.value == before:
        return None
    return {
        "type": "host",
        "at": event.at,
        "host": event.host,
        "status": event.status.value,
        "previous": before,
        "reason": event.reason,
    }


def workload_resolver(workloads_file: object = None) -> Any:
    """Model name -> features: the catalog, else a declared or `module:function` model
    (measured once, then cached); None when it cannot be resolved (the auto-pilot then picks
    targets without a prediction)."""
    from edgetop.tui.recommend_command import resolve_model

    @functools.lru_cache(maxsize=256)
    def resolve(model: str) -> WorkloadFeatures | None:
        found = catalog_workload(model)
        if found is not None:
            return found
        try:
            return resolve_model(model, workloads_file)
        except (ModelError, ImportError, ValueError):
            return None

    return resolve


async def run_unattended(
    config: FleetConfig,
    store: StateStore,
    out: JsonLines,
    stop: asyncio.Event,
    *,
    interval: float = DEFAULT_INTERVAL_S,
    accept_new_hosts: bool = False,
    settings: AutoSettings | None = None,
    workloads_file: object = None,
) -> None:
    monitor = FleetMonitor(config, accept_new_hosts=accept_new_hosts)
    last: dict[str, str] = {}

    def on_event(snapshot: FleetSnapshot, event: LinkEvent) -> None:
        record = status_change_record(last.get(event.host), event)
        last[event.host] = event.status.value
        if record is not None:
            out.write(record)

    monitor.subscribe(on_event)
    period = min(min(h.interval for h in config.hosts), interval)
    out.write(
        {
            "type": "start",
            "at": time.time(),
            "hosts": [h.name for h in config.hosts],
            "state_dir": str(store.directory),
            "interval": interval,
        }
    )
    async with monitor:
        orch = Orchestrator(
            config, monitor, store, settings=OrchestratorSettings(accept_new_hosts=accept_new_hosts)
        )
        orch.place_simulated()  # what already "runs" on sim hosts loads them, as in the UI
        auto = Autopilot(
            orch,
            settings or AutoSettings(),
            emit=out.write,
            workloads=workload_resolver(workloads_file),
        )
        # The first round judges nothing before every host had its chance to answer: a host
        # still connecting must not look lost, nor its workers missing.
        settled = asyncio.ensure_future(monitor.wait_for(lambda s: s.all_settled, SETTLE_TIMEOUT_S))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({settled, stopping}, return_when=asyncio.FIRST_COMPLETED)
        settled.cancel()
        next_step = time.monotonic()
        while not stop.is_set():
            if time.monotonic() >= next_step:
                # A signal only sets `stop`: the step in progress finishes (module doc).
                await auto.step()
                next_step = time.monotonic() + interval
            try:
                await asyncio.wait_for(asyncio.shield(stopping), timeout=period)
            except asyncio.TimeoutError:
                out.write({"type": "fleet", **fleet_dict(monitor.snapshot, time.time())})
        stopping.cancel()
    out.write({"type": "stop", "at": time.time()})


def run_auto(config: FleetConfig, args: argparse.Namespace) -> int:
    store = StateStore(args.state_dir or default_state_dir())
    interval = getattr(args, "interval", None)
    interval = DEFAULT_INTERVAL_S if interval is None else interval
    try:
        store.load()
    except StateError as exc:
        print(f"edgetop --auto: error: {exc}", file=sys.stderr)
        return 2
    if interval <= 0:
        print(
            f"edgetop --auto: error: --interval must be above 0, got {interval:g}", file=sys.stderr
        )
        return 2
    log = args.log.open("a", encoding="utf-8") if args.log else None
    # The log file first: a line seen on stdout is already in the log, even if edgetop is
    # killed the next instant.
    out = JsonLines(*([log] if log else []), sys.stdout)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # SIGTERM (systemd stop) ends the loop after the current step; hosts keep their workers.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_unattended(
            config,
            store,
            out,
            stop,
            interval=interval,
            accept_new_hosts=getattr(args, "accept_new_hosts", False),
            workloads_file=getattr(args, "workloads", None),
        )

    try:
        asyncio.run(main())
    finally:
        if log:
            log.close()
    return 0
