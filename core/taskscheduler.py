"""Spread inference requests over targets (replicas, pipelines) by AMP4EC's weighted score.

Pure: the caller owns the clock and the I/O; it tells the scheduler when a request starts and
finishes and, when it has telemetry, each target's free-resource share and load.

AMP4EC's formula (Zhang et al., AMP4EC, 2025), the one `amp4ec_score` computes for both this
scheduler and the `weighted-score` placement policy (core/policies.py):

    score = 0.2 * resources + 0.2 * (1 - load) + 0.1 / (1 + avg_time) + 0.5 / (1 + 2 * tasks)

resources: the target's free share (0..1), load: its utilisation (0..1), avg_time: its mean
response time in SECONDS, tasks: requests in flight on it. Targets above 0.8 load are skipped;
the highest score wins. Weights are configurable (`ScoreWeights`).

`ResultCache` is AMP4EC's optional result cache: the key is a hash of the model name and the
input bytes, least recently used entries go first once `max_entries` is reached, hits and
misses are counted.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "AMP4EC_LOAD_LIMIT",
    "AMP4EC_WEIGHTS",
    "NoTargetError",
    "ResultCache",
    "ScoreWeights",
    "TargetState",
    "TaskScheduler",
    "amp4ec_score",
]

AMP4EC_LOAD_LIMIT = 0.8
V = TypeVar("V")


@dataclass(frozen=True)
class ScoreWeights:
    """The four weights of the score (AMP4EC's published values by default)."""

    resources: float = 0.2
    load: float = 0.2
    time: float = 0.1
    tasks: float = 0.5


AMP4EC_WEIGHTS = ScoreWeights()


def amp4ec_score(
    resources: Any, load: Any, avg_time_s: Any, tasks: Any, weights: ScoreWeights = AMP4EC_WEIGHTS
) -> Any:
    """AMP4EC's node score; floats or numpy arrays (element-wise) alike."""
    w = weights
    return (
        w.resources * resources
        + w.load * (1 - load)
        + w.time / (1 + avg_time_s)
        + w.tasks / (1 + 2 * tasks)
    )


class NoTargetError(LookupError):
    """The scheduler has no target at all."""


@dataclass(frozen=True)
class TargetState:
    """What the scheduler knows of one target when it picks."""

    name: str
    resources: float  # free share, 0..1 (1.0 until telemetry says otherwise)
    load: float  # 0..1 (0.0 until telemetry says otherwise)
    avg_time_s: float  # mean of the last `window` response times; 0 before the first
    tasks: int  # requests in flight
    fresh: bool  # telemetry not older than `stale_after_s` (or none ever given)
    score: float


class _Target:
    def __init__(self, window: int) -> None:
        self.resources, self.load = 1.0, 0.0
        self.seen_at: float | None = None
        self.tasks = 0
        self.times: deque[float] = deque(maxlen=window)


class TaskScheduler:
    """Picks the target for the next request: the best score among targets at most
    `load_limit` loaded with fresh telemetry; when none qualifies, the best score of all (a
    request is never dropped for want of a perfect target)."""

    def __init__(
        self,
        targets: Iterable[str],
        *,
        weights: ScoreWeights = AMP4EC_WEIGHTS,
        load_limit: float = AMP4EC_LOAD_LIMIT,
        window: int = 32,
        stale_after_s: float = 10.0,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        self._window = window
        self._targets: dict[str, _Target] = {}
        for name in targets:
            self.add(name)
        self.weights, self.load_limit, self.stale_after_s = weights, load_limit, stale_after_s

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self._targets)

    def add(self, name: str) -> None:
        if name in self._targets:
            raise ValueError(f"target {name!r} given twice")
        self._targets[name] = _Target(self._window)

    def remove(self, name: str) -> None:
        self._get(name)
        del self._targets[name]

    def observe(self, name: str, *, resources: float, load: float, now: float) -> None:
        """Telemetry for a target: its free share and its load, both 0..1, at `now`."""
        target = self._get(name)
        target.resources = min(max(resources, 0.0), 1.0)
        target.load = min(max(load, 0.0), 1.0)
        target.seen_at = now

    def started(self, name: str) -> None:
        self._get(name).tasks += 1

    def finished(self, name: str, elapsed_s: float) -> None:
        target = self._get(name)
        if target.tasks <= 0:
            raise ValueError(f"target {name!r} finished a request it never started")
        target.tasks -= 1
        target.times.append(max(elapsed_s, 0.0))

    def states(self, now: float) -> tuple[TargetState, ...]:
        out = []
        for name, t in self._targets.items():
            avg = sum(t.times) / len(t.times) if t.times else 0.0
            fresh = t.seen_at is None or now - t.seen_at <= self.stale_after_s
            score = amp4ec_score(t.resources, t.load, avg, t.tasks, self.weights)
            out.append(TargetState(name, t.resources, t.load, avg, t.tasks, fresh, score))
        return tuple(out)

    def pick(self, now: float) -> str:
        """The target for the next request (call `started` when it is sent there)."""
        states = self.states(now)
        if not states:
            raise NoTargetError("no target to send the request to")
        eligible = [s for s in states if s.fresh and s.load <= self.load_limit] or list(states)
        return max(eligible, key=lambda s: s.score).name  # first in order on a tie

    def _get(self, name: str) -> _Target:
        try:
            return self._targets[name]
        except KeyError:
            raise NoTargetError(
                f"no target {name!r}; targets: {', '.join(self._targets)}"
            ) from None


class ResultCache(Generic[V]):
    """AMP4EC's result cache: LRU over (model, input bytes), with hit and miss counts."""

    def __init__(self, max_entries: int = 1024) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        self.hits = self.misses = 0
        self._entries: OrderedDict[str, V] = OrderedDict()

    @staticmethod
    def key(model: str, data: bytes) -> str:
        digest = hashlib.sha256(model.encode())
        digest.update(b"\0")  # the model name cannot run into the input bytes
        digest.update(data)
        return digest.hexdigest()

    def get(self, model: str, data: bytes) -> V | None:
        key = self.key(model, data)
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key]
        self.misses += 1
        return None

    def put(self, model: str, data: bytes, value: V) -> None:
        key = self.key(model, data)
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0
