"""`edgetop --auto` end to end on the OpenSSH loopback testbed: three real deployments, one
host killed, its deployments moved by the auto-pilot, edgetop SIGKILLed and restarted.

The testbed hosts are this machine as root; each gets its own $HOME (sshd `SetEnv`), so
each host's agent sees only the workers started on that host, as on separate machines.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import testbed
from testbed import TestbedFactory, TestbedHost

from edgetop.core.config import FleetConfig, parse_config
from edgetop.core.lifecycle import Deployment, Status, Where
from edgetop.core.monitor import FleetMonitor
from edgetop.core.orchestrator import NOT_STOPPED_YET, Orchestrator, OrchestratorSettings
from edgetop.core.placement import Request
from edgetop.core.statestore import StateStore
from edgetop.models.catalog import load_catalog
from edgetop.remote import worker as worker_module
from edgetop.remote.link import Backoff

openssh_testbed = testbed.openssh_testbed

TESTS = Path(__file__).parent
GIB = 1 << 30
WAIT_S = 240.0  # generous: each real worker imports torch on a shared, busy machine


def separate_homes(factory: TestbedFactory, hosts: list[TestbedHost], base: Path) -> None:
    """Give each host's sessions their own $HOME (its workers, code cache, agent scan)."""
    tb = factory.testbed(hosts[0])
    for h in hosts:
        home = base / f"home-{h.name}"
        home.mkdir()
        config = tb._host(h.name).config
        text = config.read_text()
        sftp = "Subsystem sftp internal-sftp\n"
        assert "SetEnv SHLVL=1\n" in text and sftp in text
        # sshd honours only the first SetEnv line; SFTP (how the deployer finds ~) starts
        # in the passwd home unless told otherwise with -d.
        text = text.replace("SetEnv SHLVL=1\n", f"SetEnv SHLVL=1 HOME={home}\n")
        config.write_text(text.replace(sftp, f"Subsystem sftp internal-sftp -d {home}\n"))
        factory.kill(h)
        factory.restart(h)


def alive_workers(base: Path, name: str) -> dict[str, int]:
    """The live workers on host `name`: worker id -> pid."""
    root = base / f"home-{name}" / ".local/state/edgetop/deployments"
    return {i["id"]: i["pid"] for i in worker_module.scan(root) if i["alive"]}


