import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from edgetop.core.config import FleetConfig
from edgetop.core.monitor import FleetMonitor
from edgetop.core.statestore import StateStore

# Test helpers (doubles, line builders, the SSH servers) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

# Fixtures shared by every test module.
from sshserver import loopback_ssh  # noqa: F401
from testbed import openssh_testbed  # noqa: F401


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    """An empty state directory of the test's own."""
    return StateStore(tmp_path / "state")


@pytest.fixture
async def monitor(config: FleetConfig) -> AsyncIterator[FleetMonitor]:
    """The monitor of the module's `config` fixture, once every host has answered."""
    async with FleetMonitor(config) as m:
        assert await m.wait_for(lambda s: s.all_answered, 30)
        yield m
