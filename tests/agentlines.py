"""Builders of protocol lines for tests."""

from __future__ import annotations

import json
from typing import Any

from edgetop.remote.protocol import Hello


def hello(**overrides: Any) -> bytes:
    obj: dict[str, Any] = {
        "v": 1,
        "type": "hello",
        "agent": "1.0.0",
        "hostname": "h",
        "python": "3.11.7",
        "cgroup": {"cpu_quota": 1.5, "mem_limit": 1 << 29},
        "devices": [{"id": "cpu", "kind": "cpu", "name": "cpu"}],
        "collectors": {"procfs": "ok", "nvml": "unavailable: not importable"},
        "interval": 1.0,
    }
    obj.update(overrides)
    return json.dumps(obj).encode() + b"\n"


def sample(seq: int, util: float = 10.0, **overrides: Any) -> bytes:
    obj: dict[str, Any] = {
        "v": 1,
        "type": "sample",
        "seq": seq,
        "t": 1000.0 + seq,
        "devices": [
            {"id": "cpu", "kind": "cpu", "util": util, "mem_used": 1 << 20, "mem_total": 1 << 30}
        ],
        "errors": {},
    }
    obj.update(overrides)
    return json.dumps(obj).encode() + b"\n"


def hello_view(**kw: object) -> Hello:
    """A parsed Hello with plain defaults (an 8-core, 32 GiB box), fields overridden by `kw`."""
    fields: dict[str, object] = dict(
        agent="1", hostname="h", os="Linux", kernel=None, arch=None, python=None,
        cpu_count=8, mem_total=32 << 30, nvidia_driver=None, cuda=None, l4t=None,
        jetpack=None, power_mode=None, cpu_quota=None, mem_limit=None, devices=(),
        collectors={}, interval=1.0,
    )  # fmt: skip
    fields.update(kw)
    return Hello(**fields)  # type: ignore[arg-type]
