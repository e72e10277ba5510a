import csv
import io

import pytest
from agentlines import hello, sample

from edgetop.core.fleet import HostView, apply_event
from edgetop.core.profile import (
    COLUMNS,
    Run,
    done_keys,
    options_text,
    parse_batches,
    parse_options,
    plan_runs,
    profile_row,
)
from edgetop.models.workload import WorkloadFeatures
from edgetop.remote.link import HostStatus, LinkEvent
from edgetop.remote.protocol import parse_line

FEATURES = WorkloadFeatures("mlp", "custom", 10, 40, 0.5, 100, 200, ((1, 16),), 64, 1.5)


def test_plan_skips_what_was_measured() -> None:
    runs = plan_runs(
        ["a", "b"],
        ["m1", "m2"],
        [1, 8],
        "singlestream",
        done={("a", "m1", "8", "singlestream", "")},
    )
    assert len(runs) == 7
    assert Run("a", "m1", 8, "singlestream") not in runs
    assert runs[0] == Run("a", "m1", 1, "singlestream")


def test_done_keys_read_back_what_rows_were_written() -> None:
    host = HostView("h1", "ssh", "cpu", 1.0)
    host = apply_event(host, LinkEvent("h1", HostStatus.ONLINE, 1.0, hello=parse_line(hello())))  # type: ignore[arg-type]
    host = apply_event(host, LinkEvent("h1", HostStatus.ONLINE, 2.0, sample=parse_line(sample(1))))  # type: ignore[arg-type]
    run = Run("h1", "mlp", 8, "singlestream")
    row = profile_row(
        run,
        FEATURES,
        host,
        {"p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0, "throughput": 10.0, "count": 5},
        measured_at=3.0,
        version="0.1.0",
    )
    assert list(row) == list(COLUMNS)
    assert row["cpu_quota"] == 1.5 and row["device_kind"] == "cpu"
    assert row["device_mem_free"] == (1 << 30) - (1 << 20)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerow(row)
    assert done_keys(out.getvalue()) == {run.key}
    assert plan_runs(["h1"], ["mlp"], [8], "singlestream", done_keys(out.getvalue())) == []


def test_done_keys_of_an_unrelated_file_is_empty() -> None:
    assert done_keys("") == set()
    assert done_keys("a,b\n1,2\n") == set()


def test_options_parse_and_spell_canonically() -> None:
    options = parse_options(["seq_len=128", "rows_scale=1e-4", "name=x"])
    assert options == {"seq_len": 128, "rows_scale": 1e-4, "name": "x"}
    assert options_text(options) == "name=x;rows_scale=0.0001;seq_len=128"
    for bad in ("seq_len", "=3", "a b=1"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_options([bad])


def test_batches_parse_and_bad_ones_are_named() -> None:
    assert parse_batches("32, 1,8,8") == [1, 8, 32]
    with pytest.raises(ValueError, match="'x'"):
        parse_batches("1,x")
    with pytest.raises(ValueError, match="'0'"):
        parse_batches("0")
