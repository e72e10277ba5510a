"""AMP4EC's weighted-scoring task scheduler and its result cache."""

from __future__ import annotations

import numpy as np
import pytest

from edgetop.core import policies
from edgetop.core.taskscheduler import (
    AMP4EC_LOAD_LIMIT,
    NoTargetError,
    ResultCache,
    ScoreWeights,
    TaskScheduler,
    amp4ec_score,
)


def test_the_formula_as_published_and_shared_with_the_placement_policy() -> None:
    assert amp4ec_score(0.5, 0.3, 0.02, 2) == pytest.approx(0.1 + 0.14 + 0.1 / 1.02 + 0.1)
    assert amp4ec_score(1.0, 0.0, 0.0, 0) == pytest.approx(1.0)
    assert policies.amp4ec_score is amp4ec_score  # one formula, two users
    assert policies.AMP4EC_LOAD_LIMIT == AMP4EC_LOAD_LIMIT == 0.8
    arrays = amp4ec_score(np.array([0.5, 1.0]), np.array([0.3, 0.0]), np.zeros(2), np.zeros(2))
    assert arrays[1] == pytest.approx(1.0)


def test_weights_are_configurable() -> None:
    only_tasks = ScoreWeights(resources=0.0, load=0.0, time=0.0, tasks=1.0)
    assert amp4ec_score(0.9, 0.9, 9.0, 1, only_tasks) == pytest.approx(1 / 3)


def test_requests_spread_over_idle_equal_targets() -> None:
    s = TaskScheduler(["a", "b", "c"])
    picks = []
    for _ in range(6):
        target = s.pick(now=0.0)
        s.started(target)
        picks.append(target)
    assert picks == ["a", "b", "c", "a", "b", "c"]  # in-flight tasks push the next one on
    assert [t.tasks for t in s.states(0.0)] == [2, 2, 2]


def test_slow_targets_get_fewer_requests() -> None:
    s = TaskScheduler(["fast", "slow"])
    for name, elapsed in (("fast", 0.01), ("slow", 2.0)):
        s.started(name)
        s.finished(name, elapsed)
    assert s.pick(0.0) == "fast"
    fast, slow = s.states(0.0)
    assert fast.avg_time_s == pytest.approx(0.01) and slow.avg_time_s == pytest.approx(2.0)
    assert fast.score - slow.score == pytest.approx(0.1 / 1.01 - 0.1 / 3.0)


def test_overloaded_and_stale_targets_are_skipped() -> None:
    s = TaskScheduler(["busy", "idle", "quiet"], stale_after_s=5.0)
    s.observe("busy", resources=1.0, load=0.95, now=100.0)  # best resources, above 0.8
    s.observe("idle", resources=0.1, load=0.5, now=100.0)
    s.observe("quiet", resources=1.0, load=0.0, now=90.0)  # last heard 10 s ago
    s.started("idle")
    s.started("idle")  # even busy with tasks, it is the only eligible one
    assert s.pick(now=100.0) == "idle"
    states = {t.name: t for t in s.states(100.0)}
    assert not states["quiet"].fresh and states["busy"].fresh


def test_when_every_target_is_overloaded_the_best_score_still_gets_it() -> None:
    s = TaskScheduler(["a", "b"])
    s.observe("a", resources=0.2, load=0.9, now=0.0)
    s.observe("b", resources=0.9, load=0.85, now=0.0)
    assert s.pick(0.0) == "b"


def test_observations_are_clamped_and_window_bounds_the_average() -> None:
    s = TaskScheduler(["a"], window=2)
    s.observe("a", resources=3.0, load=-1.0, now=0.0)
    (a,) = s.states(0.0)
    assert (a.resources, a.load) == (1.0, 0.0)
    for elapsed in (10.0, 1.0, 3.0):
        s.started("a")
        s.finished("a", elapsed)
    assert s.states(0.0)[0].avg_time_s == pytest.approx(2.0)


def test_targets_come_and_go_and_mistakes_are_named() -> None:
    s = TaskScheduler(["a"])
    s.add("pipe-1")
    assert s.targets == ("a", "pipe-1")
    s.remove("a")
    assert s.pick(0.0) == "pipe-1"
    with pytest.raises(ValueError, match="given twice"):
        s.add("pipe-1")
    with pytest.raises(NoTargetError, match="no target 'zzz'"):
        s.started("zzz")
    with pytest.raises(ValueError, match="never started"):
        s.finished("pipe-1", 0.1)
    s.remove("pipe-1")
    with pytest.raises(NoTargetError):
        s.pick(0.0)
    with pytest.raises(ValueError, match="window"):
        TaskScheduler(["a"], window=0)


def test_result_cache_hits_misses_and_lru_eviction() -> None:
    cache: ResultCache[str] = ResultCache(max_entries=2)
    assert cache.get("m", b"x") is None
    cache.put("m", b"x", "X")
    cache.put("m", b"y", "Y")
    assert cache.get("m", b"x") == "X"  # x is now the most recently used
    cache.put("m", b"z", "Z")  # evicts y
    assert cache.get("m", b"y") is None
    assert cache.get("m", b"z") == "Z"
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (2, 2) and cache.hit_rate == 0.5
    # the model is part of the key, and cannot be confused with the input's bytes
    assert cache.get("other", b"x") is None
    assert ResultCache.key("a", b"bc") != ResultCache.key("ab", b"c")
    with pytest.raises(ValueError, match="max_entries"):
        ResultCache(0)
