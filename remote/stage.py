"""One stage of a pipelined model: blocks [first, stop) of a zoo model, served over TCP.

    python -m edgetop.remote.stage --model M --first A --stop B --listen HOST:PORT
        --next HOST:PORT|none [--dir DIR] [--option key=value ...] [--max-inflight N]
    python -m edgetop.remote.stage --describe DIR      its state as JSON (stdlib only)
    python -m edgetop.remote.stage --stop DIR          SIGTERM it, wait, print its state

Every stage builds the whole model from the zoo (seeded: identical weights on every host) and
keeps only its blocks. Each connection accepted on `--listen` is one upstream session; the
stage opens its own connection to `--next` for it, so a chain of stages is a chain of
connections. Requests (tensorwire REQUEST messages, the block state) are computed and sent
down; the last stage (`--next none`) sends a RESULT back up, and every stage relays what comes
back from below to its upstream, so the caller talks to the first stage only (docs/pipeline.md).

Back-pressure: a stage holds at most `--max-inflight` requests (read, queued, computing or
being sent on). It reads the next message from upstream only when it has room, so a slow stage
downstream fills the TCP buffers and stops its predecessors' reads one after another, up to the
caller. PING travels down like a request and comes back as PONG from the last stage.

With `--dir`, the stage writes `pid`, `status.json` (state, the port it listens on, threads) and
`metrics.jsonl` (every `--metrics-interval` s: the loadgen window's p50/p90/p99 and throughput
of requests from arrival here to their result leaving upstream, which at the head is the
pipeline's end-to-end figure; the window's compute p50/mean; queue depth and in-flight count),
like the inference worker. It stops on SIGTERM/SIGINT. A peer that breaks the wire format, or a
downstream that closes, ends that session with an ERROR message naming the cause.

Host Python: >= 3.8 (shipped with the worker). Imports the zoo only through the worker's
`resolve_model`, the one gate from remote/ into edgetop.models.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetop.remote import tensorwire as tw
from edgetop.remote.loadgen import SlidingWindow
from edgetop.remote.worker import (
    METRICS_FILE,
    MODEL_RE,
    PID_FILE,
    STATUS_FILE,
    MetricsLog,
    StatusFile,
    cgroup_limits,
    cpu_threads,
    last_json_line,
    read_json,
    rss_bytes,
    tail_lines,
    usable_cores,
    write_atomic,
)

MODULE = "edgetop.remote.stage"
LOG_FILE = "stage.log"
DEFAULT_MAX_INFLIGHT = 4
STOP_TIMEOUT_S = 10.0
CONNECT_ATTEMPTS = 50  # the next stage may still be starting; 0.1 s apart


class StageError(ValueError):
    """Bad stage arguments: the message says which."""


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


def parse_address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise StageError(f"{what} {text!r} must be HOST:PORT")
    return host, int(port)


def parse_options(items: list[str]) -> dict[str, Any]:
    """`key=value` build options; values are JSON when they parse (ints), else strings."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise StageError(f"option {item!r} must be key=value")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


@dataclass(frozen=True)
class StageConfig:
    model: str
    first: int
    stop: int
    listen: tuple[str, int]
    next: tuple[str, int] | None
    options: dict[str, Any]
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    directory: Path | None = None
    metrics_interval_s: float = 1.0
    window_s: float = 10.0

    def __post_init__(self) -> None:
        if not MODEL_RE.match(self.model):
            raise StageError(f"invalid model name {self.model!r}")
        if not 0 <= self.first < self.stop:
            raise StageError(f"blocks [{self.first}, {self.stop}) are empty or negative")
        if self.max_inflight < 1:
            raise StageError(f"--max-inflight must be at least 1, not {self.max_inflight}")


def load_blocks(config: StageConfig) -> tuple[list[Any], int]:
    """The stage's blocks of the seeded zoo model, in eval mode; (blocks, threads used)."""
    import torch

    from edgetop.remote.worker import pipeline_blocks, resolve_model

    threads = cpu_threads(cgroup_limits().get("cpu_quota"), usable_cores())
    torch.set_num_threads(threads)
    model = resolve_model(config.model).build(**config.options).eval()
    blocks = pipeline_blocks(model)
    if config.stop > len(blocks):
        raise StageError(
            f"{config.model} has {len(blocks)} blocks; cannot take up to {config.stop}"
        )
    return blocks[config.first : config.stop], threads


def run_state(blocks: list[Any], state: Any) -> Any:
    import torch

    with torch.inference_mode():
        for block in blocks:
            state = block(state)
    return state


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------


