"""Deploying inference workers: over real OpenSSH to cgroup-confined hosts, and locally."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import testbed
from testbed import TestbedFactory, TestbedHost

from edgetop.remote import worker
from edgetop.remote.deploy import (
    MANIFEST,
    DeployError,
    DeploymentInfo,
    Layout,
    LocalHost,
    code_bundle,
    deploy,
    ensure_code,
    list_deployments,
    stop,
    user_bundle,
)
from edgetop.remote.ssh import SSHTarget, connect
from edgetop.remote.worker import WorkerSpec

openssh_testbed = testbed.openssh_testbed

MIB = 1 << 20
TESTS = Path(__file__).resolve().parent
TINY = [TESTS / "tiny_models.py"]
PYTHON = sys.executable  # the testbed hosts share this machine, and its torch


def target(host: TestbedHost) -> SSHTarget:
    return SSHTarget(
        address=host.address,
        port=host.port,
        user=host.user,
        identity=str(host.identity),
        known_hosts=str(host.known_hosts),
    )


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    # The testbed hosts are this machine as root: keep the deployments out of the real ~.
    return Layout(state=str(tmp_path / "state"), cache=str(tmp_path / "cache"))


@pytest.fixture
async def local_workers(layout: Layout) -> AsyncIterator[None]:
    """Stops whatever a local test left running (testbed hosts clean up by cgroup)."""
    yield
    for info in worker.scan(Path(layout.state)):
        if info["alive"]:
            worker.stop_worker(Path(info["dir"]), timeout=5)


async def find(conn: object, deployment_id: str, layout: Layout) -> DeploymentInfo:
    infos = await list_deployments(conn, python=PYTHON, layout=layout)  # type: ignore[arg-type]
    matches = [i for i in infos if i.id == deployment_id]
    assert len(matches) == 1, infos
    return matches[0]


async def gone_from(bed: TestbedFactory, host: TestbedHost, pid: int, wait_s: float = 30.0) -> bool:
    deadline = time.monotonic() + wait_s
    while pid in bed.pids(host):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def wait_metrics(
    conn: object, deployment_id: str, layout: Layout, newer_than: float = 0.0
) -> DeploymentInfo:
    deadline = time.monotonic() + 30
    while True:
        info = await find(conn, deployment_id, layout)
        if info.metrics is not None and info.metrics["t"] > newer_than:
            return info
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.25)


# -- over OpenSSH -------------------------------------------------------------------------------


async def test_worker_outlives_its_ssh_session_and_is_found_again(
    openssh_testbed: TestbedFactory, layout: Layout
) -> None:
    (host,) = openssh_testbed([(1.0, 1024 * MIB)])
    spec = WorkerSpec(
        id="tiny-1", model="tiny_models:tiny", batch=2, scenario="server", qps=50, slo_ms=100,
        metrics_interval_s=0.25,
    )  # fmt: skip
    conn = await connect(target(host))
    handle = await deploy(conn, spec, python=PYTHON, layout=layout, user_modules=TINY)
    assert handle.info.state == "running" and handle.info.alive
    assert handle.pid in openssh_testbed.pids(host)  # it runs inside the host's cgroup

    first = await wait_metrics(conn, "tiny-1", layout)
    assert first.metrics is not None
    assert first.metrics["device"] == "cpu"
    assert first.metrics["threads"] == 1  # ceil(1.0 CPU quota), though the machine has more
    assert first.metrics["count"] > 0 and first.metrics["p50_ms"] > 0

    conn.close()
    await conn.wait_closed()
    await asyncio.sleep(1.0)

    conn = await connect(target(host))
    try:
        again = await wait_metrics(conn, "tiny-1", layout, newer_than=first.metrics["t"] + 0.5)
        assert again.state == "running" and again.alive and again.pid == handle.pid
        assert again.metrics is not None and again.metrics_age_s is not None
        assert again.metrics_age_s < 5  # fresh: still being written
        assert again.metrics["total_queries"] > first.metrics["total_queries"]
        assert again.spec is not None and again.spec["model"] == "tiny_models:tiny"

        stopped = await stop(conn, "tiny-1", python=PYTHON, layout=layout)
        assert stopped.state == "stopped" and not stopped.alive
        assert stopped.reason == "stop requested"  # it took SIGTERM and said so itself
        # Exited; a zombie stays listed in its cgroup until its reaper (init, outside the
        # test's control) collects it.
        assert await gone_from(openssh_testbed, host, handle.pid)
        assert not worker.is_worker_process(handle.pid, Path(handle.dir))
        assert (await find(conn, "tiny-1", layout)).state == "stopped"
        with pytest.raises(DeployError, match="no deployment nope"):
            await stop(conn, "nope", python=PYTHON, layout=layout)
    finally:
        conn.close()


async def test_shell_metacharacters_are_never_executed(
    openssh_testbed: TestbedFactory, tmp_path: Path
) -> None:
    (host,) = openssh_testbed([(1.0, 1024 * MIB)])
    token = secrets.token_hex(4)
    # `cd` with no argument goes home, so an injected command leaves its marker there.
    markers = [Path.home() / f"edgetop-pwned-{token}-{i}" for i in range(6)]
    names = [m.name for m in markers]
    hostile_models = [
        f"tiny_models:$(cd;touch {names[0]});cd;touch {names[1]}",
        f"a'; cd; touch {names[2]}; '",
    ]
    # Legal, if unwise, directory names: they do reach the host's shell, as quoted words.
    weird = tmp_path / f"st ate $(cd;touch {names[3]}) `cd;touch {names[4]}` ';cd;touch {names[5]}'"
    layout = Layout(state=str(weird / "deployments"), cache=str(tmp_path / "cache"))
    conn = await connect(target(host))
    try:
        for model in hostile_models:
            with pytest.raises(DeployError, match="invalid model name"):
                await deploy(conn, {"id": "evil", "model": model}, python=PYTHON, layout=layout)
        with pytest.raises(DeployError, match="id"):
            await deploy(conn, {"id": "x;touch y", "model": "resnet50"}, layout=layout)
        with pytest.raises(DeployError, match="cannot run"):
            await deploy(
                conn, {"id": "ok", "model": "resnet50"}, python=f"python3;cd;touch {names[0]}",
                layout=layout,
            )  # fmt: skip
        with pytest.raises(DeployError, match="invalid deployment id"):
            await stop(conn, "../../etc", python=PYTHON, layout=layout)

        # A real launch through the weird paths: the worker starts there and fails cleanly.
        with pytest.raises(DeployError, match="cannot load model tiny_models:missing") as failed:
            await deploy(
                conn, {"id": "ok", "model": "tiny_models:missing"}, python=PYTHON, layout=layout,
                user_modules=TINY,
            )  # fmt: skip
        assert failed.value.info is not None and failed.value.info.state == "failed"
        assert (weird / "deployments" / "ok" / "status.json").exists()
    finally:
        conn.close()
        found = [m for m in markers if m.exists()]
        for m in found:
            m.unlink()
    assert not found, f"injected commands ran: {found}"


async def test_a_model_too_big_for_the_host_is_refused_not_oom_killed(
    openssh_testbed: TestbedFactory, layout: Layout
) -> None:
    (host,) = openssh_testbed([(1.0, 256 * MIB)])
    memory_cgroup = openssh_testbed.testbed(host).cgroup_dir(host.name, "memory")
    conn = await connect(target(host))
    try:
        with pytest.raises(DeployError) as refused:
            await deploy(
                conn, {"id": "huge", "model": "tiny_models:huge"}, python=PYTHON, layout=layout,
                user_modules=TINY,
            )  # fmt: skip
        message = str(refused.value)
        assert "deployment huge on" in message and "failed: not enough memory on cpu" in message
        assert "weights 1.0 GiB" in message and "cgroup limit 256.0 MiB" in message
        info = await find(conn, "huge", layout)
        assert info.state == "failed" and info.reason is not None
        assert info.reason.startswith("not enough memory on cpu: tiny_models:huge at batch 1")
    finally:
        conn.close()
    oom = (memory_cgroup / "memory.oom_control").read_text()
    assert "oom_kill 0" in oom or "oom_kill " not in oom  # nothing was OOM-killed


# -- on this machine (the `local` transport) ---------------------------------------------------


async def test_local_deploy_list_and_stop(layout: Layout, local_workers: None) -> None:
    host = LocalHost()
    spec = WorkerSpec(
        id="local-1", model="tiny_models:tiny", scenario="singlestream", metrics_interval_s=0.25
    )
    handle = await deploy(host, spec, python=PYTHON, layout=layout, user_modules=TINY)
    assert handle.info.state == "running" and handle.host == "local"
    with pytest.raises(DeployError, match="already running"):
        await deploy(host, spec, python=PYTHON, layout=layout, user_modules=TINY)
    info = await wait_metrics(host, "local-1", layout)
    assert info.alive and info.metrics is not None and info.metrics["scenario"] == "singlestream"
    stopped = await stop(host, "local-1", python=PYTHON, layout=layout)
    assert stopped.state == "stopped" and not stopped.alive
    assert not worker.is_worker_process(handle.pid or 0, Path(handle.dir))


async def test_torch_missing_on_the_host_is_a_clear_error(tmp_path: Path, layout: Layout) -> None:
    no_torch = tmp_path / "python-without-torch"
    no_torch.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')  # no site-packages
    no_torch.chmod(0o755)
    version = ".".join(map(str, sys.version_info[:3]))
    with pytest.raises(DeployError, match=rf"torch is not installed on local \(python {version}"):
        await deploy(
            LocalHost(), {"id": "t", "model": "resnet50"}, python=str(no_torch), layout=layout
        )
    assert not Path(layout.state).exists()  # checked before anything was written

    jetpack4 = tmp_path / "python3.6"
    jetpack4.write_text("#!/bin/sh\necho 3.6.9\nexit 1\n")
    jetpack4.chmod(0o755)
    with pytest.raises(DeployError, match=r"is Python 3\.6\.9; the worker needs 3\.8 or newer"):
        await deploy(LocalHost(), {"id": "t", "model": "resnet50"}, python=str(jetpack4))


async def test_code_is_shipped_once_per_version(tmp_path: Path) -> None:
    bundle = code_bundle()
    assert {
        "edgetop/__init__.py",
        "edgetop/remote/__init__.py",
        "edgetop/remote/worker.py",
        "edgetop/remote/loadgen.py",
        "edgetop/remote/agent.py",
        "edgetop/remote/errors.py",
        "edgetop/models/__init__.py",
        "edgetop/models/zoo.py",
    } <= set(bundle.files)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in bundle.files)
    assert "edgetop/remote/deploy.py" not in bundle.files  # controller side only
    assert code_bundle().version == bundle.version  # a hash of the contents

    host, cache = LocalHost(), str(tmp_path / "cache")
    first = await ensure_code(host, bundle, cache)
    assert first == f"{cache}/{bundle.version}"
    manifest = Path(first) / MANIFEST
    stamp = manifest.stat().st_mtime_ns
    assert await ensure_code(host, bundle, cache) == first  # reused, not rewritten
    assert manifest.stat().st_mtime_ns == stamp
    assert (Path(first) / "edgetop/remote/worker.py").read_bytes() == bundle.files[
        "edgetop/remote/worker.py"
    ]
    changed = user_bundle(TINY)
    other = tmp_path / "tiny_models.py"
    other.write_text(TINY[0].read_text() + "\n# changed\n")
    assert user_bundle([other]).version != changed.version
    assert await ensure_code(host, changed, cache) != first
    assert sorted(os.listdir(cache)) == sorted([bundle.version, changed.version])  # no debris
    with pytest.raises(DeployError, match="single-file Python module"):
        user_bundle([tmp_path / "notes.txt"])


def test_deployment_info_rejects_what_is_not_a_description() -> None:
    with pytest.raises(ValueError):
        DeploymentInfo.from_wire(["not", "a", "dict"], "h")
    info = DeploymentInfo.from_wire({"id": "x", "pid": "12", "alive": "yes"}, "h")
    assert info.pid is None and info.alive is False and info.state is None
