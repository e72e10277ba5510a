import sys
from pathlib import Path

# Test helpers (doubles, line builders, the SSH servers) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

# Fixtures shared by every test module.
from sshserver import loopback_ssh  # noqa: F401
from testbed import openssh_testbed  # noqa: F401