class Stage:
    """The asyncio server: sessions, the compute thread, the metrics."""

    def __init__(self, config: StageConfig, blocks: list[Any], threads: int) -> None:
        self.config = config
        self.blocks = blocks
        self.threads = threads
        # One compute thread for every session: the stage's device does one thing at a time.
        self.compute = ThreadPoolExecutor(1, thread_name_prefix="stage-compute")
        self.window = SlidingWindow(config.window_s)  # arrival here -> result sent upstream
        self.compute_window = SlidingWindow(config.window_s)
        self.queued = 0
        self.inflight = 0
        self.sessions = 0
        self.errors = 0

    async def _connect_next(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        if self.config.next is None:
            return None
        host, port = self.config.next
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                return await asyncio.open_connection(host, port)
            except OSError:
                if attempt == CONNECT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.1)
        return None  # unreachable

    async def session(self, up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter) -> None:
        """One upstream connection, end to end; never raises (errors go upstream as ERROR)."""
        self.sessions += 1
        up_lock = asyncio.Lock()
        slots = asyncio.Semaphore(self.config.max_inflight)
        queue: asyncio.Queue[tuple[int, Any, float] | None] = asyncio.Queue()
        arrived: dict[int, float] = {}
        down: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        down_lock = asyncio.Lock()

        async def up(data: bytes) -> None:
            async with up_lock:
                await tw.write_message(up_w, data)

        async def fail(request_id: int, text: str) -> None:
            self.errors += 1
            with contextlib.suppress(Exception):
                await up(tw.error_message(request_id, f"stage [{self._range()}]: {text}"))

        async def reader() -> None:
            while True:
                await slots.acquire()
                message = await tw.read_message(up_r)
                if message.kind == tw.PING:
                    slots.release()
                    if down is None:
                        await up(tw.encode(tw.PONG, message.request_id))
                    else:
                        async with down_lock:
                            await tw.write_message(down[1], tw.encode(tw.PING, message.request_id))
                    continue
                if message.kind != tw.REQUEST:
                    raise tw.WireError(f"unexpected {message.kind_name} message from upstream")
                self.queued += 1
                self.inflight += 1
                arrived[message.request_id] = time.monotonic()
                queue.put_nowait((message.request_id, message.state, time.monotonic()))

        async def computer() -> None:
            loop = asyncio.get_running_loop()
            while True:
                item = await queue.get()
                if item is None:
                    return
                request_id, state, _ = item
                self.queued -= 1
                start = time.monotonic()
                try:
                    out = await loop.run_in_executor(self.compute, run_state, self.blocks, state)
                    self.compute_window.record(time.monotonic(), time.monotonic() - start)
                    kind = tw.REQUEST if down is not None else tw.RESULT
                    data = tw.encode(kind, request_id, out)
                except Exception as exc:
                    arrived.pop(request_id, None)
                    await fail(request_id, f"{type(exc).__name__}: {exc}")
                else:
                    if down is None:
                        await up(data)
                        self._done(arrived.pop(request_id, None))
                    else:
                        async with down_lock:
                            await tw.write_message(down[1], data)
                finally:
                    self.inflight -= 1
                    slots.release()

        async def relay() -> None:
            assert down is not None
            while True:
                try:
                    message = await tw.read_message(down[0])
                except EOFError:
                    host, port = self.config.next or ("", 0)
                    await fail(0, f"the next stage at {host}:{port} closed the connection")
                    return
                if message.kind == tw.RESULT:
                    self._done(arrived.pop(message.request_id, None))
                elif message.kind == tw.ERROR:
                    arrived.pop(message.request_id, None)
                await up(tw.encode(message.kind, message.request_id, message.state))

        tasks: list[asyncio.Task[Any]] = []
        try:
            try:
                down = await self._connect_next()
            except OSError as exc:
                await fail(0, f"cannot reach the next stage {self.config.next}: {exc}")
                return
            tasks = [asyncio.ensure_future(reader()), asyncio.ensure_future(computer())]
            if down is not None:
                tasks.append(asyncio.ensure_future(relay()))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if isinstance(exc, EOFError):  # upstream finished: drain what is in flight
                    queue.put_nowait(None)
                    await asyncio.wait([tasks[1]])
                    if down is not None and arrived:
                        await asyncio.wait([tasks[2]], timeout=60)
                elif isinstance(exc, tw.WireError):
                    await fail(0, f"bad message: {exc}")
                elif exc is not None and not isinstance(exc, (ConnectionError, OSError)):
                    await fail(0, f"{type(exc).__name__}: {exc}")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (up_w, down[1] if down else None):
                if writer is not None:
                    writer.close()
            self.sessions -= 1

    def _done(self, arrived: float | None) -> None:
        if arrived is not None:
            now = time.monotonic()
            self.window.record(now, now - arrived)

    def _range(self) -> str:
        return f"{self.config.model} {self.config.first}:{self.config.stop}"

    def metrics(self) -> dict[str, Any]:
        now = time.monotonic()
        line: dict[str, Any] = {"v": 1, "t": round(time.time(), 3), "model": self.config.model}
        line.update(first=self.config.first, stop=self.config.stop)
        line.update(self.window.stats(now).to_dict())
        compute = self.compute_window.stats(now)
        line.update(
            compute_p50_ms=compute.p50_ms,
            compute_mean_ms=compute.mean_ms,
            queue_depth=self.queued,
            inflight=self.inflight,
            sessions=self.sessions,
            errors=self.errors,
            threads=self.threads,
            rss=rss_bytes(),
        )
        return line


