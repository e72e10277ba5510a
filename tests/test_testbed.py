"""The OpenSSH testbed itself: real sshd, confined to real cgroups, driven over asyncssh."""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncssh
import pytest
from testbed import TestbedFactory, TestbedHost

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# Bound by assignment rather than imported: pytest finds the fixture in the module namespace,
# and ruff does not take the test parameters of the same name for a redefinition (F811).


MIB = 1 << 20
SMALL, LARGE = (0.5, 256 * MIB), (1.5, 512 * MIB)
TESTS_DIR = Path(__file__).resolve().parent

# Forks `n` busy loops for `secs` of wall time and prints the cores they got on average.
BURN = textwrap.dedent(
    """
    import os, sys, time
    n, secs = int(sys.argv[1]), float(sys.argv[2])
    start = time.monotonic()
    for _ in range(n):
        if os.fork() == 0:
            while time.monotonic() - start < secs:
                pass
            os._exit(0)
    for _ in range(n):
        os.wait()
    times = os.times()
    print((times.children_user + times.children_system) / (time.monotonic() - start))
    """
)


async def connect(host: TestbedHost) -> asyncssh.SSHClientConnection:
    return await asyncio.wait_for(
        asyncssh.connect(
            host.address,
            port=host.port,
            username=host.user,
            client_keys=[str(host.identity)],
            known_hosts=str(host.known_hosts),
            agent_path=None,
        ),
        timeout=15,
    )


async def run(host: TestbedHost, command: str) -> asyncssh.SSHCompletedProcess:
    async with await connect(host) as conn:
        return await asyncio.wait_for(conn.run(command), timeout=30)


def cgroup_paths(proc_cgroup: str) -> dict[str, str]:
    """controller -> path, from /proc/<pid>/cgroup text (v1 lines only)."""
    paths = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in filter(None, controllers.split(",")):
            paths[controller] = path
    return paths


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for whoever inherited it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.mark.openssh
async def test_hosts_sit_in_their_own_cgroups_with_their_limits(
    openssh_testbed: TestbedFactory,
) -> None:
    hosts = openssh_testbed([SMALL, LARGE])
    assert [(h.name, h.address) for h in hosts] == [("tb1", "127.0.0.11"), ("tb2", "127.0.0.12")]
    assert len({h.cgroup for h in hosts}) == 2
    for host, (cores, mem) in zip(hosts, [SMALL, LARGE], strict=True):
        assert (host.user, host.cpu_quota, host.mem_limit) == ("root", cores, mem)
        result = await run(host, "cat /proc/self/cgroup; echo $SSH_CONNECTION")
        assert result.exit_status == 0, result.stderr
        *cgroup_lines, ssh_connection = str(result.stdout).strip().splitlines()
        # The session really landed on this host's address and port.
        assert ssh_connection.split()[2:] == [host.address, str(host.port)]
        paths = cgroup_paths("\n".join(cgroup_lines))
        for controller in ("cpu", "memory"):
            assert paths[controller].endswith(f"/{host.cgroup}"), paths

        bed = openssh_testbed.testbed(host)
        cpu, memory = bed.cgroup_dir(host.name, "cpu"), bed.cgroup_dir(host.name, "memory")
        assert cpu.as_posix().endswith(paths["cpu"])
        assert memory.as_posix().endswith(paths["memory"])
        period = int((cpu / "cpu.cfs_period_us").read_text())
        quota = int((cpu / "cpu.cfs_quota_us").read_text())
        assert (period, quota) == (100_000, int(cores * 100_000))
        assert int((memory / "memory.limit_in_bytes").read_text()) == mem


@pytest.mark.openssh
async def test_cpu_quota_caps_what_a_host_can_burn(
    openssh_testbed: TestbedFactory,
) -> None:
    hosts = openssh_testbed([SMALL, LARGE])
    burn = f"{shlex.quote(sys.executable)} -c {shlex.quote(BURN)} 2 1.0"
    used = await asyncio.gather(*(run(host, burn) for host in hosts))
    for host, result in zip(hosts, used, strict=True):
        assert result.exit_status == 0, result.stderr
        cores = float(str(result.stdout))
        # CFS bandwidth control is a hard ceiling (give or take a slice of slack).
        assert cores <= host.cpu_quota * 1.15 + 0.05, (host.name, cores)
    small = openssh_testbed.testbed(hosts[0]).cgroup_dir("tb1", "cpu")
    stat = dict(line.split() for line in (small / "cpu.stat").read_text().splitlines())
    assert int(stat["nr_throttled"]) > 0, stat