class Edgetop:
    """`edgetop --auto` as a subprocess; its stdout lines parsed as they come."""

    def __init__(self, hosts_file: Path, state: Path, log: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgetop",
                "--auto",
                "--hosts",
                str(hosts_file),
                "--state-dir",
                str(state),
                "--log",
                str(log),
                "--interval",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[dict[str, Any]] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, what: Callable[[dict[str, Any]], bool], timeout: float = WAIT_S) -> None:
        """Read lines (each must be JSON) until one satisfies `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"edgetop exited: {self.stderr()}")
            record = json.loads(line)
            self.lines.append(record)
            if what(record):
                return
        raise AssertionError(f"no such line within {timeout} s; last: {self.lines[-3:]}")

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def fleet_online(names: set[str]) -> Callable[[dict[str, Any]], bool]:
    def ok(r: dict[str, Any]) -> bool:
        if r["type"] != "fleet":
            return False
        online = {h["name"] for h in r["hosts"] if h["status"] == "online"}
        return names <= online

    return ok


async def place_three(config: FleetConfig, store: StateStore, where: list[Where]) -> None:
    # The orchestrator reads only the request's names and numbers; the features are a stand-in.
    tiny = Request("tiny_models:tiny", load_catalog()["resnet50"], 2, 1000.0, "singlestream")
    settings = OrchestratorSettings(health_timeout_s=WAIT_S)
    async with FleetMonitor(config, backoff=Backoff(base_s=0.2, cap_s=1.0)) as monitor:
        assert await monitor.wait_for(lambda s: s.all_answered, 60)
        orch = Orchestrator(config, monitor, store, settings=settings)
        for w in where:  # one at a time: ids in order, and the machine has two cores
            d = await orch.deploy(tiny, w, "operator")
            assert d.status is Status.RUNNING, d.reason


def test_auto_moves_a_lost_hosts_deployments_and_a_restart_finds_every_worker(
    openssh_testbed: TestbedFactory, tmp_path: Path
) -> None:
    hosts = openssh_testbed([(1.0, 2 * GIB)] * 3)
    separate_homes(openssh_testbed, hosts, tmp_path)
    victim, *others = (h.name for h in hosts)
    hosts_file = tmp_path / "hosts.toml"
    hosts_file.write_text(openssh_testbed.testbed(hosts[0]).hosts_toml(sys.executable))
    config = parse_config(hosts_file.read_text(), str(hosts_file))
    store = StateStore(tmp_path / "state")
    log = tmp_path / "auto.jsonl"
    placement = [Where(victim, "cpu"), Where(victim, "cpu"), Where(others[0], "cpu")]
    asyncio.run(place_three(config, store, placement))
    on_victim = {d.id for d in store.load() if d.where is not None and d.where.host == victim}
    assert len(on_victim) == 2

    auto = Edgetop(hosts_file, tmp_path / "state", log)
    try:
        auto.wait_for(fleet_online({victim, *others}))
        openssh_testbed.kill(victim)

        def moved(ds: tuple[Deployment, ...]) -> bool:
            return all(
                d.status is Status.RUNNING and d.where is not None and d.where.host in others
                for d in ds
            )

        def reported() -> set[str]:
            return {
                r["deployment"]
                for r in auto.lines
                if r["type"] == "decision" and r["action"] == "move-done"
            }

        # The state changes before the round's lines are written: wait for both.
        deadline = time.monotonic() + WAIT_S
        while not (on_victim <= reported() and moved(store.load())):
            assert time.monotonic() < deadline, store.load()
            auto.wait_for(lambda r: r["type"] in ("decision", "fleet"))
        ds = store.load()
        assert moved(ds), [(d.id, d.status.value, str(d.where), d.reason) for d in ds]
    finally:
        auto.kill()  # SIGKILL: no goodbye; the state and the workers must not care

    # State and real workers agree: one live worker per deployment, on the remaining hosts.
    workers = {name: alive_workers(tmp_path, name) for name in others}
    on_hosts = sorted(w for ws in workers.values() for w in ws)
    assert on_hosts == sorted(d.worker or "" for d in ds)
    for d in ds:
        assert d.where is not None and d.worker in workers[d.where.host]
        if d.id in on_victim:
            assert d.worker == f"{d.id}.2" and NOT_STOPPED_YET in (d.reason or "")

    # The audit log: who moved them and why; stdout lines were JSON (parsed above) and --log too.
    log_lines = [json.loads(x) for x in log.read_text().splitlines()]
    decisions = store.decisions()
    for did in on_victim:
        mine = [x for x in decisions if x["deployment"] == did and x["who"] == "auto"]
        trigger = next(x for x in mine if x["action"] == "trigger")
        assert trigger["trigger"] == "host-lost" and trigger["from"] == f"{victim}/cpu"
        assert {"move", "move-done"} <= {x["action"] for x in mine}
        done = next(x for x in mine if x["action"] == "move-done")
        assert done in [{k: v for k, v in r.items() if k != "type"} for r in log_lines]
    pids = {w: pid for ws in workers.values() for w, pid in ws.items()}
    seen = len(decisions)

    # Restarted: it finds every worker; nothing is started, stopped or moved again.
    again = Edgetop(hosts_file, tmp_path / "state", log)
    try:
        again.wait_for(fleet_online(set(others)))
        for _ in range(6):  # several auto-pilot rounds (one a second) over settled hosts
            again.wait_for(fleet_online(set(others)))
        again.proc.send_signal(signal.SIGTERM)
        again.wait_for(lambda r: r["type"] == "stop", 60)
        assert again.proc.wait(timeout=60) == 0
    finally:
        if again.proc.poll() is None:
            again.kill()
    after = store.load()
    assert [(d.id, d.status, d.where, d.worker) for d in after] == [
        (d.id, d.status, d.where, d.worker) for d in ds
    ]
    assert store.decisions()[seen:] == []
    assert {name: alive_workers(tmp_path, name) for name in others} == workers
    assert {w: pid for ws in workers.values() for w, pid in ws.items()} == pids