async def serve(config: StageConfig, status: StatusFile | None) -> int:
    blocks, threads = load_blocks(config)
    stage = Stage(config, blocks, threads)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session is no reason
    server = await asyncio.start_server(stage.session, *config.listen)
    port = server.sockets[0].getsockname()[1]
    nxt = "none" if config.next is None else f"{config.next[0]}:{config.next[1]}"
    if status is not None:
        status.set("running", port=port, threads=threads, next=nxt)
    print(json.dumps({"listening": port, "threads": threads}), flush=True)
    metrics = MetricsLog(config.directory / METRICS_FILE) if config.directory else None
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), config.metrics_interval_s)
        if metrics is not None:
            metrics.append(stage.metrics())
    server.close()
    stage.compute.shutdown(wait=False)
    if status is not None:
        status.set("stopped", "SIGTERM")
    return 0


# --------------------------------------------------------------------------------------------
# describe / stop (stdlib only, run by the controller over SSH)
# --------------------------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0") if a]


def is_stage_process(pid: int, directory: Path) -> bool:
    """`pid` is a live stage of exactly this directory (/proc cmdline: no pid-reuse mistakes)."""
    args = _cmdline(pid)
    want = os.path.realpath(directory)
    return MODULE in args and any(
        args[i] == "--dir" and os.path.realpath(args[i + 1]) == want for i in range(len(args) - 1)
    )


def describe(directory: Path) -> dict[str, Any]:
    """status.json checked against the process table: `dead` when it says running but the
    process is gone (killed, OOM-killed)."""
    directory = Path(directory)
    status = read_json(directory / STATUS_FILE)
    status = status if isinstance(status, dict) else {}
    text = (directory / PID_FILE).read_text().strip() if (directory / PID_FILE).exists() else ""
    pid = int(text) if text.isdigit() else None
    alive = pid is not None and is_stage_process(pid, directory)
    state, reason = status.get("state"), status.get("reason")
    if not alive and state in (None, "starting", "running"):
        tail = tail_lines(directory / LOG_FILE)
        reason = f"stage (pid {pid}) is gone; status said {state}" + (
            f"; log: {' | '.join(tail)}" if tail else ""
        )
        state = "dead"
    return {"dir": str(directory), "state": state, "reason": reason, "pid": pid,
            "alive": alive, "status": status,
            "metrics": last_json_line(directory / METRICS_FILE)}  # fmt: skip


def stop_stage(directory: Path, timeout: float = STOP_TIMEOUT_S) -> dict[str, Any]:
    directory = Path(directory)
    info = describe(directory)
    pid = info["pid"]
    if info["alive"]:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + timeout
            while is_stage_process(pid, directory) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not is_stage_process(pid, directory):
                break
    return describe(directory)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    p.add_argument("--model")
    p.add_argument("--first", type=int)
    p.add_argument("--stop-block", "--stop", dest="stop_at", type=int)
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--next", default="none")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--max-inflight", type=int, default=DEFAULT_MAX_INFLIGHT)
    p.add_argument("--metrics-interval", type=float, default=1.0)
    p.add_argument("--dir", type=Path)
    p.add_argument("--describe", type=Path, metavar="DIR")
    p.add_argument("--stop-dir", type=Path, metavar="DIR")
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S)
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> StageConfig:
    if args.model is None or args.first is None or args.stop_at is None:
        raise StageError("--model, --first and --stop are required")
    nxt = None if args.next == "none" else parse_address(args.next, "--next")
    return StageConfig(
        model=args.model,
        first=args.first,
        stop=args.stop_at,
        listen=parse_address(args.listen, "--listen"),
        next=nxt,
        options=parse_options(args.option),
        max_inflight=args.max_inflight,
        directory=args.dir.resolve() if args.dir else None,
        metrics_interval_s=args.metrics_interval,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.describe is not None:
        print(json.dumps(describe(args.describe)))
        return 0
    if args.stop_dir is not None:
        print(json.dumps(stop_stage(args.stop_dir, args.timeout)))
        return 0
    try:
        config = config_from_args(args)
    except StageError as exc:
        print(f"edgetop stage: {exc}", file=sys.stderr)
        return 2
    status = None
    if config.directory is not None:
        config.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(config.directory / PID_FILE, f"{os.getpid()}\n")
        status = StatusFile(config.directory)
        status.set("starting", model=config.model, first=config.first, stop=config.stop)
    try:
        return asyncio.run(serve(config, status))
    except Exception as exc:
        if status is not None:
            status.set("failed", f"{type(exc).__name__}: {exc}")
        print(f"edgetop stage: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


__all__ = ["Stage", "StageConfig", "StageError", "describe", "run_state", "stop_stage"]

if __name__ == "__main__":
    raise SystemExit(main())