@pytest.mark.openssh
async def test_memory_limit_kills_what_does_not_fit(
    openssh_testbed: TestbedFactory,
) -> None:
    small, large = openssh_testbed([SMALL, LARGE])
    # 384 MiB of written (so resident) bytes: over tb1's 256 MiB, within tb2's 512 MiB.
    hog = f"{shlex.quote(sys.executable)} -c \"b = b'x' * (384 << 20); print('fits')\""
    on_small, on_large = await run(small, hog), await run(large, hog)
    assert on_large.exit_status == 0 and str(on_large.stdout).strip() == "fits", on_large.stderr
    # The OOM killer's SIGKILL: seen as a signal, or as 137 when a shell reports it.
    assert on_small.exit_signal is not None or on_small.exit_status == 137, on_small
    assert "fits" not in str(on_small.stdout)
    memory = openssh_testbed.testbed(small).cgroup_dir(small.name, "memory")
    oom = dict(line.split() for line in (memory / "memory.oom_control").read_text().splitlines())
    assert int(oom["oom_kill"]) > 0, oom


@pytest.mark.openssh
async def test_kill_takes_down_the_whole_host_and_restart_brings_it_back(
    openssh_testbed: TestbedFactory,
) -> None:
    victim, bystander = openssh_testbed([SMALL, LARGE])
    conn = await connect(victim)
    # A daemonised process escapes the session, but not the host's cgroup.
    started = await conn.run("setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!", check=True)
    detached = int(str(started.stdout))
    assert detached in openssh_testbed.pids(victim)

    openssh_testbed.kill(victim)
    assert openssh_testbed.pids(victim) == []
    assert not alive(detached)
    await asyncio.wait_for(conn.wait_closed(), timeout=5)  # the session's sshd died too
    with pytest.raises(OSError):
        await connect(victim)
    assert str((await run(bystander, "echo up")).stdout).strip() == "up"

    openssh_testbed.restart(victim)
    # Same address, port and host key: the known_hosts entry still verifies it.
    assert str((await run(victim, "echo back")).stdout).strip() == "back"
    assert openssh_testbed.pids(victim)


@pytest.mark.openssh
async def test_close_leaves_no_process_or_cgroup_behind(
    openssh_testbed: TestbedFactory,
) -> None:
    hosts = openssh_testbed([SMALL, LARGE])
    bed = openssh_testbed.testbed(hosts[0])
    async with await connect(hosts[0]) as conn:
        await conn.run("setsid sleep 600 </dev/null >/dev/null 2>&1 &", check=True)
        pids = [pid for host in hosts for pid in bed.pids(host.name)]
        dirs = [bed.cgroup_dir(h.name, c) for h in hosts for c in ("cpu", "memory")]
        bed.close()
    assert not [pid for pid in pids if alive(pid)]
    assert not processes_mentioning(str(bed.workdir))
    assert not [d for d in [*dirs, *(d.parent for d in dirs)] if d.exists()]
    for host in hosts:
        with pytest.raises(OSError), socket.create_connection((host.address, host.port), 2):
            pass
    bed.close()  # idempotent; the fixture closes it once more at teardown


@pytest.mark.openssh
async def test_hosts_toml_describes_every_host(
    openssh_testbed: TestbedFactory,
) -> None:
    hosts = openssh_testbed([SMALL, LARGE])
    parsed = tomllib.loads(openssh_testbed.testbed(hosts[0]).hosts_toml(sys.executable))
    assert parsed["host"] == [
        {
            "name": h.name,
            "address": h.address,
            "port": h.port,
            "user": "root",
            "identity": str(h.identity),
            "known_hosts": str(h.known_hosts),
            "transport": "ssh",
            "kind": "cpu",
            "python": sys.executable,
            "interval": 0.5,
        }
        for h in hosts
    ]


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), ("", "1 skipped")])
def test_fixture_skips_where_unavailable_but_fails_under_ci(
    tmp_path: Path, ci: str, outcome: str
) -> None:
    (tmp_path / "test_unavailable.py").write_text(
        textwrap.dedent(
            """
            import testbed
            from testbed import openssh_testbed  # noqa: F401

            testbed.testbed_unavailable_reason = lambda: "no sshd on this planet"

            def test_needs_testbed(openssh_testbed):
                pass
            """
        )
    )
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(TESTS_DIR)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", tmp_path],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "no sshd on this planet" in result.stdout
