"""The real agent as a subprocess, started exactly the way the controller starts it.

`python -u -c <bootstrap> --interval X`, the agent's source written on stdin and stdin kept open.
Timeouts are generous (slow CI); nothing here asserts on wall-clock speed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from pythons import PYENV_ROOT, find_python

from edgetop.remote import agent, protocol
from edgetop.remote.transport import agent_argv

SOURCE = agent.agent_source()
TIMEOUT = 30.0
BOOT = (
    f"import sys;exec(compile(sys.stdin.buffer.read({len(SOURCE)}),'edgetop-agent','exec'),"
    "{'__name__':'__edgetop_agent__'})"
)
COLLECTORS = {"nvml", "nvidia-smi", "jtop", "tegrastats", "psutil", "procfs"}


class Agent:
    """A running agent with a reader thread, so a silent agent fails a test instead of hanging."""

    def __init__(self, *args: str, reader: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-c", BOOT, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(SOURCE)
        self.proc.stdin.flush()
        self.lines: queue.Queue[bytes] = queue.Queue()
        if reader:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def line(self) -> dict[str, Any]:
        try:
            raw = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no line from the agent in {TIMEOUT:.0f} s; stderr: {self.stderr()}")
        assert raw, f"the agent exited early; stderr: {self.stderr()}"
        assert raw.endswith(b"\n")
        return json.loads(raw)

    def remaining(self) -> list[bytes]:
        out = []
        while True:
            raw = self.lines.get(timeout=TIMEOUT)
            if not raw:
                return out
            out.append(raw)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace")

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("the agent did not exit")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def agents() -> Any:
    started: list[Agent] = []

    def start(*args: str, reader: bool = True) -> Agent:
        a = Agent(*args, reader=reader)
        started.append(a)
        return a

    yield start
    for a in started:
        a.kill()


def check_hello(hello: dict[str, Any], interval: float) -> None:
    assert hello["v"] == 1
    assert hello["type"] == "hello"
    assert hello["agent"] == agent.AGENT_VERSION
    assert isinstance(hello["hostname"], str) and hello["hostname"]
    assert hello["python"] == ".".join(str(n) for n in sys.version_info[:3])
    assert hello["interval"] == interval
    assert hello["cpu_count"] == os.cpu_count()
    assert hello["mem_total"] > 0
    assert set(hello["cgroup"]) == {"cpu_quota", "mem_limit"}
    assert hello["devices"][0]["id"] == "cpu" and hello["devices"][0]["kind"] == "cpu"
    assert set(hello["collectors"]) == COLLECTORS
    assert all(isinstance(v, str) for v in hello["collectors"].values())
    assert "ok" in (hello["collectors"]["psutil"], hello["collectors"]["procfs"])


def check_sample(sample: dict[str, Any]) -> None:
    assert sample["v"] == 1
    assert sample["type"] == "sample"
    assert isinstance(sample["t"], float)
    assert isinstance(sample["errors"], dict)
    cpu = sample["devices"][0]
    assert (cpu["id"], cpu["kind"]) == ("cpu", "cpu")
    assert cpu["mem_total"] > 0
    assert 0 <= cpu["mem_used"] <= cpu["mem_total"]
    assert cpu["util"] is None or 0 <= cpu["util"] <= 100
    assert len(cpu["load"]) == 3
    assert cpu["procs"] > 0


def test_streams_hello_then_samples_and_exits_when_stdin_closes(agents: Any) -> None:
    a = agents("--interval", "0.2")
    hello = a.line()
    check_hello(hello, 0.2)
    seqs = []
    for _ in range(4):
        sample = a.line()
        check_sample(sample)
        seqs.append(sample["seq"])
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert seqs[1:] == [s + 1 for s in seqs[:-1]]
    a.close_stdin()
    assert a.wait() == 0
    assert "Traceback" not in a.stderr()


def test_once_prints_exactly_two_lines(agents: Any) -> None:
    a = agents("--interval", "0.2", "--once")  # stdin stays open, as `hosts check` keeps it
    lines = [a.line(), a.line()]
    assert a.wait() == 0
    assert a.remaining() == []
    check_hello(lines[0], 0.2)
    check_sample(lines[1])
    assert lines[1]["seq"] == 1


def test_lines_satisfy_the_controller_parser(agents: Any) -> None:
    a = agents("--interval", "0.2", "--once")
    raw = [a.lines.get(timeout=TIMEOUT), a.lines.get(timeout=TIMEOUT)]
    hello = protocol.parse_line(raw[0])
    assert hello.agent == agent.AGENT_VERSION
    assert hello.devices[0].kind == "cpu"
    sample = protocol.parse_line(raw[1])
    assert sample.devices[0].mem_total and sample.devices[0].mem_total > 0


def test_exits_quietly_when_its_reader_goes_away(agents: Any) -> None:
    a = agents("--interval", "0.1", reader=False)
    watchdog = threading.Timer(TIMEOUT, a.proc.kill)  # a silent agent fails, never hangs
    watchdog.start()
    try:
        assert a.proc.stdout is not None
        assert json.loads(a.proc.stdout.readline())["type"] == "hello"
        a.proc.stdout.close()  # the SSH channel is gone; stdin is still open
        assert a.wait() == 0
    finally:
        watchdog.cancel()
    assert "Traceback" not in a.stderr()


def test_exits_on_sigterm(agents: Any) -> None:
    a = agents("--interval", "0.2")
    a.line()
    a.proc.send_signal(signal.SIGTERM)
    assert a.wait() == 0


def test_rejects_a_bad_interval(agents: Any) -> None:
    a = agents("--interval", "0")
    assert a.wait() == 2
    assert "--interval" in a.stderr()


def test_runs_as_a_plain_script_too(tmp_path: Path) -> None:
    path = Path(agent.__file__)
    out = subprocess.run(
        [sys.executable, str(path), "--once", "--interval", "0.1"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    lines = out.stdout.splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["hello", "sample"]


def test_importing_starts_nothing() -> None:
    code = (
        "import threading, edgetop.remote.agent as a;"
        "assert threading.active_count() == 1, threading.enumerate();"
        "print(a.AGENT_VERSION)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=TIMEOUT, check=True
    )
    assert out.stdout == b"1.0.0\n"


def test_stays_small(agents: Any) -> None:
    """RSS budget on the host: under 30 MB after a few samples (no heavy imports)."""
    a = agents("--interval", "0.1")
    for _ in range(5):
        a.line()
    status = Path(f"/proc/{a.proc.pid}/status")
    if not status.exists():
        pytest.skip("no /proc")
    rss_kb = next(
        int(line.split()[1])
        for line in status.read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    assert rss_kb < 30 * 1024
    a.close_stdin()
    assert a.wait() == 0


# Host Pythons the agent must run on: JetPack 4 (L4T R32) Jetsons ship 3.6.9.
HOST_PYTHONS = [f"3.{minor}" for minor in range(6, 14)]


@pytest.mark.parametrize("minor", HOST_PYTHONS)
def test_runs_on_every_host_python(minor: str) -> None:
    """The real bootstrap (transport.agent_argv) on each Python from 3.6 up, warnings as errors
    (a SyntaxWarning or DeprecationWarning there is tomorrow's failure on some host)."""
    found = find_python(minor)
    if found is None:
        pytest.skip(f"no Python {minor} found ({PYENV_ROOT}/versions, python{minor} on PATH)")
    exe, version = found
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONWARNINGS"] = "error"
    proc = subprocess.Popen(
        agent_argv(exe, 0.2, len(SOURCE), once=True),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    watchdog = threading.Timer(TIMEOUT, proc.kill)  # a silent agent fails, never hangs
    watchdog.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(SOURCE)
        proc.stdin.flush()  # stdin stays open, as `hosts check` keeps it: --once exits anyway
        out = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait()
        proc.stdin.close()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert err == b""
    lines = out.splitlines(keepends=True)
    assert len(lines) == 2, out
    hello = protocol.parse_line(lines[0])
    assert isinstance(hello, protocol.Hello)
    assert hello.python == version
    assert hello.agent == agent.AGENT_VERSION
    assert hello.devices[0].kind == "cpu"
    sample = protocol.parse_line(lines[1])
    assert isinstance(sample, protocol.Sample)
    assert sample.seq == 1
    assert sample.devices[0].mem_total and sample.devices[0].mem_total > 0
