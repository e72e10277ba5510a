"""The auto-pilot: which deployments need a new place, and moving them within guardrails.

The pure part decides, from plain values (the state's deployments, a FleetSnapshot, the
previous round's `AutoMemory`):

- `assess(...)` / `triggers(...)`: what calls for a move, per deployment:
  `host-lost` (its host silent past `host_lost_grace_s`), `slo` (the reconciler marked it
  degraded: its SLO was violated for several windows, with hysteresis), `memory` (its device's
  free memory below `min_free_fraction`), `thermal` (its device reports a thermal throttle
  reason or runs at `max_temp_c` or more), `better-placement` (the rebalance plan moves it
  with a real predicted gain) and `rollback` (an auto move made its measured p99 worse than
  before by more than `rollback_margin`). Memory, thermal and better-placement must hold for
  `persist_rounds` consecutive rounds (a blip moves nothing); the others already waited.
- `guard(...)`: the guardrails: one trigger per deployment (the most urgent), a cooldown after
  an auto move (except for a lost host or a rollback), at most `max_moves_per_minute` moves in
  a sliding window.
- `avoid(...)`: no ping-pong: a deployment never goes back to a place it left recently, except
  once, by a rollback, after which the place it was rolled back from is avoided in turn.

`Autopilot` is the async edge: one `step()` runs a reconcile round, assesses, chooses targets
(the rebalance plan's, else the scheduler's live recommendation, else the least-loaded healthy
device when there is no usable prediction) and applies moves through the orchestrator. Every
decision of its own (trigger, skip by a guardrail, rollback) goes to the audit log; the step
returns every audit line written meanwhile (the orchestrator's too), as JSON-ready dicts.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from edgetop.core.advisor import PlannedMove, live_rebalance, live_recommendation
from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.core.orchestrator import Orchestrator
from edgetop.core.placement import Request
from edgetop.core.reconciler import reading_for
from edgetop.core.statestore import Decision
from edgetop.models.catalog import load_catalog
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.errors import EdgetopError
from edgetop.remote.protocol import DeploymentReading, DeviceReading

__all__ = [
    "KINDS",
    "Assessment",
    "AutoMemory",
    "AutoSettings",
    "Autopilot",
    "MoveRecord",
    "Trigger",
    "Verdict",
    "assess",
    "avoid",
    "fallback_target",
    "guard",
    "record_move",
    "triggers",
    "unsafe",
]

# Most urgent first: one deployment acts on its most urgent ready trigger only.
KINDS = ("host-lost", "rollback", "slo", "memory", "thermal", "better-placement")
_PRIORITY = {k: i for i, k in enumerate(KINDS)}
_PERSISTENT = frozenset({"memory", "thermal", "better-placement"})  # must hold N rounds
_URGENT = frozenset({"host-lost", "rollback"})  # not held back by the cooldown
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class AutoSettings:
    host_lost_grace_s: float = 15.0  # silent this long: its deployments start elsewhere
    min_free_fraction: float = 0.05  # device memory free below this: pressure
    max_temp_c: float = 85.0  # at or above: thermal trouble even without a throttle reason
    persist_rounds: int = 3  # rounds a memory/thermal/better-placement trigger must hold
    min_gain_ms: float = 1.0  # a better placement must gain this much p99 ...
    min_gain_fraction: float = 0.2  # ... and this share of the current p99
    max_moves_per_minute: int = 2
    rate_window_s: float = 60.0
    cooldown_s: float = 300.0  # after an auto move, the deployment stays put this long
    rollback_windows: int = 3  # new statistics windows judged after a move
    rollback_margin: float = 0.2  # worse than before by more than this share: move back
    pingpong_s: float = 1800.0  # a place a deployment left is not chosen again this long
    rebalance: bool = True  # look for better placements at all
    objective: str = "latency"


@dataclass(frozen=True)
class Trigger:
    deployment: str
    kind: str  # one of KINDS
    reason: str
    source: Where
    rounds: int = 1  # consecutive rounds it has held
    ready: bool = True  # held long enough to act on
    target: Where | None = None  # a target already decided (better placement, rollback)
    detail: Mapping[str, Any] = field(
        default_factory=lambda: _EMPTY
    )  # predicted gain, p99 before and after, ...


@dataclass(frozen=True)
class MoveRecord:
    """An auto move (or attempt), remembered for the rate limit, cooldown, rollback and
    ping-pong guardrails."""

    deployment: str
    at: float
    kind: str
    source: Where
    target: Where
    moved: bool = True  # False: the attempt failed, the deployment stayed
    before_p99_ms: float | None = None  # measured on the source just before the move
    after_p99_ms: tuple[float, ...] = ()  # the target's p99, one per new window
    last_t: float | None = None  # the statistics' time last counted
    judged: bool = False  # rollback decided either way (a rollback is never rolled back)


@dataclass(frozen=True)
class AutoMemory:
    down_since: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    streaks: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    moves: tuple[MoveRecord, ...] = ()  # oldest first


@dataclass(frozen=True)
class Assessment:
    triggers: tuple[Trigger, ...]
    memory: AutoMemory


@dataclass(frozen=True)
class Verdict:
    trigger: Trigger
    allowed: bool
    guardrail: str | None = None  # "cooldown" | "rate-limit" when not allowed
    why: str | None = None


# -- device conditions ---------------------------------------------------------------------


def _device(host: HostView, device: str) -> DeviceReading | None:
    return next((x for x in host.devices if x.id == device), None)


def _memory_pressure(dev: DeviceReading, s: AutoSettings) -> str | None:
    if not dev.mem_total or dev.mem_used is None:
        return None
    free = max(0.0, 1.0 - dev.mem_used / dev.mem_total)
    if free >= s.min_free_fraction:
        return None
    return f"{100 * free:.1f}% of {dev.id} memory free (below {100 * s.min_free_fraction:g}%)"


def _thermal(dev: DeviceReading, s: AutoSettings) -> str | None:
    reasons = [t for t in dev.throttle if "thermal" in t]
    if reasons:
        return f"{dev.id} throttled ({', '.join(reasons)})"
    if dev.temp_c is not None and dev.temp_c >= s.max_temp_c:
        return f"{dev.id} at {dev.temp_c:.0f} C (limit {s.max_temp_c:g} C)"
    return None


def unsafe(snapshot: FleetSnapshot, where: Where, s: AutoSettings) -> str | None:
    """Why `where` is no place to move to now (silent, under memory pressure, hot)."""
    if where.host not in snapshot.index:
        return f"host {where.host} is not in the fleet"
    host = snapshot.host(where.host)
    if not host.answered:
        return f"host {where.host} is not answering"
    dev = _device(host, where.device)
    if dev is None:
        return f"host {where.host} reports no device {where.device}"
    return _memory_pressure(dev, s) or _thermal(dev, s)


# -- triggers ------------------------------------------------------------------------------


def _down_since(snapshot: FleetSnapshot, memory: AutoMemory, now: float) -> dict[str, float]:
    return {h.name: memory.down_since.get(h.name, now) for h in snapshot.hosts if not h.answered}


def _last_move(memory: AutoMemory, deployment: str) -> MoveRecord | None:
    return next((m for m in reversed(memory.moves) if m.deployment == deployment), None)


def _watch(
    d: Deployment, host: HostView, rec: MoveRecord, s: AutoSettings
) -> tuple[MoveRecord, Trigger | None]:
    """Count the moved worker's new windows; once there are enough, judge the move."""
    r = _reading(host, d.worker)
    if r is None or r.p99_ms is None or (r.t is not None and r.t == rec.last_t):
        return rec, None
    rec = replace(rec, after_p99_ms=(*rec.after_p99_ms, r.p99_ms), last_t=r.t)
    if len(rec.after_p99_ms) < s.rollback_windows:
        return rec, None
    rec = replace(rec, judged=True)
    before = rec.before_p99_ms
    after = statistics.median(rec.after_p99_ms)
    if rec.kind == "rollback" or before is None or after <= before * (1 + s.rollback_margin):
        return rec, None
    reason = (
        f"p99 {after:.1f} ms on {rec.target} after the move, {before:.1f} ms before on "
        f"{rec.source} (worse by more than {100 * s.rollback_margin:g}%)"
    )
    detail = {"before_p99_ms": before, "after_p99_ms": after}
    return rec, Trigger(d.id, "rollback", reason, rec.target, target=rec.source, detail=detail)


