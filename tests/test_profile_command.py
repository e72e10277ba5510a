"""`edgetop profile` end to end: a real worker on an OpenSSH testbed host, resumable CSV."""

import csv
import sys
from pathlib import Path

import pytest
from fleets import SIM_PAIR
from testbed import TestbedFactory

from edgetop.tui.cli import main

GIB = 1 << 30


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_profile_measures_on_a_testbed_host_and_resumes(
    openssh_testbed: TestbedFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (host,) = openssh_testbed([(1.0, GIB)])
    fleet = tmp_path / "hosts.toml"
    fleet.write_text(openssh_testbed.testbed(host).hosts_toml(sys.executable))
    out = tmp_path / "profile.csv"
    argv = ["profile", "--hosts", str(fleet), "--models", "tiny_models:tiny", "--batch", "1,4",
            "--duration", "1.5", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    measured = rows(out)
    assert [(r["host"], r["batch"]) for r in measured] == [(host.name, "1"), (host.name, "4")]
    for row in measured:
        assert row["scenario"] == "singlestream" and row["model"] == "tiny_models:tiny"
        assert float(row["cpu_quota"]) == 1.0 and int(row["mem_limit"]) == GIB
        assert row["threads"] == "1"  # the worker sized itself to the cgroup quota
        assert 0 < float(row["p50_ms"]) <= float(row["p90_ms"]) <= float(row["p99_ms"])
        assert float(row["throughput"]) > 0 and int(row["queries"]) > 0
    capsys.readouterr()
    # Interrupted or finished, a second sweep keeps what was measured and measures nothing again.
    assert main(argv) == 0
    assert "2 run(s) already in" in capsys.readouterr().out
    assert rows(out) == measured


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch", "1,x"], "--batch"),
        (["--on", "nowhere"], "no host nowhere"),
        (["--on", "a100-1"], "simulated"),
        (["--scenario", "server"], "needs --qps"),
        (["--models", "no_such_module:fn"], "--models"),
    ],
)
def test_bad_profile_requests_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    fleet = tmp_path / "hosts.toml"
    fleet.write_text(SIM_PAIR.format(jetson="x1")
                     + '\n[[host]]\nname = "me"\ntransport = "local"\n')  # fmt: skip
    argv = ["profile", "--hosts", str(fleet), "--models", "mobilenetv2", "--out",
            str(tmp_path / "p.csv"), *extra]  # fmt: skip
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "must be 1 to 1000000, got 0"), ("many", "expected a whole number of queries")],
)
def test_a_bad_min_queries_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["profile", "--models", "mobilenetv2", "--min-queries", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --min-queries" in err and message in err
