"""The interface end to end in a real terminal: edgetop runs inside tmux against the OpenSSH
loopback testbed, the test types the keys an operator would and reads the screen back with
capture-pane; the deployment it makes is a real worker process on a testbed host."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import testbed as testbed_module
from tmux import TmuxSession, tmux_unavailable_reason

from edgetop.core.lifecycle import Status
from edgetop.core.statestore import StateStore

openssh_testbed = testbed_module.openssh_testbed

MIB = 1 << 20
SPECS = [(1.0, 1024 * MIB)]  # AMP4EC's "high" profile: MobileNetV2 starts in seconds there
START_S = 60.0  # the first screen: Python, Textual and the first SSH round
COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # an SGR escape, as `capture-pane -e` writes them
WORKER_S = 180.0  # torch imported and the model built on one cgroup-limited CPU

pytestmark = pytest.mark.skipif(tmux_unavailable_reason() is not None, reason="tmux missing")


def _cmdlines(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # it exited meanwhile
    return out


def _line_with(screen: str, text: str) -> str:
    """The styled line that shows `text` (escapes may split it: match on its plain form)."""
    return next((line for line in screen.splitlines() if text in COLOUR.sub("", line)), "")


def _running(store: StateStore) -> list[str]:
    return [d.id for d in store.load() if d.status is Status.RUNNING]


def test_keys_in_a_real_terminal_start_a_worker_on_a_testbed_host(
    openssh_testbed: testbed_module.TestbedFactory, tmp_path: Path
) -> None:
    (host,) = openssh_testbed(SPECS)
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(openssh_testbed.testbed(host).hosts_toml(sys.executable))
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "edgetop", "--hosts", str(hosts), "--state-dir", str(state)]
    with TmuxSession.start(
        argv, workdir=tmp_path, size=(120, 40), env={"TERM": "xterm-256color"}
    ) as tty:
        tty.wait_for(lambda s: host.name in s and "online" in s, START_S, "the host online")

        tty.keys("n")
        tty.wait_for("New deployment", 30)
        tty.wait_settled(30)  # the dialog focuses its first field once mounted
        tty.keys("Enter")  # the model list opens; typing searches it
        tty.wait_for("bert-base", 30, "the model list")
        tty.keys("mobilenet", literal=True)
        tty.keys("Enter")
        tty.wait_for(lambda s: "mobilenetv2" in s and "bert-base" not in s, 30, "mobilenetv2")
        tty.wait_settled(30)
        tty.keys("Tab", "Tab", "Enter")  # batch keeps its 1; scenario: `server` needs a rate
        tty.wait_for("singlestream", 30, "the scenario list")
        tty.keys("single", literal=True)
        tty.keys("Enter")
        tty.wait_for(lambda s: "offline" not in s, 30, "the scenario list closed")
        tty.wait_settled(30)  # focus is back on the scenario field before Tab leaves it
        blurred = _line_with(tty.styled_screen(), "SLO p99 ms")
        tty.keys("Tab")
        # Typing before the field has focus would go to the scenario list's search.
        tty.wait_for(
            lambda _: _line_with(tty.styled_screen(), "SLO p99 ms") != blurred, 30, "SLO focus"
        )
        tty.keys("5000", literal=True)  # SLO p99 ms: loose, a CPU host must qualify
        tty.wait_for("5000", 30, "the SLO typed")
        tty.keys("Enter")
        tty.wait_for("a/Enter accept", 60, "the recommendation with the accept key")
        screen = tty.screen()
        assert f"1. {host.name}/cpu" in screen, screen

        tty.keys("a")
        store = StateStore(state)
        deadline = time.monotonic() + WORKER_S
        while not _running(store) and time.monotonic() < deadline:
            time.sleep(0.5)
        (deployment,) = store.load()
        assert deployment.status is Status.RUNNING, deployment
        assert deployment.where is not None and deployment.where.host == host.name
        workers = [c for c in _cmdlines(openssh_testbed.pids(host)) if "edgetop.remote.worker" in c]
        assert len(workers) == 1, workers  # a real process, inside the host's cgroup
        assert deployment.worker in workers[0]
        tty.wait_for(lambda s: deployment.id in s and "running" in s, 60, "the running row")

        accept = [e for e in store.decisions() if e["action"] == "accept"]
        assert accept and accept[0]["who"] == "operator"

        tty.keys("q")
        deadline = time.monotonic() + 30
        while not tty.dead() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert tty.dead(), tty.screen()
    # Quitting the interface leaves the worker running on its host.
    assert any("edgetop.remote.worker" in c for c in _cmdlines(openssh_testbed.pids(host)))
