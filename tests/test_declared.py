"""Declared (non-torch) models: workloads.toml parsing, `edgetop models`, and a real worker
driving a real local server (http.server on 127.0.0.1) through its query command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edgetop.models import declared as d
from edgetop.models.catalog import load_catalog
from edgetop.models.declared import DeclarationError, load_workloads, parse_declarations
from edgetop.models.errors import ModelError
from edgetop.remote import worker
from edgetop.remote.worker import SpecError, WorkerSpec
from edgetop.tui import cli

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workloads.toml"
START_TIMEOUT_S = 60.0

MINIMAL = """
[[model]]
name = "srv"
family = "custom"
query = ["true"]
params = 10
gflops = 1.0
activation_bytes = 100
input_shape = [[1, 4]]
"""


def one(extra: str = "", drop: str | None = None, **replace: str) -> str:
    lines = [line for line in MINIMAL.strip().splitlines() if not (drop and line.startswith(drop))]
    for key, value in replace.items():
        lines = [f"{key} = {value}" if line.startswith(f"{key} =") else line for line in lines]
    return "\n".join(lines) + "\n" + extra


def error(text: str, reserved: tuple[str, ...] = ()) -> DeclarationError:
    with pytest.raises(DeclarationError) as caught:
        parse_declarations(text, "w.toml", reserved)
    assert isinstance(caught.value, ModelError)
    return caught.value


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def test_fixture_parses_into_features() -> None:
    models = load_workloads(FIXTURE)
    assert list(models) == ["resnet-triton", "echo-server"]
    triton = models["resnet-triton"]
    assert triton.launch == ("tritonserver", "--model-repository", "/models")
    assert triton.query[-1] == "--batch={batch}"  # batch_arg appended
    assert triton.param_bytes == 4 * triton.params  # the default
    f = triton.features()
    assert f.activation_traffic_bytes == f.activation_bytes == 110_000_000  # not declared
    assert f.input_bytes == 4 * 3 * 224 * 224 and f.input_shape == ((1, 3, 224, 224),)
    moved = f.param_bytes + f.input_bytes + f.activation_traffic_bytes
    assert f.arithmetic_intensity == pytest.approx(8.18e9 / moved)
    echo = models["echo-server"]
    assert echo.launch == () and echo.query == ("true", "{batch}")
    assert echo.features().param_bytes == 2000 and echo.features().activation_traffic_bytes == 8192
    assert echo.worker_fields() == {
        "launch": [], "query": ["true", "{batch}"], "query_timeout_s": 5.0,
        "start_timeout_s": 60.0,
    }  # fmt: skip
    with pytest.raises(AttributeError):
        echo.name = "x"  # type: ignore[misc]  # frozen


def test_families_match_the_zoo() -> None:
    from edgetop.models.zoo import FAMILIES

    assert d.FAMILIES == FAMILIES


def test_no_file_is_no_models(tmp_path: Path) -> None:
    assert load_workloads(None, cwd=tmp_path) == {}
    (tmp_path / "workloads.toml").write_text(MINIMAL)
    assert list(load_workloads(None, cwd=tmp_path)) == ["srv"]
    with pytest.raises(DeclarationError, match=r"missing\.toml: cannot read"):
        load_workloads(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (one(name='"Bad Name"'), "name", "must match"),
        (one(drop="name"), "name", "is required"),
        (one(family='"gpu"'), "family", "not one of"),
        (one(drop="query"), "query", "non-empty list"),
        (one(query='"curl http://x; rm -rf /"'), "query", "list of strings"),
        (one(query='["curl", 3]'), "query", "argument 1 must be a string"),
        (one(query='["curl", "a\\u0000b"]'), "query", "control characters"),
        (one(query='[""]'), "query", "argument 0"),
        (one('launch = "tritonserver --x"\n'), "launch", "list of strings"),
        (one('launch = [["nested"]]\n'), "launch", "must be a string"),
        (one('batch_arg = "--batch"\n'), "batch_arg", "{batch}"),
        (one(params="-1"), "params", "non-negative integer"),
        (one(params="true"), "params", "integer"),
        (one(gflops='"fast"'), "gflops", "number"),
        (one(drop="activation_bytes"), "activation_bytes", "is required"),
        (one(input_shape="[3, 224]"), "input_shape", "lists of positive"),
        (one(input_shape="[[3, 224]]"), "input_shape", "batch"),
        (one("query_timeout_s = 0\n"), "query_timeout_s", "positive"),
        (one("colour = 1\n"), "colour", "unknown key"),
    ],
)
def test_each_error_names_file_model_and_key(text: str, key: str, words: str) -> None:
    exc = error(text)
    assert exc.path == "w.toml" and exc.index == 1 and exc.key == key
    assert str(exc).startswith("w.toml: [[model]] #1")
    assert f"key {key!r}" in str(exc) and words in str(exc)


def test_error_names_the_model_and_its_index() -> None:
    text = MINIMAL + MINIMAL.replace('"srv"', '"srv2"').replace("gflops = 1.0", 'gflops = "x"')
    exc = error(text)
    assert exc.index == 2 and exc.name == "srv2"
    assert str(exc).startswith("w.toml: [[model]] #2 'srv2', key 'gflops': ")


def test_shadowing_a_catalog_name_and_duplicates_are_refused() -> None:
    exc = error(one(name='"resnet50"'), tuple(load_catalog()))
    assert exc.key == "name" and "catalog model" in str(exc)
    with pytest.raises(DeclarationError, match=r"resnet50.*catalog"):
        load_workloads(_write(one(name='"resnet50"')))
    assert "declared twice" in str(error(MINIMAL + MINIMAL))


def test_file_level_errors() -> None:
    assert "not valid TOML" in str(error("[[model]\n"))
    assert "[[model]]" in str(error('model = "x"\n'))
    assert "unknown top-level key 'hosts'" in str(error("[hosts]\n"))


def _write(text: str) -> Path:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)  # noqa: SIM115
    handle.write(text)
    handle.close()
    return Path(handle.name)


# --------------------------------------------------------------------------------------------
# edgetop models
# --------------------------------------------------------------------------------------------


def test_models_command_lists_declared_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "--json", "--workloads", str(FIXTURE)]) == cli.EXIT_OK
    models = json.loads(capsys.readouterr().out)["models"]
    catalog = load_catalog()
    assert [m["name"] for m in models] == [*catalog, "resnet-triton", "echo-server"]
    assert {m["source"] for m in models[: len(catalog)]} == {"catalog"}
    triton = models[len(catalog)]
    assert triton["source"] == "declared" and triton["family"] == "conv"
    assert triton["params"] == 25557032 and triton["input_shape"] == [[1, 3, 224, 224]]
    assert "arithmetic_intensity" in triton  # every catalog field is kept


def test_models_command_reports_a_bad_file(capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(one(family='"gpu"'))
    assert cli.main(["--workloads", str(bad), "models"]) == cli.EXIT_BAD_INPUT
    assert "key 'family'" in capsys.readouterr().err


def test_profile_features_and_spec_for_a_declared_model() -> None:
    from edgetop.tui.profile_command import _features

    declared = load_workloads(FIXTURE)
    features = _features(["resnet50", "echo-server"], {}, declared)
    assert features["echo-server"] == declared["echo-server"].features()
    with pytest.raises(ModelError, match="takes no --option"):
        _features(["echo-server"], {"seq_len": 8}, declared)
    fields = declared["echo-server"].worker_fields()
    spec = WorkerSpec(id="p1", model="echo-server", declared=fields)
    assert WorkerSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "declared",
    [
        "curl x",
        {"launch": [], "query": []},
        {"query": "curl x"},
        {"query": ["curl", 1]},
        {"query": ["true"], "shell": True},
        {"query": ["true"], "query_timeout_s": -1},
    ],
)
def test_worker_spec_refuses_bad_declared(declared: Any) -> None:
    with pytest.raises(SpecError, match="declared"):
        WorkerSpec(id="x", model="srv", declared=declared)


# --------------------------------------------------------------------------------------------
# A real worker, a real server
# --------------------------------------------------------------------------------------------

QUERY = "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=5).read()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    return state != "Z"


def start_worker(
    tmp_path: Path, notorch: bool = True, **spec: Any
) -> tuple[Path, subprocess.Popen]:
    directory = tmp_path / str(spec["id"])
    directory.mkdir()
    (directory / "spec.json").write_text(json.dumps(spec))
    path = [str(Path(worker.__file__).resolve().parents[2])]
    if notorch:  # a `torch` that cannot be imported: declared models must not need it
        fake = tmp_path / "notorch" / "torch"
        fake.mkdir(parents=True, exist_ok=True)
        (fake / "__init__.py").write_text("raise ImportError('torch is not for declared models')\n")
        path.insert(0, str(fake.parent))
    log = open(directory / "worker.log", "ab")  # noqa: SIM115  (the child keeps it)
    proc = subprocess.Popen(
        [sys.executable, "-m", worker.MODULE, "--dir", str(directory)],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return directory, proc


def wait_state(directory: Path, *states: str) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        current = worker.read_json(directory / "status.json")
        if isinstance(current, dict) and current.get("state") in states:
            return current
        time.sleep(0.05)
    raise AssertionError(f"never reached {states}; log:\n{(directory / 'worker.log').read_text()}")


def test_worker_runs_a_declared_server_and_stops_it(tmp_path: Path, procs: list) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    declared = {
        "launch": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        "query": [sys.executable, "-c", QUERY, url],
        "query_timeout_s": 10,
    }
    directory, proc = start_worker(
        tmp_path, id="decl1", model="http-server", declared=declared, window_s=30,
        metrics_interval_s=0.25, warmup=1,
    )  # fmt: skip
    procs.append(proc)
    running = wait_state(directory, "running", "failed")
    assert running["state"] == "running", running
    assert running["device"] == "external" and "memory" not in running  # no memory check
    server_pid = running["server_pid"]
    assert pid_alive(server_pid) and port_open(port)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in (directory / "metrics.jsonl").read_text().splitlines()]
        if lines and lines[-1]["count"] >= 3:
            break
        time.sleep(0.2)
    last = lines[-1]
    assert last["model"] == "http-server" and last["device"] == "external"
    assert last["p50_ms"] > 0 and last["count"] >= 3 and last["query_failures"] == 0

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == worker.EXIT_STOPPED
    assert worker.read_json(directory / "status.json")["state"] == "stopped"
    assert not pid_alive(server_pid)
    assert not port_open(port)
    assert "GET / HTTP" in (directory / worker.SERVER_LOG_FILE).read_text()


def test_a_killed_worker_takes_its_server_with_it(tmp_path: Path, procs: list) -> None:
    port = free_port()
    declared = {
        "launch": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        "query": [sys.executable, "-c", QUERY, f"http://127.0.0.1:{port}/"],
    }
    directory, proc = start_worker(tmp_path, id="decl-kill", model="m", declared=declared)
    procs.append(proc)
    running = wait_state(directory, "running", "failed")
    assert running["state"] == "running", running
    server_pid = running["server_pid"]
    proc.kill()  # SIGKILL: the worker gets no chance to stop the server itself
    proc.wait(timeout=20)
    deadline = time.monotonic() + 20
    while pid_alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(server_pid)


def test_failing_queries_fail_the_worker_with_the_reason(tmp_path: Path, procs: list) -> None:
    script = "import sys; sys.stderr.write('model not ready: 503\\n'); sys.exit(7)"
    directory, proc = start_worker(
        tmp_path, id="decl2", model="broken",
        declared={"query": [sys.executable, "-c", script], "start_timeout_s": 0.5},
    )  # fmt: skip
    procs.append(proc)
    assert proc.wait(timeout=START_TIMEOUT_S) == worker.EXIT_FAILED
    reason = worker.read_json(directory / "status.json")["reason"]
    assert "cannot start declared model broken" in reason
    assert "query exited with status 7: model not ready: 503" in reason


def test_queries_failing_while_running_fail_the_worker(tmp_path: Path, procs: list) -> None:
    flag = tmp_path / "ok"
    flag.write_text("")
    script = (
        "import os, sys\n"
        "if not os.path.exists(sys.argv[1]): sys.stderr.write('backend gone\\n'); sys.exit(3)"
    )
    directory, proc = start_worker(
        tmp_path, id="decl3", model="flaky", declared={"query": [sys.executable, "-c", script,
        str(flag)]}, warmup=0,
    )  # fmt: skip
    procs.append(proc)
    assert wait_state(directory, "running", "failed")["state"] == "running"
    flag.unlink()
    assert proc.wait(timeout=START_TIMEOUT_S) == worker.EXIT_FAILED
    reason = worker.read_json(directory / "status.json")["reason"]
    assert f"{worker.DECLARED_MAX_FAILURES} queries in a row failed" in reason
    assert "status 3: backend gone" in reason


def test_a_server_that_exits_fails_the_worker(tmp_path: Path, procs: list) -> None:
    launch = [sys.executable, "-c", "import sys; print('bad model repository'); sys.exit(9)"]
    directory, proc = start_worker(
        tmp_path, id="decl4", model="dies",
        declared={"launch": launch, "query": [sys.executable, "-c", "import sys; sys.exit(1)"]},
    )  # fmt: skip
    procs.append(proc)
    assert proc.wait(timeout=START_TIMEOUT_S) == worker.EXIT_FAILED
    reason = worker.read_json(directory / "status.json")["reason"]
    assert "server exited with status 9" in reason and "bad model repository" in reason


def test_the_fake_torch_does_hide_torch(tmp_path: Path, procs: list) -> None:
    """So the runs above prove that a declared model's worker never imports torch."""
    _, proc = start_worker(tmp_path, id="torchy", model="resnet50")
    procs.append(proc)
    assert proc.wait(timeout=START_TIMEOUT_S) == worker.EXIT_NO_TORCH
