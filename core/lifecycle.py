"""A deployment's life: what the operator asked for, where it runs and how it is doing.

Pure values and transitions, no I/O: the state store persists them, the reconciler drives
them. Every status change goes through `transition`, which refuses moves the lifecycle does
not have (a stopped deployment never comes back to life; a new one is made instead).

    pending -> recommended -> starting -> running <-> degraded
                                  |          |           |
                                  v          v           v
                               failed     moving  ->  running | degraded | failed
    any status -> stopped (final)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from edgetop.remote.errors import EdgetopError


class Status(str, Enum):
    PENDING = "pending"
    RECOMMENDED = "recommended"
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"  # running but violating its SLO
    FAILED = "failed"
    MOVING = "moving"  # a replacement is starting elsewhere; the old worker still serves
    STOPPED = "stopped"

    @property
    def active(self) -> bool:
        """Has (or is getting) a worker somewhere."""
        return self in (Status.STARTING, Status.RUNNING, Status.DEGRADED, Status.MOVING)


_NEXT: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.RECOMMENDED, Status.STARTING, Status.FAILED}),
    Status.RECOMMENDED: frozenset({Status.PENDING, Status.STARTING, Status.FAILED}),
    Status.STARTING: frozenset({Status.RUNNING, Status.DEGRADED, Status.FAILED}),
    Status.RUNNING: frozenset({Status.DEGRADED, Status.MOVING, Status.FAILED}),
    Status.DEGRADED: frozenset({Status.RUNNING, Status.MOVING, Status.FAILED}),
    Status.MOVING: frozenset({Status.RUNNING, Status.DEGRADED, Status.FAILED}),
    Status.FAILED: frozenset({Status.STARTING, Status.PENDING}),
    Status.STOPPED: frozenset(),
}

OBJECTIVES = ("latency", "throughput", "energy", "balance")
SCENARIOS = ("singlestream", "server", "offline")
_ID_SAFE = re.compile(r"[^a-z0-9]+")


class LifecycleError(EdgetopError):
    """A transition the lifecycle does not have, or a deployment record that is malformed."""


@dataclass(frozen=True)
class Where:
    """A placement: one device on one host of hosts.toml."""

    host: str
    device: str = "gpu0"

    def __str__(self) -> str:
        return f"{self.host}/{self.device}"


@dataclass(frozen=True)
class Deployment:
    id: str
    model: str
    batch: int
    slo_ms: float
    scenario: str = "server"
    qps: float | None = None
    objective: str = "latency"
    status: Status = Status.PENDING
    where: Where | None = None  # where its worker runs (or is starting)
    moving_to: Where | None = None  # during a move: where the replacement is starting
    reason: str | None = None  # why it is failed or degraded, or what the last step did
    created: float = 0.0
    updated: float = 0.0
    worker: str | None = None  # the worker's deployment id on its host
    history: tuple[tuple[float, str], ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "batch": self.batch,
            "slo_ms": self.slo_ms,
            "scenario": self.scenario,
            "qps": self.qps,
            "objective": self.objective,
            "status": self.status.value,
            "where": None if self.where is None else vars(self.where),
            "moving_to": None if self.moving_to is None else vars(self.moving_to),
            "reason": self.reason,
            "created": self.created,
            "updated": self.updated,
            "worker": self.worker,
            "history": [list(h) for h in self.history],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Deployment:
        if not isinstance(data, dict):
            raise LifecycleError(f"a deployment must be an object, got {type(data).__name__}")
        try:
            where = data.get("where")
            moving = data.get("moving_to")
            return cls(
                id=str(data["id"]),
                model=str(data["model"]),
                batch=int(data["batch"]),
                slo_ms=float(data["slo_ms"]),
                scenario=str(data.get("scenario", "server")),
                qps=None if data.get("qps") is None else float(data["qps"]),
                objective=str(data.get("objective", "latency")),
                status=Status(data.get("status", "pending")),
                where=None if where is None else Where(str(where["host"]), str(where["device"])),
                moving_to=None
                if moving is None
                else Where(str(moving["host"]), str(moving["device"])),
                reason=None if data.get("reason") is None else str(data["reason"]),
                created=float(data.get("created", 0.0)),
                updated=float(data.get("updated", 0.0)),
                worker=None if data.get("worker") is None else str(data["worker"]),
                history=tuple((float(t), str(s)) for t, s in data.get("history", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            what = data.get("id", "?")
            raise LifecycleError(f"deployment {what!r} is malformed: {exc!r}") from None


HISTORY_LEN = 50  # status changes kept per deployment


def transition(
    d: Deployment, status: Status, at: float, reason: str | None = None, **changes: Any
) -> Deployment:
    """`d` in `status` (with `changes`), or LifecycleError if the lifecycle has no such move.
    Stopping is always allowed, except for what is already stopped."""
    if status is not d.status:
        allowed = status is Status.STOPPED and d.status is not Status.STOPPED
        if not allowed and status not in _NEXT[d.status]:
            raise LifecycleError(
                f"deployment {d.id} cannot go from {d.status.value} to {status.value}"
            )
    history = (*d.history, (at, status.value))[-HISTORY_LEN:]
    return replace(d, status=status, reason=reason, updated=at, history=history, **changes)


def new_id(model: str, taken: set[str] | frozenset[str]) -> str:
    """A short id an operator can type: the model's name plus a counter (`resnet50-3`)."""
    stem = _ID_SAFE.sub("-", model.lower()).strip("-")[:24] or "model"
    n = 1
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


def validate_request(model: str, batch: int, slo_ms: float, scenario: str, objective: str) -> None:
    """Bad requests fail before anything is recorded, naming the field."""
    if not model:
        raise LifecycleError("model: must not be empty")
    if not 1 <= batch <= 4096:
        raise LifecycleError(f"batch: must be 1 to 4096, got {batch}")
    if not 0 < slo_ms <= 3.6e6:
        raise LifecycleError(f"slo: must be above 0 and at most 3600000 ms, got {slo_ms:g}")
    if scenario not in SCENARIOS:
        raise LifecycleError(f"scenario: must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if objective not in OBJECTIVES:
        raise LifecycleError(
            f"objective: must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
