"""Other Python interpreters on this machine, standing in for the hosts' own Pythons."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

PYENV_ROOT = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
PROBE_TIMEOUT = 60.0


def version_of(exe: str) -> str | None:
    """The interpreter's x.y.z, or None when it does not run."""
    try:
        out = subprocess.run(
            [exe, "-c", "import sys;print('.'.join(str(n) for n in sys.version_info[:3]))"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode().strip() if out.returncode == 0 else None


def find_python(minor: str) -> tuple[str, str] | None:
    """(interpreter, its x.y.z) for a Python `minor` ('3.6'): a pyenv install, else PATH's
    python3.6 (a pyenv shim for a version not selected fails the probe and is passed over)."""
    candidates = sorted(
        glob.glob(os.path.join(PYENV_ROOT, "versions", minor + ".*", "bin", "python"))
    )
    candidates.append(shutil.which("python" + minor) or "")
    for exe in filter(None, candidates):
        version = version_of(exe)
        if version and version.rsplit(".", 1)[0] == minor:
            return exe, version
    return None
