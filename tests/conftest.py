import sys
from pathlib import Path

# Test helpers (doubles, line builders, the OpenSSH testbed) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
