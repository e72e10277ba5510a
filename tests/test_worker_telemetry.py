"""A worker deployed on a testbed host shows up, with its statistics, in the fleet snapshot."""

import secrets
import shutil
import sys
from pathlib import Path

from testbed import TestbedFactory

from edgetop.core.config import parse_config
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.monitor import FleetMonitor, ssh_target
from edgetop.remote.deploy import Layout, SSHHost, deploy, stop
from edgetop.remote.ssh import connect

TINY = [Path(__file__).with_name("tiny_models.py")]
GIB = 1 << 30


def measured(snapshot: FleetSnapshot, host: str, deployment: str) -> bool:
    return any(
        d.id == deployment and d.state == "running" and d.p50_ms is not None
        for d in snapshot.host(host).deployments
    )


async def test_agent_forwards_a_running_worker_and_its_end(openssh_testbed: TestbedFactory) -> None:
    (host,) = openssh_testbed([(1.0, GIB)])
    config = parse_config(openssh_testbed.testbed(host).hosts_toml(sys.executable), "tb.toml")
    deployment = f"telemetry-{secrets.token_hex(4)}"
    layout = Layout()  # where the agent looks by default
    conn = await connect(ssh_target(config, config.host(host.name), False))
    shell = SSHHost(conn, label=host.name)
    try:
        async with FleetMonitor(config) as monitor:
            await deploy(shell, {"id": deployment, "model": "tiny_models:tiny", "batch": 4,
                                 "slo_ms": 1000.0}, python=sys.executable, layout=layout,
                         user_modules=TINY)  # fmt: skip

            assert await monitor.wait_for(lambda s: measured(s, host.name, deployment), 60)
            running = next(
                d for d in monitor.snapshot.host(host.name).deployments if d.id == deployment
            )
            assert running.model == "tiny_models:tiny" and running.batch == 4
            assert running.p50_ms is not None and running.p50_ms <= (running.p99_ms or 0)
            assert running.slo_compliance == 1.0 and (running.throughput or 0) > 0

            await stop(shell, deployment, python=sys.executable, layout=layout)
            assert await monitor.wait_for(
                lambda s: all(d.id != deployment for d in s.host(host.name).deployments), 30
            )  # stopped workers leave the report
    finally:
        await shell.close()
        conn.close()
        shutil.rmtree(Path.home() / ".local/state/edgetop/deployments" / deployment, True)
