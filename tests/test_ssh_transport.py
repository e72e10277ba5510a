"""The ssh transport against a real asyncssh server on 127.0.0.1, running the real agent."""

import asyncio
import sys
from pathlib import Path

import asyncssh
import pytest
from sshserver import LoopbackSSH

from edgetop.core.config import parse_config
from edgetop.core.monitor import FleetMonitor
from edgetop.remote.errors import AuthError, HostKeyError
from edgetop.remote.link import Backoff, HostStatus
from edgetop.remote.protocol import Hello, Sample, parse_line
from edgetop.remote.ssh import SSHTarget, SSHTransport

FAST = Backoff(base_s=0.05, cap_s=0.2)


def target(ssh: LoopbackSSH, **kw: object) -> SSHTarget:
    options = {
        "address": "127.0.0.1",
        "port": ssh.port,
        "identity": str(ssh.client_key_path),
        "known_hosts": str(ssh.known_hosts_path),
    }
    options.update(kw)
    return SSHTarget(**options)  # type: ignore[arg-type]


async def read_messages(transport: SSHTransport, count: int) -> list[object]:
    stream = await transport.start_agent(0.2)
    try:
        return [parse_line(await asyncio.wait_for(stream.readline(), 20)) for _ in range(count)]
    finally:
        await stream.close()
        await transport.close()


async def test_agent_runs_over_ssh_and_streams(loopback_ssh: LoopbackSSH) -> None:
    loopback_ssh.trust()
    hello, first, second = await read_messages(
        SSHTransport(target(loopback_ssh), sys.executable), 3
    )
    assert isinstance(hello, Hello) and hello.agent
    assert isinstance(first, Sample) and isinstance(second, Sample)
    assert second.seq == first.seq + 1
    assert any(d.kind == "cpu" for d in first.devices)


async def test_closing_the_stream_ends_the_remote_agent(loopback_ssh: LoopbackSSH) -> None:
    loopback_ssh.trust()
    await read_messages(SSHTransport(target(loopback_ssh), sys.executable), 2)
    child = loopback_ssh.children[-1]
    # stdin closed by the controller -> the agent exits by itself: no orphan on the host
    assert await asyncio.wait_for(child.wait(), 10) == 0


async def test_unknown_host_key_is_refused_by_default(loopback_ssh: LoopbackSSH) -> None:
    with pytest.raises(HostKeyError, match=r"is not in .*--accept-new-hosts"):
        await SSHTransport(target(loopback_ssh), sys.executable).start_agent(0.2)
    assert not loopback_ssh.commands  # nothing ran on an unverified host


async def test_accept_new_records_the_key_then_checks_it(loopback_ssh: LoopbackSSH) -> None:
    accepting = SSHTransport(target(loopback_ssh, accept_new_hosts=True), sys.executable)
    messages = await read_messages(accepting, 1)
    assert isinstance(messages[0], Hello)
    assert loopback_ssh.known_hosts_path.read_text() == loopback_ssh.known_hosts_line
    # Now known: a strict transport connects without the opt-in.
    assert isinstance(
        (await read_messages(SSHTransport(target(loopback_ssh), sys.executable), 1))[0], Hello
    )


async def test_changed_host_key_is_refused_even_with_accept_new(loopback_ssh: LoopbackSSH) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    loopback_ssh.known_hosts_path.write_text(f"[127.0.0.1]:{loopback_ssh.port} {impostor}")
    transport = SSHTransport(target(loopback_ssh, accept_new_hosts=True), sys.executable)
    with pytest.raises(HostKeyError, match="differs from the one in"):
        await transport.start_agent(0.2)
    assert not loopback_ssh.commands


async def test_wrong_key_is_an_auth_failure(loopback_ssh: LoopbackSSH, tmp_path: Path) -> None:
    loopback_ssh.trust()
    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    transport = SSHTransport(target(loopback_ssh, identity=str(stranger)), sys.executable)
    with pytest.raises(AuthError, match="authentication failed"):
        await transport.start_agent(0.2)


async def test_missing_interpreter_is_explained(loopback_ssh: LoopbackSSH) -> None:
    loopback_ssh.trust()
    transport = SSHTransport(target(loopback_ssh), "/nonexistent/python3")
    stream = await transport.start_agent(0.2)
    assert await asyncio.wait_for(stream.readline(), 10) == b""
    await stream.close()
    await transport.close()
    reason = stream.exit_reason()
    assert "status 127" in reason and "/nonexistent/python3" in reason


async def test_hostile_interpreter_name_never_reaches_the_shell_unquoted(
    loopback_ssh: LoopbackSSH, tmp_path: Path
) -> None:
    loopback_ssh.trust()
    marker = tmp_path / "pwned"
    transport = SSHTransport(target(loopback_ssh), f"python3; touch {marker}; $(touch {marker})")
    stream = await transport.start_agent(0.2)
    assert await asyncio.wait_for(stream.readline(), 10) == b""
    await stream.close()
    await transport.close()
    assert not marker.exists()
    assert "status 127" in stream.exit_reason()


async def test_monitor_sees_host_go_offline_and_come_back(loopback_ssh: LoopbackSSH) -> None:
    loopback_ssh.trust()
    config = parse_config(loopback_ssh.hosts_toml("ssh-1"), "test.toml")
    async with FleetMonitor(config, backoff=FAST) as monitor:
        assert await monitor.wait_for(lambda s: s.host("ssh-1").samples >= 2, 20)
        for child in loopback_ssh.children:  # the agent dies on the host
            child.kill()
        assert await monitor.wait_for(lambda s: s.host("ssh-1").status is HostStatus.OFFLINE, 20)
        assert monitor.snapshot.host("ssh-1").reason == "agent killed by signal KILL"
        before = monitor.snapshot.host("ssh-1").samples
        assert await monitor.wait_for(lambda s: s.host("ssh-1").samples > before + 1, 20)
        assert monitor.snapshot.host("ssh-1").status is HostStatus.ONLINE
