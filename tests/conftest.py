import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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