def _reading(host: HostView, worker: str | None) -> DeploymentReading | None:
    return next((x for x in host.deployments if x.id == worker), None) if worker else None


def _planned(d: Deployment, plan: Sequence[PlannedMove], s: AutoSettings) -> Trigger | None:
    m = next((x for x in plan if x.deployment_id == d.id and x.source == d.where), None)
    if m is None or d.where is None:
        return None
    enough = m.gain >= s.min_gain_ms and m.gain >= s.min_gain_fraction * m.before_p99_ms
    if not (enough or m.fixes_violation):
        return None
    reason = (
        f"predicted p99 {m.after_p99_ms:.1f} ms on {m.target} vs {m.before_p99_ms:.1f} ms "
        f"on {m.source}: {m.reason}"
    )
    detail = {
        "predicted_gain": m.gain,
        "before_p99_ms": m.before_p99_ms,
        "after_p99_ms": m.after_p99_ms,
    }
    return Trigger(d.id, "better-placement", reason, d.where, target=m.target, detail=detail)


def assess(
    deployments: Iterable[Deployment],
    snapshot: FleetSnapshot,
    memory: AutoMemory,
    now: float,
    settings: AutoSettings = AutoSettings(),
    plan: Sequence[PlannedMove] = (),
) -> Assessment:
    """This round's triggers (ready or still persisting) and the memory for the next round."""
    s = settings
    down = _down_since(snapshot, memory, now)
    moves = list(memory.moves)
    found: list[Trigger] = []
    for d in deployments:
        where = d.where
        if where is None or where.host not in snapshot.index:
            continue
        acting = d.status in (Status.RUNNING, Status.DEGRADED)
        if not acting and d.status is not Status.FAILED:
            continue  # starting, moving, stopped...: not the auto-pilot's to move now
        host = snapshot.host(where.host)
        if not host.answered:
            silent = now - down[where.host]
            if silent >= s.host_lost_grace_s:
                why = host.reason or host.status.value
                found.append(
                    Trigger(
                        d.id,
                        "host-lost",
                        f"host {where.host} silent for {silent:.0f} s ({why})",
                        where,
                    )
                )
            continue  # a silent host's last readings say nothing about now
        if not acting:
            continue  # failed on a host that answers: its worker failed, not its place
        last = _last_move(memory, d.id)
        if last is not None and last.moved and not last.judged and last.target == where:
            i = moves.index(last)
            moves[i], rollback = _watch(d, host, last, s)
            if rollback is not None:
                found.append(rollback)
        if d.status is Status.DEGRADED:
            found.append(Trigger(d.id, "slo", d.reason or "SLO violated", where))
        dev = _device(host, where.device)
        if dev is not None:
            for kind, why in (("memory", _memory_pressure(dev, s)), ("thermal", _thermal(dev, s))):
                if why is not None:
                    found.append(Trigger(d.id, kind, f"{where}: {why}", where))
        better = _planned(d, plan, s) if s.rebalance else None
        if better is not None:
            found.append(better)
    streaks: dict[tuple[str, str], int] = {}
    out = []
    for t in found:
        key = (t.deployment, t.kind)
        rounds = memory.streaks.get(key, 0) + 1
        streaks[key] = rounds
        need = s.persist_rounds if t.kind in _PERSISTENT else 1
        out.append(replace(t, rounds=rounds, ready=rounds >= need))
    kept = _prune(moves, now, s)
    return Assessment(
        tuple(out), AutoMemory(MappingProxyType(down), MappingProxyType(streaks), kept)
    )


