"""The exact partitioner: optimal on small random cases (checked by brute force), memory,
skipped devices, links, and AMP4EC's proportional split."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from edgetop.core.partition import (
    DEFAULT_LINK,
    Link,
    MemoryModel,
    PartitionError,
    StageDevice,
    amp4ec_partition,
    evaluate,
    partition,
)
from edgetop.models.blockcost import BlockCost

MIB = 1 << 20
BARE = MemoryModel(activation_factor=1.0, overhead_bytes=0)  # hand-checkable memory


def block(i: int, gflops: float, params: int = 0, out: int = 0, peak: int = 0) -> BlockCost:
    return BlockCost(i, f"b{i}", gflops, params, out, peak)


def all_splits(n: int, m: int):
    """Every plan: a non-decreasing device per block, stages are the runs."""
    for devices in itertools.combinations_with_replacement(range(m), n):
        spans, first = [], 0
        for i in range(1, n + 1):
            if i == n or devices[i] != devices[i - 1]:
                spans.append((devices[first], first, i))
                first = i
        yield spans


def brute_force(blocks, devices, objective, **kw):
    best = None
    for spans in all_splits(len(blocks), len(devices)):
        plan = evaluate(blocks, devices, spans, **kw)
        fits = all(
            s.memory_bytes <= devices[k].memory_bytes
            for s, (k, _, _) in zip(plan.stages, spans, strict=True)
        )
        if fits:
            key = (
                (plan.bottleneck_ms, plan.latency_ms)
                if objective == "throughput"
                else (plan.latency_ms, plan.bottleneck_ms)
            )
            best = key if best is None or key < best else best
    return best


def random_case(rng: random.Random):
    n, m = rng.randint(1, 7), rng.randint(1, 4)
    blocks = [
        block(
            i,
            rng.uniform(0.01, 2.0),
            params=rng.randint(0, 50) * MIB,
            out=rng.randint(1, 40) * 100_000,
            peak=rng.randint(1, 20) * MIB,
        )
        for i in range(n)
    ]
    devices = [
        StageDevice(f"h{k}", rng.uniform(5, 100), rng.randint(20, 200) * MIB) for k in range(m)
    ]
    links = {
        (a.host, b.host): Link(rng.uniform(1e6, 1e9), rng.uniform(0, 5e-3))
        for a, b in itertools.permutations(devices, 2)
    }
    return blocks, devices, links


@pytest.mark.parametrize("objective", ["throughput", "latency"])
def test_the_dp_is_optimal_on_random_small_cases(objective: str) -> None:
    rng = random.Random(6)
    checked = infeasible = 0
    for _ in range(250):
        blocks, devices, links = random_case(rng)
        kw = dict(batch=rng.choice([1, 4]), input_bytes=rng.randint(0, 600_000), link=links,
                  memory=BARE)  # fmt: skip
        expected = brute_force(blocks, devices, objective, **kw)
        if expected is None:
            with pytest.raises(PartitionError):
                partition(blocks, devices, objective=objective, **kw)
            infeasible += 1
            continue
        plan = partition(blocks, devices, objective=objective, **kw)
        got = (
            (plan.bottleneck_ms, plan.latency_ms)
            if objective == "throughput"
            else (plan.latency_ms, plan.bottleneck_ms)
        )
        assert got[0] == pytest.approx(expected[0], rel=1e-9)
        assert got[1] == pytest.approx(expected[1], rel=1e-9)
        # the returned plan is what the cost model says of its own split
        spans = [(next(k for k, d in enumerate(devices) if d.host == s.host), s.first, s.stop)
                 for s in plan.stages]  # fmt: skip
        assert evaluate(blocks, devices, spans, objective=objective, **kw) == plan
        checked += 1
    assert checked > 150 and infeasible > 0  # both branches exercised


def test_cost_model_by_hand() -> None:
    blocks = [block(0, 1.0, params=10, out=1000, peak=100), block(1, 3.0, params=20, peak=50)]
    devices = [StageDevice("a", 10.0, 10**6), StageDevice("b", 30.0, 10**6)]
    link = Link(bandwidth_bytes_s=1e6, latency_s=0.001)
    plan = evaluate(blocks, devices, [(0, 0, 1), (1, 1, 2)], batch=2, input_bytes=500,
                    link=link, memory=BARE, model="m")  # fmt: skip
    a, b = plan.stages
    assert a.compute_ms == pytest.approx(200.0)  # 2 x 1 GFLOP / 10 GFLOP/s
    assert a.transfer_ms == pytest.approx(1 + 2.0)  # 1 ms + 2000 B / 1 MB/s
    assert b.compute_ms == pytest.approx(200.0) and b.transfer_ms == 0.0
    assert plan.input_ms == pytest.approx(1 + 1.0)
    assert a.memory_bytes == 10 + 2 * 100 and b.memory_bytes == 20 + 2 * 50
    assert plan.bottleneck_ms == pytest.approx(200.0)
    assert plan.latency_ms == pytest.approx(2 + 200 + 3 + 200)
    assert plan.throughput == pytest.approx(2 * 1000 / 200)
    data = plan.to_dict()
    assert data["stages"][0] == {"host": "a", "first": 0, "stop": 1, "compute_ms": 200.0,
                                 "transfer_ms": a.transfer_ms, "memory_bytes": 210}  # fmt: skip
    assert data["model"] == "m" and data["batch"] == 2


def test_single_device_takes_everything() -> None:
    blocks = [block(i, 0.5) for i in range(5)]
    plan = partition(blocks, [StageDevice("only", 50.0, 10**9)], memory=BARE)
    assert [(s.host, s.first, s.stop) for s in plan.stages] == [("only", 0, 5)]
    assert plan.stages[0].transfer_ms == 0.0
    assert plan.latency_ms == pytest.approx(plan.input_ms + 2.5 / 50 * 1000)


def test_throughput_splits_evenly_between_equal_devices() -> None:
    blocks = [block(i, 1.0, out=10) for i in range(4)]
    devices = [StageDevice("a", 10.0, 10**9), StageDevice("b", 10.0, 10**9)]
    fast = Link(1e12, 0.0)
    plan = partition(blocks, devices, objective="throughput", link=fast, memory=BARE)
    assert [(s.host, s.first, s.stop) for s in plan.stages] == [("a", 0, 2), ("b", 2, 4)]
    assert plan.bottleneck_ms == pytest.approx(200.0)
    # latency: one device avoids the transfer (ties broken towards the smaller bottleneck)
    plan = partition(blocks, devices, objective="latency", link=Link(1e12, 0.01), memory=BARE)
    assert len(plan.stages) == 1


def test_a_slow_device_in_the_middle_is_skipped() -> None:
    blocks = [block(i, 1.0, out=10) for i in range(4)]
    devices = [StageDevice("a", 10.0, 10**9), StageDevice("slow", 0.01, 10**9),
               StageDevice("c", 10.0, 10**9)]  # fmt: skip
    plan = partition(blocks, devices, link=Link(1e12, 0.0), memory=BARE)
    assert [s.host for s in plan.stages] == ["a", "c"]


def test_memory_forces_a_split_and_respects_limits() -> None:
    blocks = [block(i, 1.0, params=60 * MIB, peak=MIB) for i in range(4)]
    devices = [StageDevice("big", 1000.0, 200 * MIB), StageDevice("small", 1.0, 200 * MIB)]
    plan = partition(blocks, devices, objective="latency", memory=BARE)
    assert [(s.host, s.first, s.stop) for s in plan.stages] == [("big", 0, 3), ("small", 3, 4)]
    assert all(s.memory_bytes <= 200 * MIB for s in plan.stages)


def test_runtime_overhead_and_activation_factor_count() -> None:
    memory = MemoryModel(activation_factor=2.0, overhead_bytes=100 * MIB)
    blocks = [block(0, 1.0, params=50 * MIB, peak=10 * MIB)]
    plan = partition(blocks, [StageDevice("a", 1.0, 10**10)], batch=3, memory=memory)
    assert plan.stages[0].memory_bytes == 50 * MIB + 2 * 3 * 10 * MIB + 100 * MIB
    with pytest.raises(PartitionError, match=r"block 0 \(b0\) alone needs 210 MiB"):
        partition(blocks, [StageDevice("a", 1.0, 200 * MIB)], batch=3, memory=memory)


def test_no_fit_in_order_is_explained() -> None:
    # each block fits somewhere, but only the last device holds the big first block
    blocks = [block(0, 1.0, params=150 * MIB), block(1, 1.0, params=10 * MIB)]
    devices = [StageDevice("mid", 1.0, 155 * MIB), StageDevice("small", 1.0, 100 * MIB)]
    assert [s.host for s in partition(blocks, devices, memory=BARE).stages] == ["mid", "small"]
    devices = devices[::-1]
    with pytest.raises(PartitionError, match="no split of the 2 blocks fits"):
        partition(blocks, devices, memory=BARE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "energy"}, "objective must be one of"),
        ({"batch": 0}, "batch must be a positive integer"),
        ({"input_bytes": -1}, "input_bytes"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(PartitionError, match=message):
        partition([block(0, 1.0)], [StageDevice("a", 1.0, 10**9)], **kwargs)


def test_no_blocks_or_devices_or_bad_device() -> None:
    with pytest.raises(PartitionError, match="no blocks"):
        partition([], [StageDevice("a", 1.0, 1)])
    with pytest.raises(PartitionError, match="no device"):
        partition([block(0, 1.0)], [])
    with pytest.raises(PartitionError, match="a: effective compute"):
        partition([block(0, 1.0)], [StageDevice("a", math.nan, 1)])


def test_links_as_mapping_function_and_default() -> None:
    blocks = [block(0, 1.0, out=1000), block(1, 1.0)]
    devices = [StageDevice("a", 10.0, 10**9), StageDevice("b", 10.0, 10**9)]
    slow = Link(1000.0, 0.0)  # 1 s per kB
    spans = [(0, 0, 1), (1, 1, 2)]
    by_map = evaluate(blocks, devices, spans, link={("b", "a"): slow}, memory=BARE)
    assert by_map.stages[0].transfer_ms == pytest.approx(1000.0)  # either direction
    by_fn = evaluate(blocks, devices, spans, link=lambda a, b: slow, memory=BARE)
    assert by_fn.stages[0].transfer_ms == pytest.approx(1000.0)
    default = evaluate(blocks, devices, spans, link={}, memory=BARE)
    assert default.stages[0].transfer_ms == pytest.approx(1000 * DEFAULT_LINK.seconds(1000))
    # a slow link makes the throughput objective keep everything on one device
    plan = partition(blocks, devices, link=slow, memory=BARE)
    assert len(plan.stages) == 1


def test_evaluate_rejects_bad_spans() -> None:
    blocks = [block(0, 1.0), block(1, 1.0)]
    devices = [StageDevice("a", 1.0, 10**9), StageDevice("b", 1.0, 10**9)]
    with pytest.raises(PartitionError, match="cover every block"):
        evaluate(blocks, devices, [(0, 0, 1)])
    with pytest.raises(PartitionError, match="given order"):
        evaluate(blocks, devices, [(1, 0, 1), (0, 1, 2)])


def test_amp4ec_splits_in_proportion_to_compute() -> None:
    blocks = [block(i, 1.0) for i in range(10)]
    devices = [StageDevice("high", 50.0, 10**10), StageDevice("low1", 30.0, 10**10),
               StageDevice("low2", 20.0, 10**10)]  # fmt: skip
    plan = amp4ec_partition(blocks, devices, memory=BARE)
    assert plan.objective == "amp4ec"
    assert [(s.host, s.first, s.stop) for s in plan.stages] == [
        ("high", 0, 5), ("low1", 5, 8), ("low2", 8, 10)
    ]  # fmt: skip
    # edgetop's partition is never worse on its own objective
    best = partition(blocks, devices, objective="throughput", memory=BARE)
    assert best.bottleneck_ms <= plan.bottleneck_ms * (1 + 1e-9)


def test_amp4ec_split_that_does_not_fit_raises_unless_asked_not_to() -> None:
    blocks = [block(0, 1.0, params=150 * MIB), block(1, 1.0)]
    devices = [StageDevice("a", 10.0, 100 * MIB), StageDevice("b", 10.0, 200 * MIB)]
    with pytest.raises(PartitionError, match="AMP4EC's split does not fit"):
        amp4ec_partition(blocks, devices, memory=BARE)
    plan = amp4ec_partition(blocks, devices, memory=BARE, check_memory=False)
    assert plan.stages[0].memory_bytes > 100 * MIB
    assert partition(blocks, devices, memory=BARE).stages[0].host == "b"  # edgetop's fits


def test_random_amp4ec_plans_are_never_better_than_the_dp() -> None:
    rng = random.Random(1)
    for _ in range(100):
        blocks, devices, links = random_case(rng)
        roomy = [StageDevice(d.host, d.gflops_per_s, 10**12) for d in devices]
        base = amp4ec_partition(blocks, roomy, link=links, memory=BARE)
        best = partition(blocks, roomy, objective="throughput", link=links, memory=BARE)
        fastest = partition(blocks, roomy, objective="latency", link=links, memory=BARE)
        assert best.bottleneck_ms <= base.bottleneck_ms * (1 + 1e-9)
        assert fastest.latency_ms <= base.latency_ms * (1 + 1e-9)
