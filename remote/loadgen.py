"""MLPerf LoadGen-style scenario drivers and sliding-window latency statistics.

Pure standard library (it runs on the hosts, inside the inference worker) and free of torch:
a driver only sees a `run_batch()` callable, a clock and a sleep, so tests drive it with a fake
model of known latency on a fake clock.

Scenarios (one query = one batch of `batch` samples):

- `singlestream`: the next query is issued when the previous one completes; latency is the
  query's own duration.
- `server`: queries arrive as a Poisson process at `qps` (exponential gaps from a seeded RNG)
  into a single in-flight executor. Latency runs from the query's *scheduled arrival* to its
  completion, so time spent queued behind earlier queries counts, as in LoadGen: past capacity
  the queue, and with it the latency, grows without bound.
- `offline`: batches are issued back to back as fast as the executor takes them; the figure
  of merit is throughput (samples/s). Per-batch latency is recorded too.

Statistics cover a time window (the last `window_s` seconds of completions), with bounded
memory (at most `max_records` completions are kept; see `SlidingWindow`). Percentiles are exact
over the window by the nearest-rank method: the p-th percentile of n sorted latencies is the
value at 1-based rank ceil(p/100 * n), i.e. the smallest latency such that at least p% of the
queries took no longer. No interpolation, so every reported percentile is a latency that was
really observed.

Host Python: >= 3.8 (torch 2.x needs it); annotations are strings, nothing newer at runtime.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: hosts may run Python 3.8, where these don't subscript
    from collections.abc import Callable, Sequence

SCENARIOS = ("singlestream", "server", "offline")

if TYPE_CHECKING:
    Clock = Callable[[], float]  # monotonic seconds
    Sleep = Callable[[float], object]  # may return early (e.g. threading.Event.wait)

DEFAULT_WINDOW_S = 10.0
DEFAULT_MAX_RECORDS = 100_000


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ascending `sorted_values`, 0 < p <= 100 (see module doc).

    The rank is computed in exact rational arithmetic, so p=90 of 10 values is rank 9, not the
    rank 10 that floating-point 0.9 * 10 = 9.000000000000002 would give."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is outside (0, 100]")
    rank = max(1, math.ceil(Fraction(str(p)) * n / 100))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Completion:
    """One finished query, in the driver's clock."""

    scheduled: float  # when the query was due (arrival time in server, issue time otherwise)
    started: float  # when the executor took it
    finished: float
    samples: int

    @property
    def latency_s(self) -> float:
        return self.finished - self.scheduled


@dataclass(frozen=True)
class WindowStats:
    """Statistics of the completions in one window; latencies in milliseconds.

    Percentile, min, max and mean fields are None when the window holds no query, as are
    `throughput`/`qps` before any time has passed and `slo_compliance` without an SLO."""

    count: int  # queries completed in the window
    samples: int  # samples completed in the window
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    min_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    throughput: float | None  # samples per second over the window
    qps: float | None  # queries per second over the window
    slo_ms: float | None
    slo_compliance: float | None  # fraction of the window's queries with latency <= slo_ms
    window_s: float  # the span the rates were computed over (shorter at the start)
    total_queries: int  # since the window was started, not just in it
    total_samples: int
    # Share of the span spent executing batches (started to finished, queueing excluded), at
    # most 1; None before any time has passed or when no completion carried its service time.
    # Beside a co-runner, this is what the scheduler's open-busy column sums (schema 4).
    busy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SlidingWindow:
    """Completions of the last `window_s` seconds, at most `max_records` of them.

    The window at time `now` is (now - window_s, now]. Rates divide by the span actually
    covered: from `start()` while the window is still filling, and from the newest record the
    `max_records` cap pushed out if the cap (not the age) is what bounds the window, so that a
    rate is never computed over a span whose completions were partly dropped. Latencies are
    kept in milliseconds rounded to the nanosecond. Thread-safe: the worker records from its
    inference loop and snapshots from its metrics thread.
    """

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        slo_ms: float | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window must be positive, got {window_s}")
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        if slo_ms is not None and not slo_ms > 0:
            raise ValueError(f"SLO must be positive, got {slo_ms}")
        self.window_s = float(window_s)
        self.slo_ms = None if slo_ms is None else float(slo_ms)
        self.max_records = max_records
        # (finished, latency_ms, samples, service_s or None), oldest first
        self._records: deque[tuple[float, float, int, float | None]] = deque()
        self._origin: float | None = None
        self._cap_floor: float | None = None  # newest finish time the cap evicted
        self._total_queries = 0
        self._total_samples = 0
        self._lock = threading.Lock()

    def start(self, now: float) -> None:
        """Measurement begins at `now`: forget everything recorded before."""
        with self._lock:
            self._records.clear()
            self._origin = now
            self._cap_floor = None
            self._total_queries = self._total_samples = 0

    def record(
        self, finished: float, latency_s: float, samples: int = 1, service_s: float | None = None
    ) -> None:
        """One completion; `service_s` is the time it spent executing (for `busy`)."""
        with self._lock:
            if self._origin is None:
                self._origin = finished - latency_s
            self._records.append((finished, round(latency_s * 1000.0, 6), samples, service_s))
            self._total_queries += 1
            self._total_samples += samples
            while len(self._records) > self.max_records:
                evicted = self._records.popleft()[0]
                if self._cap_floor is None or evicted > self._cap_floor:
                    self._cap_floor = evicted
            self._expire(finished)

    def add(self, completion: Completion) -> None:
        self.record(
            completion.finished,
            completion.latency_s,
            completion.samples,
            max(completion.finished - completion.started, 0.0),
        )

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self._records and self._records[0][0] <= horizon:
            self._records.popleft()

    def stats(self, now: float) -> WindowStats:
        with self._lock:
            self._expire(now)
            records = list(self._records)
            origin = self._origin if self._origin is not None else now - self.window_s
            span = min(self.window_s, now - origin)
            if self._cap_floor is not None and now - self._cap_floor < span:
                span = now - self._cap_floor
            total_queries, total_samples = self._total_queries, self._total_samples
        latencies = sorted(r[1] for r in records)
        count = len(latencies)
        samples = sum(r[2] for r in records)
        services = [r[3] for r in records if r[3] is not None]
        busy = None
        if services and span > 0:
            busy = round(min(sum(services) / span, 1.0), 6)
        compliance = None
        if self.slo_ms is not None and count:
            compliance = sum(1 for lat in latencies if lat <= self.slo_ms) / count
        return WindowStats(
            count=count,
            samples=samples,
            p50_ms=percentile(latencies, 50) if count else None,
            p90_ms=percentile(latencies, 90) if count else None,
            p99_ms=percentile(latencies, 99) if count else None,
            min_ms=latencies[0] if count else None,
            max_ms=latencies[-1] if count else None,
            mean_ms=round(sum(latencies) / count, 6) if count else None,
            throughput=samples / span if span > 0 else None,
            qps=count / span if span > 0 else None,
            slo_ms=self.slo_ms,
            slo_compliance=compliance,
            window_s=round(max(span, 0.0), 6),
            total_queries=total_queries,
            total_samples=total_samples,
            busy=busy,
        )


