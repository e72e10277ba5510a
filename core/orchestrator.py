"""The deployment lifecycle's I/O edge: starts, moves and stops workers, applies reconcile plans.

Real hosts (`ssh`, `local`) go through the deployer (edgetop.remote.deploy) on a HostShell
opened the way `edgetop profile` opens one; simulated hosts through their in-process
SimDevice. Every state change goes through `StateStore.update` (under its lock, so the
interface, `--auto` and `edgetop deploy` can run side by side) and every decision is a line of
the audit log (`StateStore.record`, who: "operator" or "auto").

Simulated hosts: a sim deployment lives only in the process that runs the monitor. A sim host
"runs" what the desired state says, so a process starting with a state that has deployments on
sim hosts places them again (`place_simulated`, or a reconcile round's Start): for a simulated
host that is finding its workers again. Real workers outlive edgetop (they are detached on
their host) and a restarted edgetop adopts them from what the hosts' agents report.

The caller runs the monitor (`async with FleetMonitor(...)`): waiting for a worker to be
healthy reads its snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from edgetop.core.config import FleetConfig, HostConfig
from edgetop.core.hostshell import host_python, open_host_shell, user_module_files
from edgetop.core.lifecycle import (
    Deployment,
    Status,
    Where,
    new_id,
    transition,
    validate_request,
)
from edgetop.core.monitor import FleetMonitor
from edgetop.core.placement import Candidate, Recommendation, Request
from edgetop.core.reconciler import (
    FINISHED,
    AbortMove,
    Action,
    Adopt,
    FinishMove,
    MarkDegraded,
    MarkFailed,
    MarkRunning,
    ReconcileMemory,
    ReconcileSettings,
    Start,
    Stop,
    healthy,
    next_worker,
    reading_for,
    reconcile,
    worker_id,
)
from edgetop.core.statestore import Decision, StateStore
from edgetop.remote.deploy import START_TIMEOUT_S, DeployError, Layout, deploy, stop
from edgetop.remote.errors import EdgetopError
from edgetop.remote.protocol import DeploymentReading
from edgetop.remote.sim import SimDeployment
from edgetop.remote.worker import SpecError, WorkerSpec

__all__ = [
    "NOT_STOPPED_YET",
    "Orchestrator",
    "OrchestratorError",
    "OrchestratorSettings",
    "measured",
    "recommendation_detail",
    "worker_spec",
]


# In a stopped deployment's reason: a worker could not be stopped (its host did not answer).
NOT_STOPPED_YET = "worker not stopped yet:"


class OrchestratorError(EdgetopError):
    """A request the lifecycle refuses before anything runs: unknown deployment, host or
    device, a move of something not running."""


class _Stale(Exception):
    """The deployment changed since the plan was made: the action no longer applies."""


@dataclass(frozen=True)
class OrchestratorSettings:
    health_timeout_s: float = 120.0  # a new worker must run with metrics within this
    start_timeout_s: float = START_TIMEOUT_S  # the deployer's own wait for `running`
    layout: Layout = field(default_factory=Layout)  # where workers live on real hosts
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    accept_new_hosts: bool = False


def worker_spec(d: Deployment, where: Where, worker: str) -> WorkerSpec:
    """What a real host's worker runs; SpecError names a field a worker would refuse."""
    device = where.device
    if device.startswith("gpu") and device[3:].isdigit():
        device = f"cuda:{device[3:]}"
    elif device != "cpu":
        device = "auto"
    return WorkerSpec(
        id=worker,
        model=d.model,
        batch=d.batch,
        scenario=d.scenario,
        qps=d.qps,
        slo_ms=d.slo_ms,
        device=device,
    )


def measured(snapshot: Any, d: Deployment) -> DeploymentReading | None:
    """The deployment's worker as its host last reported it (None: not reported)."""
    if d.where is None or d.worker is None:
        return None
    return reading_for(snapshot, d.where.host, d.worker)


def _candidate(rec: Recommendation, c: Candidate) -> dict[str, Any]:
    return {
        "policy": rec.policy,
        "host": c.host,
        "device": c.device,
        "p50_ms": c.p50_ms,
        "p99_ms": c.p99_ms,
        "confidence": c.confidence,
        "trial": c.trial,
    }