def triggers(
    deployments: Iterable[Deployment],
    snapshot: FleetSnapshot,
    memory: AutoMemory,
    now: float,
    settings: AutoSettings = AutoSettings(),
    plan: Sequence[PlannedMove] = (),
) -> list[Trigger]:
    """The ready triggers of this round (see `assess` for the memory it carries on)."""
    return [
        t for t in assess(deployments, snapshot, memory, now, settings, plan).triggers if t.ready
    ]


def _prune(moves: Sequence[MoveRecord], now: float, s: AutoSettings) -> tuple[MoveRecord, ...]:
    horizon = max(s.rate_window_s, s.cooldown_s, s.pingpong_s)
    return tuple(m for m in moves if now - m.at <= horizon or not m.judged)  # watches stay


# -- guardrails ----------------------------------------------------------------------------


def guard(
    found: Iterable[Trigger],
    memory: AutoMemory,
    now: float,
    settings: AutoSettings = AutoSettings(),
) -> tuple[Verdict, ...]:
    """Per deployment its most urgent ready trigger, allowed or held back by a guardrail.
    Urgent deployments come first, so a lost host's moves are not crowded out."""
    s = settings
    best: dict[str, Trigger] = {}
    for t in found:
        if t.ready and (
            t.deployment not in best or _PRIORITY[t.kind] < _PRIORITY[best[t.deployment].kind]
        ):
            best[t.deployment] = t
    recent = [m for m in memory.moves if now - m.at < s.rate_window_s]
    budget = s.max_moves_per_minute - len(recent)
    out = []
    for t in sorted(best.values(), key=lambda t: (_PRIORITY[t.kind], t.deployment)):
        last = _last_move(memory, t.deployment)
        if t.kind not in _URGENT and last is not None and now - last.at < s.cooldown_s:
            why = f"moved {now - last.at:.0f} s ago (cooldown {s.cooldown_s:g} s)"
            out.append(Verdict(t, False, "cooldown", why))
        elif budget <= 0:
            why = f"{len(recent)} moves in the last {s.rate_window_s:g} s "
            why += f"(limit {s.max_moves_per_minute})"
            out.append(Verdict(t, False, "rate-limit", why))
        else:
            budget -= 1
            out.append(Verdict(t, True))
    return tuple(out)


