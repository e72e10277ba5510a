"""Reaching a configured host to run the deployer: its shell, its Python, a user's model file.

Shared by the profiler and the orchestrator, so both open hosts the same way.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from edgetop.core.config import FleetConfig, HostConfig
from edgetop.core.monitor import ssh_target
from edgetop.remote.deploy import LocalHost, SSHHost
from edgetop.remote.ssh import connect


async def open_host_shell(
    config: FleetConfig, host: HostConfig, accept_new: bool
) -> tuple[Any, Any]:
    """The host's shell for the deployer, and the SSH connection to close after (if any)."""
    if host.transport == "local":
        return LocalHost(host.name), None
    conn = await connect(ssh_target(config, host, accept_new))
    return SSHHost(conn, label=host.name), conn


def host_python(host: HostConfig) -> str:
    return sys.executable if host.transport == "local" and host.python == "python3" else host.python


def user_module_files(model: str) -> list[str]:
    """A `module:function` model's source file, shipped with the worker (single files only)."""
    if ":" not in model:
        return []
    found = importlib.util.find_spec(model.split(":", 1)[0])
    origin = found.origin if found else None
    return [origin] if origin and origin.endswith(".py") and "." not in model.split(":")[0] else []
