"""The performance model as the physics of simulated hosts (remote.sim.SimPhysics).

remote/ cannot import core/, so the sim transport takes this object by injection: the
monitor builds one per simulated host.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from edgetop.core.perfmodel import DeviceCondition, Placement, evaluate
from edgetop.core.profiles import DeviceProfile
from edgetop.models.catalog import load_catalog
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.sim import SimDeployment, SimDeploymentLoad, SimLoad

_GIB = float(1 << 30)


@functools.lru_cache(maxsize=1)
def _catalog() -> Mapping[str, WorkloadFeatures]:
    return load_catalog()


class PerfModelPhysics:
    """A simulated device whose deployments load it as the performance model says."""

    def __init__(
        self, profile: DeviceProfile, workloads: Mapping[str, WorkloadFeatures] | None = None
    ) -> None:
        self.profile = profile
        self.workloads = _catalog() if workloads is None else workloads

    def load(
        self, deployments: Sequence[SimDeployment], power_mode: str | None, temp_c: float | None
    ) -> SimLoad:
        condition = DeviceCondition(power_mode=power_mode, temp_c=temp_c)
        failed: dict[int, str] = {}
        running: list[tuple[int, Placement]] = []
        for i, d in enumerate(deployments):
            workload = self.workloads.get(d.model)
            if workload is None:
                failed[i] = f"model {d.model!r} is not in the catalog"
                continue
            placement = Placement(workload, d.batch, d.scenario, d.qps)
            # Placed in order: one that does not fit beside those before it fails, as a
            # real worker's memory check would refuse it, and the others keep running.
            trial = evaluate(self.profile, [p for _, p in running] + [placement], condition)
            if not trial.fits:
                need = trial.performances[-1].memory_bytes / _GIB
                free = (trial.mem_total_bytes - trial.mem_used_bytes) / _GIB + need
                failed[i] = f"needs {need:.1f} GiB, {max(free, 0.0):.1f} GiB free"
                continue
            running.append((i, placement))
        outcome = evaluate(self.profile, [p for _, p in running], condition)
        loads: dict[int, SimDeploymentLoad] = {
            i: SimDeploymentLoad(
                p50_ms=perf.p50_ms,
                p90_ms=perf.p90_ms,
                p99_ms=perf.p99_ms,
                throughput=perf.throughput,
                busy=perf.util,
            )
            for (i, _), perf in zip(running, outcome.performances, strict=True)
        }
        loads.update({i: SimDeploymentLoad(failed=why) for i, why in failed.items()})
        return SimLoad(
            util=min(outcome.util, 1.0),
            mem_used_bytes=sum(p.memory_bytes for p in outcome.performances),
            power_w=outcome.power_w,
            temp_c=outcome.temp_c,
            throttled=outcome.throttled,
            deployments=tuple(loads[i] for i in range(len(deployments))),
        )
