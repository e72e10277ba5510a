"""The repository's own hosts.toml runs on a fresh machine: no SSH, no GPU."""

import json
from pathlib import Path

import pytest

from edgetop.tui.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_default_fleet_snapshot_answers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "--json", "--hosts", str(REPO / "hosts.toml")]) == 0
    hosts = json.loads(capsys.readouterr().out)["hosts"]
    assert all(h["status"] == "online" for h in hosts)
    local = next(h for h in hosts if h["transport"] == "local")
    assert local["hostname"]