def avoid(
    deployment: str, memory: AutoMemory, now: float, settings: AutoSettings = AutoSettings()
) -> frozenset[Where]:
    """Places not to move the deployment to: those it left by an auto move within
    `pingpong_s` (no ping-pong; a rollback's own target is exempt, that is the one move back
    it is allowed), and targets of its failed attempts within `cooldown_s`."""
    out = set()
    for m in memory.moves:
        if m.deployment != deployment:
            continue
        if m.moved and now - m.at < settings.pingpong_s:
            out.add(m.source)
        elif not m.moved and now - m.at < settings.cooldown_s:
            out.add(m.target)
    return frozenset(out)


def record_move(
    memory: AutoMemory,
    trigger: Trigger,
    target: Where,
    now: float,
    moved: bool,
    before_p99_ms: float | None = None,
) -> AutoMemory:
    """The memory after an auto move (or failed attempt) of `trigger`'s deployment. Earlier
    moves of it are judged: only the latest move can be rolled back."""
    earlier = tuple(
        replace(m, judged=True) if m.deployment == trigger.deployment else m for m in memory.moves
    )
    rec = MoveRecord(
        trigger.deployment,
        now,
        trigger.kind,
        trigger.source,
        target,
        moved=moved,
        before_p99_ms=before_p99_ms,
        judged=not moved or trigger.kind == "rollback",
    )
    streaks = {k: v for k, v in memory.streaks.items() if k[0] != trigger.deployment}
    return replace(memory, streaks=MappingProxyType(streaks), moves=(*earlier, rec))


def fallback_target(
    d: Deployment,
    snapshot: FleetSnapshot,
    exclude: frozenset[Where],
    settings: AutoSettings = AutoSettings(),
) -> Where | None:
    """Without a usable prediction: the least-busy healthy device of the same sort (CPU for
    a CPU deployment, any accelerator for an accelerator one), most free memory on a tie."""
    cpu = d.where is None or d.where.device == "cpu"
    best: tuple[tuple[float, float, str], Where] | None = None
    for host in snapshot.hosts:
        if not host.answered:
            continue
        for dev in host.devices:
            where = Where(host.name, dev.id)
            if (dev.kind == "cpu") != cpu or where == d.where or where in exclude:
                continue
            if unsafe(snapshot, where, settings) is not None:
                continue
            free = (dev.mem_total or 0) - (dev.mem_used or 0)
            key = (dev.util or 0.0, -float(free), str(where))
            if best is None or key < best[0]:
                best = (key, where)
    return None if best is None else best[1]


# -- the async edge ------------------------------------------------------------------------

WorkloadResolver = Callable[[str], WorkloadFeatures | None]


def catalog_workload(model: str) -> WorkloadFeatures | None:
    return load_catalog().get(model)


