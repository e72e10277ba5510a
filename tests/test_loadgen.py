"""LoadGen-style scenarios and window statistics, on a fake clock with a fake model.

Latencies are multiples of 1/64 s (exact in binary floating point), so every expected value
below is worked out by hand and compared exactly.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgetop.remote.loadgen import (
    Completion,
    Offline,
    Server,
    SingleStream,
    SlidingWindow,
    make_scenario,
    percentile,
)

TICK = 1 / 64  # 15.625 ms


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


class FakeModel:
    """`run_batch` that takes the next latency of a list (cycled), in fake time."""

    def __init__(self, clock: FakeClock, latencies_s: Sequence[float]) -> None:
        self.clock = clock
        self._latencies = itertools.cycle(latencies_s)
        self.calls = 0

    def __call__(self) -> None:
        self.clock.now += next(self._latencies)
        self.calls += 1


# -- percentiles -------------------------------------------------------------------------------


def test_nearest_rank_percentiles_by_hand() -> None:
    ten = [float(v) for v in range(1, 11)]
    # rank = ceil(p/100 * n): p50 -> 5, p90 -> 9 (exactly, not 9.000000000000002), p99 -> 10
    assert (percentile(ten, 50), percentile(ten, 90), percentile(ten, 99)) == (5.0, 9.0, 10.0)
    seven = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    # p50: ceil(3.5) = 4; p90: ceil(6.3) = 7; p10: ceil(0.7) = 1
    assert (percentile(seven, 50), percentile(seven, 90), percentile(seven, 10)) == (40, 70, 10)
    assert percentile([3.0], 50) == percentile([3.0], 99) == 3.0
    assert percentile(ten, 100) == 10.0
    assert percentile(list(range(1000)), 99.9) == 998  # ceil(999.0) = 999th value
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(ten, 0)


# -- the window --------------------------------------------------------------------------------


def test_single_stream_statistics_are_exact() -> None:
    clock = FakeClock()
    ticks = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]  # latencies in 1/64 s
    model = FakeModel(clock, [t * TICK for t in ticks])
    window = SlidingWindow(window_s=100, slo_ms=4 * TICK * 1000)
    stats = SingleStream(model, batch=8, window=window, clock=clock, sleep=clock.sleep).run(
        max_queries=10
    )
    ms = TICK * 1000
    # sorted: 1 1 2 3 3 4 5 5 6 9 -> p50 rank 5, p90 rank 9, p99 rank 10
    assert (stats.p50_ms, stats.p90_ms, stats.p99_ms) == (3 * ms, 6 * ms, 9 * ms)
    assert (stats.min_ms, stats.max_ms, stats.mean_ms) == (1 * ms, 9 * ms, 3.9 * ms)
    assert (stats.count, stats.samples, stats.total_queries) == (10, 80, 10)
    assert stats.window_s == 39 * TICK  # the run so far is shorter than the window
    assert stats.throughput == 80 / (39 * TICK)
    assert stats.qps == 10 / (39 * TICK)
    assert stats.slo_compliance == 6 / 10  # 1 1 2 3 3 4 are within 4 ticks
    assert clock.slept == 0  # closed loop: never idle


def test_window_keeps_only_the_last_window_s_seconds() -> None:
    clock = FakeClock()
    window = SlidingWindow(window_s=10)
    model = FakeModel(clock, [4 * TICK])  # 16 queries per second
    stats = SingleStream(model, window=window, clock=clock, sleep=clock.sleep).run(duration_s=30)
    # completions at k/16 s, k = 1..480; the window at t = 30 is (20, 30]: k = 321..480
    assert clock.now == 30
    assert (stats.count, stats.total_queries) == (160, 480)
    assert stats.window_s == 10
    assert stats.qps == stats.throughput == 16
    assert window.stats(35).count == 80  # five seconds later, half has aged out
    empty = window.stats(41)
    assert (empty.count, empty.p50_ms, empty.qps, empty.slo_compliance) == (0, None, 0, None)


def test_window_memory_is_bounded_and_rates_stay_exact() -> None:
    window = SlidingWindow(window_s=10, max_records=5)
    window.start(0.0)
    for k in range(1, 21):  # 20 completions, one every 1/16 s, each 1/64 s long
        window.record(k / 16, TICK, samples=2)
    assert len(window._records) == 5
    stats = window.stats(20 / 16)
    # only the last 5 are kept; the rate covers exactly their span (15/16, 20/16]
    assert stats.count == 5 and stats.window_s == 5 / 16
    assert stats.qps == 16 and stats.throughput == 32
    assert stats.total_queries == 20 and stats.total_samples == 40


def test_busy_share_counts_execution_not_queueing() -> None:
    window = SlidingWindow(window_s=10)
    window.start(0.0)
    # Four queries over 4 s, each waited 0.5 s and ran 0.25 s: busy 1 s of 4.
    for k in range(1, 5):
        window.add(Completion(scheduled=k - 0.75, started=k - 0.25, finished=float(k), samples=1))
    stats = window.stats(4.0)
    assert stats.busy == pytest.approx(0.25)
    assert stats.mean_ms == pytest.approx(750.0)  # the latency keeps the wait
    # Completions recorded without their service time (a pipeline's end-to-end window).
    plain = SlidingWindow(window_s=10)
    plain.record(1.0, 0.5)
    assert plain.stats(2.0).busy is None
    # Overlapping executions (a shared device) never read above the whole span.
    full = SlidingWindow(window_s=10)
    full.start(0.0)
    for k in range(1, 5):
        full.record(float(k), 2.0, service_s=2.0)
    assert full.stats(4.0).busy == 1.0


def test_slo_compliance_counts_queries_at_or_under_the_slo() -> None:
    window = SlidingWindow(window_s=10, slo_ms=10.0)
    window.start(0.0)
    for i, latency_ms in enumerate([5.0, 10.0, 10.5, 20.0]):
        window.record(1.0 + i, latency_ms / 1000)
    assert window.stats(5.0).slo_compliance == 0.5
    assert SlidingWindow(window_s=10).stats(1.0).slo_compliance is None


# -- server: Poisson arrivals, queueing ----------------------------------------------------------


def lindley(arrivals: Sequence[float], services: Sequence[float]) -> list[float]:
    """Latencies of a single FIFO server: completion_i = max(arrival_i, completion_{i-1}) + s_i."""
    done, out = 0.0, []
    for arrival, service in zip(arrivals, services, strict=True):
        done = max(arrival, done) + service
        out.append(done - arrival)
    return out


def test_server_latency_runs_from_the_scheduled_arrival() -> None:
    clock = FakeClock()
    services = [TICK, 3 * TICK, 2 * TICK, 5 * TICK]
    model = FakeModel(clock, services)
    seen: list[Completion] = []
    server = Server(model, qps=20, seed=7, clock=clock, sleep=clock.sleep, on_complete=seen.append)
    server.run(max_queries=200)

    rng = random.Random(7)
    arrivals = list(itertools.accumulate(rng.expovariate(20) for _ in range(200)))
    expected = lindley(arrivals, [services[i % 4] for i in range(200)])
    assert [c.scheduled for c in seen] == pytest.approx(arrivals, abs=1e-9)
    assert [c.latency_s for c in seen] == pytest.approx(expected, abs=1e-9)
    # some queries did wait behind others (queueing counted), none started before arriving
    assert any(c.started > c.scheduled + 1e-9 for c in seen)
    assert all(c.started >= c.scheduled - 1e-9 for c in seen)


def test_server_latency_grows_when_qps_exceeds_capacity() -> None:
    def p50_after(qps: float, seconds: float) -> float:
        clock = FakeClock()
        model = FakeModel(clock, [4 * TICK])  # capacity: 16 queries per second
        window = SlidingWindow(window_s=5)
        stats = Server(model, qps=qps, seed=1, window=window, clock=clock, sleep=clock.sleep).run(
            duration_s=seconds
        )
        assert stats.p50_ms is not None
        return stats.p50_ms

    service_ms = 4 * TICK * 1000
    # Under capacity, latency stays a small multiple of the service time, however long it runs.
    assert service_ms <= p50_after(8, 60) < 3 * service_ms
    assert p50_after(8, 120) < 3 * service_ms
    # At twice the capacity the queue grows with time, and so does the latency.
    short, long = p50_after(32, 30), p50_after(32, 60)
    assert short > 20 * service_ms
    assert long > short * 1.5


def test_server_arrivals_are_poisson_at_the_target_rate() -> None:
    clock = FakeClock()
    server = Server(lambda: None, qps=100, seed=3, clock=clock, sleep=clock.sleep)
    stats = server.run(duration_s=100)
    # 10 000 expected, standard deviation 100: five of them either way
    assert 9500 <= stats.total_queries <= 10500
    assert stats.p99_ms == 0  # an instant model on an idle server: no queueing at all
    again = Server(lambda: None, qps=100, seed=3, clock=FakeClock(), sleep=lambda s: None)
    assert again.rng.random() == random.Random(3).random()  # seeded


def test_a_stop_request_ends_a_server_wait() -> None:
    stop = threading.Event()
    model_calls: list[float] = []
    server = Server(lambda: model_calls.append(1), qps=0.001, sleep=stop.wait)  # ~17 min gaps
    threading.Timer(0.1, stop.set).start()
    stats = server.run(should_stop=stop.is_set)
    assert stats.total_queries == 0 and not model_calls


# -- offline, factory ---------------------------------------------------------------------------


def test_offline_throughput_is_samples_per_second() -> None:
    clock = FakeClock()
    model = FakeModel(clock, [8 * TICK])  # 8 batches per second
    stats = Offline(model, batch=32, window=SlidingWindow(10), clock=clock).run(duration_s=4)
    assert stats.total_queries == 32
    assert stats.throughput == 32 * 8
    assert stats.p50_ms == 8 * TICK * 1000


def test_make_scenario() -> None:
    clock = FakeClock()
    assert isinstance(make_scenario("singlestream", lambda: None), SingleStream)
    assert isinstance(make_scenario("offline", lambda: None), Offline)
    server = make_scenario(
        "server", FakeModel(clock, [TICK]), qps=5, clock=clock, sleep=clock.sleep
    )
    assert isinstance(server, Server) and server.run(max_queries=3).total_queries == 3
    with pytest.raises(ValueError, match="qps"):
        make_scenario("server", lambda: None)
    with pytest.raises(ValueError, match="unknown scenario"):
        make_scenario("multistream", lambda: None)
    with pytest.raises(ValueError, match="batch"):
        make_scenario("offline", lambda: None, batch=0)
    with pytest.raises(ValueError):
        SlidingWindow(window_s=0)


# -- properties --------------------------------------------------------------------------------

latencies_ms = st.lists(
    st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=300,
)


@given(latencies_ms)
def test_percentiles_are_monotone_and_within_the_range(values: list[float]) -> None:
    window = SlidingWindow(window_s=1000)
    window.start(0.0)
    for v in values:
        window.record(1.0, v / 1000)
    stats = window.stats(1.0)
    assert stats.min_ms is not None and stats.max_ms is not None
    assert stats.p50_ms is not None and stats.p90_ms is not None and stats.p99_ms is not None
    assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms
    assert stats.count == len(values)


@given(latencies_ms, st.sampled_from([1, 10, 25, 50, 90, 95, 99, 99.9, 100]))
def test_percentile_is_the_smallest_value_covering_p_percent(values: list[float], p: float) -> None:
    data = sorted(values)
    got = percentile(data, p)
    assert got in data
    # at least p% of the values are <= it, and fewer than p% are strictly below it
    assert sum(v <= got for v in data) * 100 >= p * len(data) - 1e-9
    assert sum(v < got for v in data) * 100 < p * len(data) + 1e-9
    assert math.isfinite(got)


# -- runs long enough for a quantile ------------------------------------------------------------


def test_min_queries_extends_a_run_past_its_duration_up_to_the_hard_limit() -> None:
    clock = FakeClock()
    model = FakeModel(clock, [16 * TICK])  # 0.25 s per query
    s = SingleStream(model, clock=clock, sleep=clock.sleep)
    s.run(duration_s=1.0, min_queries=10, max_duration_s=60.0)
    assert s.queries == 10 and clock.now == 2.5  # 4 by the duration, then on to 10
    clock = FakeClock()
    quick = SingleStream(FakeModel(clock, [TICK]), clock=clock, sleep=clock.sleep)
    quick.run(duration_s=1.0, min_queries=10, max_duration_s=60.0)
    assert quick.queries == 64  # had its 10 long before the duration: the duration ends it
    clock = FakeClock()
    slow = SingleStream(FakeModel(clock, [1.0]), clock=clock, sleep=clock.sleep)
    slow.run(duration_s=1.0, min_queries=100, max_duration_s=5.0)
    assert slow.queries == 5 and clock.now == 5.0  # the hard limit wins over the count


def test_min_queries_holds_for_open_arrivals_too() -> None:
    clock = FakeClock()
    s = Server(FakeModel(clock, [TICK]), qps=4.0, seed=1, clock=clock, sleep=clock.sleep)
    s.run(duration_s=1.0, min_queries=20, max_duration_s=100.0)
    assert s.queries == 20 and clock.now > 1.0
