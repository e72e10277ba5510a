import json
import subprocess
import sys
from pathlib import Path

import pytest
from fleets import SIM_PAIR

from edgetop import __version__
from edgetop.tui.cli import main

REPO = Path(__file__).resolve().parent.parent
SIM_FLEET = SIM_PAIR.format(jetson="xavier-1")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgetop {__version__}"


def test_snapshot_json_has_the_contract_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshot", "--json", "--hosts", str(write(tmp_path, SIM_FLEET))]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in data["hosts"]] == ["a100-1", "xavier-1"]
    for host in data["hosts"]:
        assert host["status"] == "online" and host["reason"] is None
        assert "cpu_quota" in host
        for device in host["devices"]:
            assert {
                "id",
                "kind",
                "name",
                "util",
                "mem_used",
                "mem_total",
                "temp_c",
                "power_w",
            } <= device.keys()
    kinds = {d["kind"] for h in data["hosts"] for d in h["devices"]}
    assert kinds == {"cpu", "gpu", "jetson"}


def test_snapshot_exits_1_when_a_host_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = (
        SIM_FLEET
        + """
[[host]]
name = "gone"
transport = "ssh"
address = "127.0.0.1"
port = 1
interval = 0.05
"""
    )
    assert (
        main(["snapshot", "--json", "--timeout", "10", "--hosts", str(write(tmp_path, fleet))]) == 1
    )
    hosts = {h["name"]: h for h in json.loads(capsys.readouterr().out)["hosts"]}
    assert hosts["gone"]["status"] == "offline"
    assert "connection refused" in hosts["gone"]["reason"]
    assert hosts["a100-1"]["status"] == "online"  # the dead host stalled no one


def test_snapshot_text_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "--hosts", str(write(tmp_path, SIM_FLEET))]) == 0
    out = capsys.readouterr().out
    assert "a100-1" in out and "xavier-1" in out and "online" in out


def test_bad_config_is_exit_2_with_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, '[[host]]\nname = "a"\ntransport = "sim"\ndevice = "a100-40gb"\nprot = 22\n'
    )
    assert main(["snapshot", "--hosts", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and ":5" in err and "prot" in err and "Traceback" not in err


def test_missing_hosts_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "--hosts", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus"],
        ["snapshot", "--timeout", "soon"],
        ["frobnicate"],
        ["hosts"],
        ["snapshot", "--timeout", "-1"],
    ],
)
def test_bad_arguments_are_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_hosts_check_reports_collectors_and_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = '[[host]]\nname = "me"\ntransport = "local"\ninterval = 0.2\n'
    assert main(["hosts", "check", "--hosts", str(write(tmp_path, fleet))]) == 0
    out = capsys.readouterr().out
    assert "me" in out and ("procfs" in out or "psutil" in out)
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in out


def test_auto_streams_json_lines_and_stops_on_sigterm(tmp_path: Path) -> None:
    import signal
    import time

    log = tmp_path / "auto.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgetop",
            "--auto",
            "--hosts",
            str(write(tmp_path, SIM_FLEET)),
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    records = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        records.append(json.loads(proc.stdout.readline()))
        fleets = [r for r in records if r["type"] == "fleet"]
        if fleets and all(h["status"] == "online" for h in fleets[-1]["hosts"]):
            break
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    records += [json.loads(line) for line in rest.splitlines()]
    assert records[0]["type"] == "start" and records[-1]["type"] == "stop"
    assert any(r["type"] == "host" and r["status"] == "online" for r in records)
    assert log.read_text().splitlines()[0] == json.dumps(records[0], separators=(",", ":"))