class Scenario:
    """Drives `run_batch` in one scenario, recording every completion into `window`.

    `run()` returns when `duration_s` has passed, `max_queries` have completed, or
    `should_stop()` says so (checked between queries, and while waiting for an arrival: pass
    a `threading.Event.wait` as `sleep` so that a stop request cuts the wait short). With
    `min_queries` a run goes on past `duration_s` until that many queries have completed, so
    that a tail quantile rests on enough of them, but never past `max_duration_s`."""

    name = ""

    def __init__(
        self,
        run_batch: Callable[[], object],
        *,
        batch: int = 1,
        window: SlidingWindow | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        on_complete: Callable[[Completion], None] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.run_batch = run_batch
        self.batch = batch
        self.window = window if window is not None else SlidingWindow()
        self.clock = clock
        self.sleep = sleep
        self.on_complete = on_complete
        self.queries = 0

    def run(
        self,
        *,
        duration_s: float | None = None,
        max_queries: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        min_queries: int | None = None,
        max_duration_s: float | None = None,
    ) -> WindowStats:
        start = self.clock()
        self.window.start(start)
        end = None if duration_s is None else start + duration_s
        hard = None if max_duration_s is None else start + max_duration_s
        enough = min_queries or 0

        def over(t: float, issued: int) -> bool:
            """Whether a query due at `t`, after `issued` of them, is past the run's end."""
            if max_queries is not None and issued >= max_queries:
                return True
            if hard is not None and t >= hard:
                return True
            return end is not None and t >= end and issued >= enough

        self._drive(start, over, should_stop or (lambda: False))
        return self.window.stats(self.clock())

    def _issue(self, scheduled: float) -> Completion:
        started = self.clock()
        self.run_batch()
        done = Completion(scheduled, started, self.clock(), self.batch)
        self.queries += 1
        self.window.add(done)
        if self.on_complete is not None:
            self.on_complete(done)
        return done

    def _drive(
        self, start: float, over: Callable[[float, int], bool], stop: Callable[[], bool]
    ) -> None:
        # Closed loop (singlestream, offline): the next query as soon as the last is done.
        issued = 0
        while not stop():
            now = self.clock()
            if over(now, issued):
                break
            self._issue(now)
            issued += 1


class SingleStream(Scenario):
    name = "singlestream"


class Offline(Scenario):
    name = "offline"


class Server(Scenario):
    name = "server"

    def __init__(
        self,
        run_batch: Callable[[], object],
        *,
        qps: float,
        seed: int = 0,
        batch: int = 1,
        window: SlidingWindow | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        on_complete: Callable[[Completion], None] | None = None,
    ) -> None:
        super().__init__(
            run_batch, batch=batch, window=window, clock=clock, sleep=sleep, on_complete=on_complete
        )
        if not (qps > 0 and math.isfinite(qps)):
            raise ValueError(f"server scenario needs a positive finite qps, got {qps}")
        self.qps = float(qps)
        self.rng = random.Random(seed)

    def _drive(
        self, start: float, over: Callable[[float, int], bool], stop: Callable[[], bool]
    ) -> None:
        arrival = start + self.rng.expovariate(self.qps)
        issued = 0
        while not stop():
            if over(arrival, issued):
                break
            now = self.clock()
            if now < arrival:  # idle until the next arrival; a stop request may end the wait
                self.sleep(arrival - now)
                continue
            self._issue(arrival)  # late arrivals waited in the queue: that counts
            issued += 1
            arrival += self.rng.expovariate(self.qps)


def make_scenario(
    name: str,
    run_batch: Callable[[], object],
    *,
    batch: int = 1,
    qps: float | None = None,
    seed: int = 0,
    window: SlidingWindow | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    on_complete: Callable[[Completion], None] | None = None,
) -> Scenario:
    """The driver for a scenario name (one of SCENARIOS); `qps` is required for server."""
    common: dict[str, Any] = {
        "batch": batch,
        "window": window,
        "clock": clock,
        "sleep": sleep,
        "on_complete": on_complete,
    }
    if name == "server":
        if qps is None:
            raise ValueError("the server scenario needs a target qps")
        return Server(run_batch, qps=qps, seed=seed, **common)
    if name == "singlestream":
        return SingleStream(run_batch, **common)
    if name == "offline":
        return Offline(run_batch, **common)
    raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