def recommendation_detail(
    rec: Recommendation | None, where: Where
) -> tuple[str, dict[str, Any], str | None]:
    """(audit action, detail, warning): the recommendation a placement followed or overrode;
    the warning says why the scheduler turned the chosen device down."""
    if rec is None:
        return "deploy", {"where": str(where), "recommendation": None}, None
    mine = next(
        (c for c in rec.candidates if (c.host, c.device) == (where.host, where.device)), None
    )
    chosen = rec.chosen
    if chosen is not None and mine is chosen:
        return "accept", {"where": str(where), "followed": _candidate(rec, chosen)}, None
    detail: dict[str, Any] = {
        "where": str(where),
        "overrode": None if chosen is None else _candidate(rec, chosen),
    }
    warning = None
    if mine is not None:
        detail["predicted"] = _candidate(rec, mine)
    else:
        why = next(
            (x.reason for x in rec.rejected if (x.host, x.device) == (where.host, where.device)),
            "not among the devices the scheduler looked at",
        )
        detail["rejected_because"] = why
        warning = f"{where} is predicted to miss the request: {why}"
    return "override", detail, warning


def _reading_detail(r: DeploymentReading | None) -> dict[str, Any]:
    if r is None:
        return {}
    return {"measured": {"p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "throughput": r.throughput}}


class Orchestrator:
    def __init__(
        self,
        config: FleetConfig,
        monitor: FleetMonitor,
        store: StateStore,
        clock: Callable[[], float] = time.time,
        settings: OrchestratorSettings = OrchestratorSettings(),
    ) -> None:
        self.config = config
        self.monitor = monitor
        self.store = store
        self.clock = clock
        self.settings = settings
        self.memory = ReconcileMemory()
        self._busy: set[str] = set()  # deployments with an operation in flight here

    # -- state and audit helpers -----------------------------------------------------------

    def get(self, deployment_id: str) -> Deployment:
        for d in self.store.load():
            if d.id == deployment_id:
                return d
        raise OrchestratorError(f"no deployment {deployment_id!r} in {self.store.directory}")

    def _change(
        self,
        deployment_id: str,
        fn: Callable[[Deployment], Deployment],
        expect: Deployment | None = None,
    ) -> Deployment:
        """Apply `fn` to the stored deployment under the lock. With `expect`, raise _Stale
        when someone changed it since (status, placement or worker differ)."""
        out: list[Deployment] = []

        def change(ds: tuple[Deployment, ...]) -> tuple[Deployment, ...]:
            new = []
            for d in ds:
                if d.id == deployment_id:
                    if expect is not None and (d.status, d.where, d.worker, d.moving_to) != (
                        expect.status,
                        expect.where,
                        expect.worker,
                        expect.moving_to,
                    ):
                        raise _Stale(deployment_id)
                    d = fn(d)
                    out.append(d)
                new.append(d)
            if not out:
                raise _Stale(deployment_id)
            return tuple(new)

        self.store.update(change)
        return out[0]

    def _record(self, who: str, action: str, d: Deployment, **detail: Any) -> None:
        self.store.record(Decision(who, action, d.id, detail, self.clock()))

    def check_where(self, where: Where) -> HostConfig:
        """The host's config; raises naming an unknown host, or a device its agent does not
        report (when it answers)."""
        host = self.config.host(where.host)  # UnknownHostError names the hosts
        if where.host in self.monitor.snapshot.index:
            view = self.monitor.snapshot.host(where.host)
            ids = [dev.id for dev in view.devices]
            if view.answered and ids and where.device not in ids:
                raise OrchestratorError(
                    f"host {where.host} has no device {where.device!r}; it has {', '.join(ids)}"
                )
        return host

    # -- workers -----------------------------------------------------------------------------

    async def _start_worker(self, d: Deployment, where: Where, worker: str) -> None:
        host = self.config.host(where.host)
        if host.transport == "sim":
            device = self.monitor.sim_device(where.host)
            if device is None:
                raise DeployError(f"{where.host}: no simulated device in this monitor")
            if worker not in {x.id for x in device.deployments}:
                device.place(SimDeployment(worker, d.model, d.batch, d.scenario, d.qps, d.slo_ms))
            return
        try:
            spec = worker_spec(d, where, worker)
        except SpecError as exc:
            raise DeployError(f"invalid deployment: {exc}") from None
        shell, conn = await open_host_shell(self.config, host, self.settings.accept_new_hosts)
        try:
            await deploy(
                shell,
                spec,
                python=host_python(host),
                layout=self.settings.layout,
                timeout=self.settings.start_timeout_s,
                user_modules=user_module_files(d.model),
            )
        finally:
            with contextlib.suppress(Exception):
                await shell.close()
            if conn is not None:
                conn.close()

    async def _stop_worker(self, host_name: str, worker: str) -> None:
        host = self.config.host(host_name)
        if host.transport == "sim":
            device = self.monitor.sim_device(host_name)
            if device is not None:
                device.remove(worker)
            return
        shell, conn = await open_host_shell(self.config, host, self.settings.accept_new_hosts)
        try:
            await stop(shell, worker, python=host_python(host), layout=self.settings.layout)
        except DeployError as exc:
            if not str(exc).startswith(f"no deployment {worker} "):
                raise  # nothing there is what stopping wants
        finally:
            with contextlib.suppress(Exception):
                await shell.close()
            if conn is not None:
                conn.close()

    async def _await_worker(
        self, host: str, worker: str, timeout: float
    ) -> DeploymentReading | None:
        """The worker's reading once it is healthy or finished; None if neither in time."""
        found: list[DeploymentReading] = []

        def settled(snapshot: Any) -> bool:
            r = reading_for(snapshot, host, worker)
            if r is not None and (healthy(r) or r.state in FINISHED):
                found.append(r)
                return True
            return False

        await self.monitor.wait_for(settled, timeout)
        return found[-1] if found else None

    async def _busy_with(self, deployment_id: str, work: Awaitable[Deployment]) -> Deployment:
        self._busy.add(deployment_id)
        try:
            return await work
        finally:
            self._busy.discard(deployment_id)

    # -- operator and auto-pilot operations --------------------------------------------------

    async def deploy(
        self,
        request: Request,
        where: Where,
        who: str,
        recommendation: Recommendation | None = None,
    ) -> Deployment:
        """Record the deployment, start its worker on `where`, wait until it runs with metrics.

        Bad requests raise (LifecycleError, OrchestratorError, UnknownHostError) before
        anything is recorded; a worker that fails leaves the deployment `failed` with why."""
        r = request
        validate_request(r.model, r.batch, r.slo_ms, r.scenario, r.objective)
        host = self.check_where(where)
        if host.transport != "sim":
            if r.scenario == "server" and r.qps is None:
                raise OrchestratorError("the server scenario needs --qps on a real host")
            try:
                worker_spec(
                    Deployment("x", r.model, r.batch, r.slo_ms, r.scenario, r.qps), where, "x.1"
                )
            except SpecError as exc:
                raise OrchestratorError(str(exc)) from None
        action, detail, warning = recommendation_detail(recommendation, where)
        now = self.clock()
        created: list[Deployment] = []

        def create(ds: tuple[Deployment, ...]) -> tuple[Deployment, ...]:
            did = new_id(r.model, {d.id for d in ds})
            d = Deployment(
                did,
                r.model,
                r.batch,
                r.slo_ms,
                r.scenario,
                r.qps,
                r.objective,
                created=now,
                updated=now,
            )
            if recommendation is not None:
                d = transition(d, Status.RECOMMENDED, now)
            d = transition(
                d, Status.STARTING, now, f"starting on {where}", where=where, worker=worker_id(did)
            )
            created.append(d)
            return (*ds, d)

        self.store.update(create)
        d = created[0]
        extra = {"warning": warning} if warning else {}
        self._record(
            who,
            action,
            d,
            model=r.model,
            batch=r.batch,
            slo_ms=r.slo_ms,
            scenario=r.scenario,
            qps=r.qps,
            **detail,
            **extra,
        )
        return await self._busy_with(d.id, self._launch(d, where, who))

    async def _launch(self, d: Deployment, where: Where, who: str) -> Deployment:
        worker = d.worker or worker_id(d.id)
        try:
            await self._start_worker(d, where, worker)
        except EdgetopError as exc:
            return self._fail(d, f"cannot start on {where}: {exc}", who)
        r = await self._await_worker(where.host, worker, self.settings.health_timeout_s)
        sim = self._sim(where.host)
        if (r is not None and r.state in FINISHED) or (r is None and sim):
            if sim:  # a real host keeps the failed worker's directory and log to look at
                await self._stop_worker(where.host, worker)
            why = f"{r.reason or r.state}" if r is not None else "never reported"
            return self._fail(d, f"{worker} on {where.host}: {why}", who)
        # A real worker the deployer saw running but whose metrics are not in yet still runs.
        reason = "running" if r is not None else "running; no statistics reported yet"
        d = self._change(d.id, lambda x: transition(x, Status.RUNNING, self.clock(), reason))
        self._record(who, "running", d, where=str(where), worker=worker, **_reading_detail(r))
        return d

    def _fail(self, d: Deployment, reason: str, who: str) -> Deployment:
        d = self._change(d.id, lambda x: transition(x, Status.FAILED, self.clock(), reason))
        self._record(who, "fail", d, reason=reason)
        return d

    async def stop(self, deployment_id: str, who: str) -> Deployment:
        """Mark the deployment stopped, then stop its worker(s). A host that cannot be reached
        now gets its leftover stopped by a later reconcile round."""
        d = self.get(deployment_id)
        if d.status is Status.STOPPED:
            return d
        workers = []
        if d.where is not None:
            workers.append((d.where.host, d.worker or worker_id(d.id)))
        if d.status is Status.MOVING and d.moving_to is not None:
            workers.append((d.moving_to.host, next_worker(d)))
        stopped = self._change(
            d.id, lambda x: transition(x, Status.STOPPED, self.clock(), f"stopped by {who}")
        )
        self._record(who, "stop", stopped, workers=[f"{h}/{w}" for h, w in workers])
        results = await asyncio.gather(
            *(self._stop_worker(h, w) for h, w in workers), return_exceptions=True
        )
        pending = []
        for (h, w), result in zip(workers, results, strict=True):
            if isinstance(result, EdgetopError):
                self._record(who, "stop-failed", stopped, worker=f"{h}/{w}", reason=str(result))
                pending.append(f"{h}/{w}: {result}")
            elif isinstance(result, BaseException):
                raise result
        if pending:  # the state says so until a reconcile round stops the leftover
            why = f"{stopped.reason}; {NOT_STOPPED_YET} {'; '.join(pending)}"
            stopped = self._change(d.id, lambda x: replace(x, reason=why))
        return stopped

    async def move(self, deployment_id: str, to: Where, who: str, reason: str) -> Deployment:
        """Make-before-break: start the replacement on `to`, wait until it runs with metrics,
        then switch and stop the old worker. If the replacement fails, the old one keeps
        serving and the deployment says why."""
        d = self.get(deployment_id)
        if d.status not in (Status.RUNNING, Status.DEGRADED) or d.where is None:
            raise OrchestratorError(
                f"deployment {d.id} is {d.status.value}: only a running or "
                "degraded deployment can move"
            )
        if to == d.where:
            raise OrchestratorError(f"deployment {d.id} already runs on {to}")
        self.check_where(to)
        worker = next_worker(d)
        old = d.where
        d = self._change(
            d.id,
            lambda x: transition(
                x, Status.MOVING, self.clock(), f"moving to {to}: {reason}", moving_to=to
            ),
        )
        self._record(
            who, "move", d, **{"from": str(old), "to": str(to)}, reason=reason, worker=worker
        )
        return await self._busy_with(d.id, self._move(d, to, worker, who))

    async def _move(self, d: Deployment, to: Where, worker: str, who: str) -> Deployment:
        try:
            await self._start_worker(d, to, worker)
            r = await self._await_worker(to.host, worker, self.settings.health_timeout_s)
        except EdgetopError as exc:
            return await self._abort_move(AbortMove(d, str(exc), to, worker), who)
        if healthy(r):
            assert r is not None
            return await self._finish_move(FinishMove(d, to, worker, r), who)
        why = (
            f"{r.reason or r.state}"
            if r is not None
            else f"not running with metrics within {self.settings.health_timeout_s:g} s"
        )
        return await self._abort_move(
            AbortMove(d, f"{worker} on {to.host}: {why}", to, worker), who
        )

    async def _finish_move(self, a: FinishMove, who: str) -> Deployment:
        d = a.deployment
        old, old_worker = d.where, d.worker
        moved = self._change(
            d.id,
            lambda x: transition(
                x,
                Status.RUNNING,
                self.clock(),
                f"moved from {old} to {a.new}",
                where=a.new,
                moving_to=None,
                worker=a.new_worker,
            ),
            expect=d,
        )
        self._record(
            who,
            "move-done",
            moved,
            **{"from": str(old), "to": str(a.new)},
            worker=a.new_worker,
            **_reading_detail(a.reading),
        )
        if old is not None and old_worker is not None:
            moved = await self._stop_old(moved, old.host, old_worker, who)
        return moved

    async def _stop_old(self, d: Deployment, host: str, worker: str, who: str) -> Deployment:
        """Stop the worker `d` left behind; a host that does not answer (lost) keeps it until a
        later round finds it there, and the deployment's reason says so meanwhile."""
        try:
            await self._stop_worker(host, worker)
        except EdgetopError as exc:
            self._record(who, "stop-failed", d, worker=f"{host}/{worker}", reason=str(exc))
            why = f"{d.reason}; {NOT_STOPPED_YET} {host}/{worker}: {exc}"
            d = self._change(d.id, lambda x: replace(x, reason=why))
        return d

    async def relocate(self, deployment_id: str, to: Where, who: str, reason: str) -> Deployment:
        """Start a failed deployment whose host was lost again on `to`. Its old worker cannot
        be reached, so there is nothing to keep serving meanwhile: start, wait until it runs
        with metrics, then try to stop the old worker (noted as not stopped yet when its host
        still does not answer). A failed start leaves the deployment failed where it was, so
        the old worker is adopted again if its host comes back."""
        d = self.get(deployment_id)
        if d.status is not Status.FAILED or d.where is None:
            raise OrchestratorError(
                f"deployment {d.id} is {d.status.value}: only a failed deployment is relocated"
            )
        if to == d.where:
            raise OrchestratorError(f"deployment {d.id} already is on {to}")
        self.check_where(to)
        old, old_worker, worker = d.where, d.worker, next_worker(d)
        d = self._change(
            d.id,
            lambda x: transition(
                x,
                Status.STARTING,
                self.clock(),
                f"starting on {to}: {reason}",
                where=to,
                worker=worker,
            ),
            expect=d,
        )
        self._record(
            who, "relocate", d, **{"from": str(old), "to": str(to)}, reason=reason, worker=worker
        )
        after = await self._busy_with(d.id, self._launch(d, to, who))
        if after.status is not Status.RUNNING:
            return self._change(d.id, lambda x: replace(x, where=old, worker=old_worker))
        if old_worker is None:
            return after
        return await self._stop_old(after, old.host, old_worker, who)

    async def _abort_move(self, a: AbortMove, who: str) -> Deployment:
        d = a.deployment
        if a.new is not None:
            with contextlib.suppress(EdgetopError):  # not started, or already gone
                await self._stop_worker(a.new.host, a.new_worker)
        # Back to what it was before the move (the SLO watch corrects it if need be).
        before = d.history[-2][1] if len(d.history) >= 2 else Status.RUNNING.value
        status = Status.DEGRADED if before == Status.DEGRADED.value else Status.RUNNING
        reason = f"move to {a.new} failed: {a.reason}; still on {d.where}"
        aborted = self._change(
            d.id,
            lambda x: transition(x, status, self.clock(), reason, moving_to=None),
            expect=d,
        )
        self._record(who, "move-failed", aborted, to=str(a.new), reason=a.reason)
        return aborted

    # -- reconciling ---------------------------------------------------------------------------

    def place_simulated(self, deployments: Iterable[Deployment] | None = None) -> int:
        """Place the state's active deployments on this process's simulated hosts (see the
        module docstring); returns how many were placed. Records nothing: nothing changed."""
        placed = 0
        for d in self.store.load() if deployments is None else deployments:
            if not d.status.active or d.where is None:
                continue
            device = self.monitor.sim_device(d.where.host)
            worker = d.worker or worker_id(d.id)
            if device is not None and worker not in {x.id for x in device.deployments}:
                device.place(SimDeployment(worker, d.model, d.batch, d.scenario, d.qps, d.slo_ms))
                placed += 1
        return placed

    async def reconcile_once(self, who: str = "auto") -> tuple[Action, ...]:
        """One round: plan against the monitor's snapshot, apply. Actions touching one host
        run in order; hosts run concurrently and one host's failure never stops another's."""
        now = self.clock()
        plan = reconcile(
            self.store.load(),
            self.monitor.snapshot,
            self.memory,
            now,
            busy=frozenset(self._busy),
            settings=self.settings.reconcile,
        )
        self.memory = plan.memory
        groups: dict[str, list[Action]] = {}
        for a in plan.actions:
            groups.setdefault(_host_of(a), []).append(a)
        await asyncio.gather(*(self._apply_all(g, who) for g in groups.values()))
        return plan.actions

    async def _apply_all(self, actions: list[Action], who: str) -> None:
        for a in actions:
            try:
                await self._apply(a, who)
            except _Stale:
                continue  # changed under us (another process): the next round sees it
            except (EdgetopError, OSError) as exc:
                target = a.deployment if isinstance(a, Stop) else a.deployment.id
                self.store.record(
                    Decision(
                        who,
                        "error",
                        target or "",
                        {"action": type(a).__name__, "reason": str(exc)},
                        self.clock(),
                    )
                )

    async def _apply(self, a: Action, who: str) -> None:
        if isinstance(a, Start):
            await self._apply_start(a, who)
        elif isinstance(a, Stop):
            await self._stop_worker(a.host, a.worker)
            self.store.record(
                Decision(
                    who,
                    "stop-leftover",
                    a.deployment or "",
                    {"worker": f"{a.host}/{a.worker}", "reason": a.reason},
                    self.clock(),
                )
            )
        elif isinstance(a, Adopt):
            self._apply_adopt(a, who)
        elif isinstance(a, MarkRunning | MarkDegraded | MarkFailed):
            status, action = _MARKS[type(a)]
            d = self._change(
                a.deployment.id,
                lambda x: transition(x, status, self.clock(), a.reason),
                expect=a.deployment,
            )
            self._record(who, action, d, reason=a.reason)
        elif isinstance(a, FinishMove):
            await self._busy_with(a.deployment.id, self._finish_move(a, who))
        elif isinstance(a, AbortMove):
            await self._busy_with(a.deployment.id, self._abort_move(a, who))

    async def _apply_start(self, a: Start, who: str) -> None:
        d = a.deployment
        self._busy.add(d.id)
        try:
            try:
                await self._start_worker(d, a.where, a.worker)
            except EdgetopError as exc:
                why = str(exc)
                self._change(
                    d.id, lambda x: transition(x, Status.FAILED, self.clock(), why), expect=d
                )
                self._record(who, "fail", d, reason=why)
                return
        finally:
            self._busy.discard(d.id)
        why = "placed again on its simulated host" if self._sim(a.where.host) else "restarted"
        self._record(who, "start", d, where=str(a.where), worker=a.worker, reason=why)

    def _apply_adopt(self, a: Adopt, who: str) -> None:
        def adopt(x: Deployment) -> Deployment:
            at = self.clock()
            if x.status is Status.FAILED:  # the lifecycle goes back through starting
                x = transition(x, Status.STARTING, at, "found running again")
            return transition(x, Status.RUNNING, at, "running", worker=a.worker)

        d = self._change(a.deployment.id, adopt, expect=a.deployment)
        self._record(
            who, "adopt", d, where=str(d.where), worker=a.worker, **_reading_detail(a.reading)
        )

    def _sim(self, host: str) -> bool:
        return self.monitor.sim_device(host) is not None


_MARKS: Mapping[type, tuple[Status, str]] = {
    MarkRunning: (Status.RUNNING, "recovered"),
    MarkDegraded: (Status.DEGRADED, "degraded"),
    MarkFailed: (Status.FAILED, "fail"),
}


def _host_of(a: Action) -> str:
    """The host an action does I/O on ("" for state-only actions)."""
    if isinstance(a, Start):
        return a.where.host
    if isinstance(a, Stop):
        return a.host
    if isinstance(a, FinishMove) and a.deployment.where is not None:
        return a.deployment.where.host
    if isinstance(a, AbortMove) and a.new is not None:
        return a.new.host
    return ""