class Autopilot:
    """Runs rounds of triggers and guarded moves over an orchestrator (whose monitor the
    caller runs). `step()` is what `edgetop --auto` runs every interval and the interface
    runs when the operator turns auto on."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        settings: AutoSettings = AutoSettings(),
        clock: Callable[[], float] = time.time,
        emit: Callable[[dict[str, Any]], None] | None = None,
        workloads: WorkloadResolver = catalog_workload,
    ) -> None:
        self.orchestrator = orchestrator
        self.settings = settings
        self.clock = clock
        self.emit = emit
        self.workloads = workloads
        self.memory = AutoMemory()
        self._seen = len(orchestrator.store.decisions())  # audit lines already reported
        self._skipped: dict[str, str] = {}  # deployment -> last skip logged (log changes only)

    async def step(self) -> list[dict[str, Any]]:
        """One round; returns (and emits) every audit line written meanwhile."""
        orch = self.orchestrator
        await orch.reconcile_once("auto")
        deployments = orch.store.load()
        snapshot = orch.monitor.snapshot
        now = self.clock()
        plan = self._plan(deployments, snapshot, now)
        a = assess(deployments, snapshot, self.memory, now, self.settings, plan)
        self.memory = a.memory
        by_id = {d.id: d for d in deployments}
        skipped: dict[str, str] = {}
        for v in guard(a.triggers, self.memory, now, self.settings):
            d = by_id[v.trigger.deployment]
            if not v.allowed:
                skipped[d.id] = self._skip(d, v.trigger, v.guardrail or "", v.why or "")
                continue
            target, how = self._target(d, v.trigger, snapshot, now)
            if target is None:
                skipped[d.id] = self._skip(d, v.trigger, "no-target", how)
                continue
            await self._apply(d, v.trigger, target, how, snapshot)
        self._skipped = skipped
        return self._report()

    # -- the round's parts -------------------------------------------------------------------

    def _plan(
        self, deployments: Sequence[Deployment], snapshot: FleetSnapshot, now: float
    ) -> Sequence[PlannedMove]:
        if not self.settings.rebalance or not any(
            d.status in (Status.RUNNING, Status.DEGRADED) for d in deployments
        ):
            return ()
        try:
            plan, _ = live_rebalance(
                deployments,
                snapshot,
                self.orchestrator.config,
                objective=self.settings.objective,
                now=now,
            )
        except (EdgetopError, ValueError, KeyError):
            return ()  # no plan this round; the urgent triggers need none
        return plan

    def _target(
        self, d: Deployment, t: Trigger, snapshot: FleetSnapshot, now: float
    ) -> tuple[Where | None, str]:
        """Where to move `d`, and how it was chosen (or why there is nowhere)."""
        s = self.settings
        exclude = avoid(d.id, self.memory, now, s) | {t.source}
        if t.target is not None:
            why = unsafe(snapshot, t.target, s)
            if t.kind != "rollback" and t.target in exclude:
                why = "it left there recently (no ping-pong)"
            return (None, f"{t.target}: {why}") if why else (t.target, t.kind)
        workload = self.workloads(d.model)
        if workload is not None:
            request = Request(d.model, workload, d.batch, d.slo_ms, d.scenario, d.qps, d.objective)
            try:
                rec, _ = live_recommendation(request, snapshot, self.orchestrator.config, now)
            except (EdgetopError, ValueError, KeyError):
                rec = None
            if rec is not None:
                for c in rec.candidates:
                    where = Where(c.host, c.device)
                    if where not in exclude and unsafe(snapshot, where, s) is None:
                        return where, "recommendation"
                if t.kind != "host-lost":
                    return None, "no device the scheduler recommends is free to take it"
        where = fallback_target(d, snapshot, frozenset(exclude), s)
        if where is None:
            return None, "no healthy device of its sort elsewhere"
        return where, "least-loaded"

    async def _apply(
        self, d: Deployment, t: Trigger, target: Where, how: str, snapshot: FleetSnapshot
    ) -> None:
        orch = self.orchestrator
        before = None
        if d.where is not None and d.worker is not None:
            r = reading_for(snapshot, d.where.host, d.worker)
            before = None if r is None else r.p99_ms
        action = "rollback" if t.kind == "rollback" else "trigger"
        self._record(
            action,
            d,
            trigger=t.kind,
            reason=t.reason,
            rounds=t.rounds,
            **{"from": str(t.source), "to": str(target)},
            chosen_by=how,
            **dict(t.detail),
        )
        why = f"auto {t.kind}: {t.reason}"
        try:
            if d.status is Status.FAILED:
                after = await orch.relocate(d.id, target, "auto", why)
                ok = after.status is Status.RUNNING
            else:
                after = await orch.move(d.id, target, "auto", why)
                ok = after.where == target
        except EdgetopError as exc:  # changed under us, or refused: the next round sees it
            self._record("error", d, trigger=t.kind, reason=str(exc))
            ok = False
        self.memory = record_move(self.memory, t, target, self.clock(), ok, before)

    def _skip(self, d: Deployment, t: Trigger, guardrail: str, why: str) -> str:
        key = f"{t.kind}/{guardrail}"
        if self._skipped.get(d.id) != key:  # the same hold-back is logged once, not per round
            self._record("skip", d, trigger=t.kind, reason=t.reason, guardrail=guardrail, why=why)
        return key

    def _record(self, action: str, d: Deployment, **detail: Any) -> None:
        self.orchestrator.store.record(Decision("auto", action, d.id, detail, self.clock()))

    def _report(self) -> list[dict[str, Any]]:
        log = self.orchestrator.store.decisions()
        new = [{"type": "decision", **entry} for entry in log[self._seen :]]
        self._seen = len(log)
        if self.emit is not None:
            for record in new:
                self.emit(record)
        return new
