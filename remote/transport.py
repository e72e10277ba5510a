"""The transport interface: how the controller gets a running agent on a host.

Every transport (ssh, local, sim) hands back an `AgentStream` of protocol lines. Errors leave
a transport only as `edgetop.remote.errors` types, so the link above never sees asyncssh or
OSError directly.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from collections import deque

STDERR_TAIL_LINES = 5


class AgentStream(ABC):
    """A running agent: lines out, and closing it makes the agent exit."""

    @abstractmethod
    async def readline(self) -> bytes:
        """The next line, or b"" once the agent has gone (see `exit_reason`)."""

    @abstractmethod
    async def close(self) -> None:
        """Close the agent's stdin (it exits by itself) and release the channel."""

    @abstractmethod
    def exit_reason(self) -> str:
        """Why the stream ended, for the operator: exit status and the stderr tail."""


class Transport(ABC):
    """Reaches one host. `start_agent` may be called again after a failure."""

    @abstractmethod
    async def start_agent(self, interval: float) -> AgentStream: ...

    async def close(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Drop any connection held; the next `start_agent` reconnects."""


def agent_argv(python: str, interval: float, source_len: int, *, once: bool = False) -> list[str]:
    """argv that reads exactly `source_len` bytes of agent code from stdin and runs it.

    Reading a counted prefix (rather than `python3 -`, which reads stdin to EOF) keeps stdin
    open after the code, so the agent can exit when the controller closes it.
    """
    boot = (
        f"import sys;exec(compile(sys.stdin.buffer.read({source_len}),'edgetop-agent','exec'),"
        "{'__name__':'__edgetop_agent__'})"
    )
    argv = [python, "-u", "-c", boot, "--interval", repr(float(interval))]
    if once:
        argv.append("--once")
    return argv


def agent_shell_command(
    python: str, interval: float, source_len: int, *, once: bool = False
) -> str:
    """The same, as one remote shell command line: every word quoted."""
    return "exec " + shlex.join(agent_argv(python, interval, source_len, once=once))


class StderrTail:
    """Keeps the last few stderr lines of an agent, to explain why it died."""

    def __init__(self) -> None:
        self._lines: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

    def add(self, chunk: bytes) -> None:
        for line in chunk.decode("utf-8", "replace").splitlines():
            if line.strip():
                self._lines.append(line.strip()[:200])

    def __str__(self) -> str:
        return " | ".join(self._lines)


def describe_exit(status: int | None, tail: StderrTail, what: str = "agent") -> str:
    if status is None:
        base = f"{what} connection closed"
    elif status < 0:
        base = f"{what} killed by signal {-status}"
    else:
        base = f"{what} exited with status {status}"
    text = str(tail)
    return f"{base}: {text}" if text else base
