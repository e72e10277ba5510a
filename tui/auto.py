"""`edgetop --auto`: the unattended front. No TTY; JSON lines on stdout (and --log).

At this stage it streams fleet status: one `host` line per status change and one `fleet`
line per interval. Placement decisions join the stream with the scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import IO, Any

from edgetop.core.config import FleetConfig
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.monitor import FleetMonitor
from edgetop.core.report import fleet_dict
from edgetop.remote.link import LinkEvent


class JsonLines:
    def __init__(self, *streams: IO[str]) -> None:
        self._streams = streams

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
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


async def stream_fleet(
    config: FleetConfig, out: JsonLines, stop: asyncio.Event, accept_new_hosts: bool = False
) -> None:
    monitor = FleetMonitor(config, accept_new_hosts=accept_new_hosts)
    last: dict[str, str] = {}

    def on_event(snapshot: FleetSnapshot, event: LinkEvent) -> None:
        record = status_change_record(last.get(event.host), event)
        last[event.host] = event.status.value
        if record is not None:
            out.write(record)

    monitor.subscribe(on_event)
    period = min(h.interval for h in config.hosts)
    out.write({"type": "start", "at": time.time(), "hosts": [h.name for h in config.hosts]})
    async with monitor:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=period)
            except asyncio.TimeoutError:
                out.write({"type": "fleet", **fleet_dict(monitor.snapshot, time.time())})
    out.write({"type": "stop", "at": time.time()})


def run_auto(config: FleetConfig, args: argparse.Namespace) -> int:
    log = args.log.open("a", encoding="utf-8") if args.log else None
    out = JsonLines(sys.stdout, *([log] if log else []))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # SIGTERM (systemd stop) ends the stream cleanly; nothing on the hosts is touched.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stream_fleet(config, out, stop, getattr(args, "accept_new_hosts", False))

    try:
        asyncio.run(main())
    finally:
        if log:
            log.close()
    return 0
