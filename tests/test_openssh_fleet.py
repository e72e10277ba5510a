"""edgetop against real OpenSSH sshd processes, each in its own cgroup and loopback address."""

import sys
from dataclasses import replace

from testbed import TestbedFactory

from edgetop.core.config import parse_config
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.monitor import FleetMonitor
from edgetop.remote.link import Backoff, HostStatus

MIB = 1 << 20
SPECS = [(0.5, 256 * MIB), (1.0, 384 * MIB), (1.5, 512 * MIB)]
FAST = Backoff(base_s=0.2, cap_s=1.0)


def samples(snapshot: FleetSnapshot) -> dict[str, int]:
    return {h.name: h.samples for h in snapshot.hosts}


async def test_fleet_sees_quotas_survives_a_dead_host_and_recovers(
    openssh_testbed: TestbedFactory,
) -> None:
    hosts = openssh_testbed(SPECS)
    config = parse_config(openssh_testbed.testbed(hosts[0]).hosts_toml(sys.executable), "tb.toml")
    async with FleetMonitor(config, backoff=FAST) as monitor:
        assert await monitor.wait_for(lambda s: all(h.samples >= 2 for h in s.hosts), 60)
        for tb in hosts:
            view = monitor.snapshot.host(tb.name)
            assert view.status is HostStatus.ONLINE
            assert view.cpu_quota == tb.cpu_quota  # what the cgroup really allows
            assert view.mem_limit == tb.mem_limit
            cpu = next(d for d in view.devices if d.kind == "cpu")
            assert cpu.mem_total == tb.mem_limit  # the container's view, not the machine's
            # Utilisation against the host's quota: an idle host reads idle however busy the
            # machine around it is (sshd and the agent use a few percent of it).
            assert cpu.util is not None and cpu.util < 50, cpu.util

        victim, *others = hosts
        openssh_testbed.kill(victim)
        assert await monitor.wait_for(
            lambda s: s.host(victim.name).status is HostStatus.OFFLINE, 30
        )
        down = monitor.snapshot.host(victim.name)
        assert down.reason and "lost" in down.reason
        assert down.devices  # last-good values are kept for the operator

        # The others keep streaming while the victim is down (and refusing connections).
        before = samples(monitor.snapshot)
        assert await monitor.wait_for(
            lambda s: all(s.host(o.name).samples >= before[o.name] + 3 for o in others), 30
        )
        # Reconnect attempts meanwhile fail, and say why.
        assert await monitor.wait_for(
            lambda s: "connection refused" in (s.host(victim.name).reason or ""), 30
        )
        assert monitor.snapshot.host(victim.name).status is not HostStatus.ONLINE

        openssh_testbed.restart(victim)
        again = monitor.snapshot.host(victim.name).samples
        assert await monitor.wait_for(lambda s: s.host(victim.name).samples > again + 1, 60)
        assert monitor.snapshot.host(victim.name).status is HostStatus.ONLINE
        assert all(monitor.snapshot.host(o.name).status is HostStatus.ONLINE for o in others)


async def test_host_behind_a_bastion_is_reached_through_it(openssh_testbed: TestbedFactory) -> None:
    bastion, inner = openssh_testbed([(0.5, 256 * MIB), (1.0, 256 * MIB)])
    config = parse_config(openssh_testbed.testbed(bastion).hosts_toml(sys.executable), "tb.toml")
    config = replace(
        config,
        hosts=tuple(
            replace(h, jump=bastion.name) if h.name == inner.name else h for h in config.hosts
        ),
    )
    async with FleetMonitor(config, backoff=FAST) as monitor:
        assert await monitor.wait_for(lambda s: all(h.samples >= 2 for h in s.hosts), 60)
        assert monitor.snapshot.host(inner.name).cpu_quota == inner.cpu_quota
        # The inner host's only path is the bastion: lose it and the inner host goes too.
        openssh_testbed.kill(bastion)
        assert await monitor.wait_for(lambda s: s.host(inner.name).status is HostStatus.OFFLINE, 30)
