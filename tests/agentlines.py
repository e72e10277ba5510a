"""Builders of protocol lines for tests."""

from __future__ import annotations

import json
from typing import Any


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
