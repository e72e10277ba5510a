"""A real pipeline over OpenSSH testbed hosts: stages in their hosts' cgroups, tensors through
SSH port forwarding, the same outputs as the whole model, a killed stage found and the model
repartitioned over the host that remains."""

from __future__ import annotations

import itertools
import os
import signal
import sys
from pathlib import Path

import pytest
import testbed
import torch
from testbed import TestbedFactory

from edgetop.core.config import parse_config
from edgetop.core.pipeline import (
    PipelineBroken,
    StageSpec,
    deploy_pipeline,
    equal_split,
    partition_planner,
)
from edgetop.models.zoo import get_model
from edgetop.remote import stage

openssh_testbed = testbed.openssh_testbed
MIB = 1 << 20
MODEL, OPTIONS = "mobilenetv2", {"image_size": 64}


def whole_model(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    spec = get_model(MODEL)
    (x,) = spec.make_input(batch, **OPTIONS)
    with torch.inference_mode():
        return x, spec.build(**OPTIONS)(x)


def test_equal_split_covers_every_block_once() -> None:
    specs = equal_split(20, ["a", "b", "c"])
    assert [(s.first, s.stop) for s in specs] == [(0, 7), (7, 13), (13, 20)]
    assert [s.host for s in equal_split(2, ["a", "b", "c"])] == ["a", "b"]


def test_partition_planner_splits_over_the_hosts_given() -> None:
    specs = partition_planner(MODEL, OPTIONS)(["x", "y"])
    assert specs[0].first == 0 and specs[-1].stop == 20
    assert all(a.stop == b.first for a, b in itertools.pairwise(specs))
    assert {s.host for s in specs} <= {"x", "y"}


async def test_two_stage_pipeline_over_openssh_equals_the_whole_model(
    openssh_testbed: TestbedFactory, tmp_path: Path
) -> None:
    hosts = openssh_testbed([(1.0, 1024 * MIB), (1.0, 1024 * MIB)])
    tb = openssh_testbed.testbed(hosts[0])
    config = parse_config(tb.hosts_toml(sys.executable), tmp_path / "hosts.toml")
    specs = [StageSpec("tb1", 0, 9), StageSpec("tb2", 9, 20)]
    x, expected = whole_model(2)
    pipeline = await deploy_pipeline(
        config, specs, model=MODEL, options=OPTIONS,
        state_dir=str(tmp_path / "state"), cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    try:
        # Each stage runs inside its own host's cgroup, reached only through SSH.
        for running, host in zip(pipeline.stages, hosts, strict=True):
            assert running.pid in openssh_testbed.pids(host)
        assert pipeline.stages[0].next != f"127.0.0.1:{pipeline.stages[1].port}"  # forwarded

        out = await pipeline.infer(x)
        assert torch.allclose(out, expected, atol=1e-5)
        run = await pipeline.run(x, requests=6, concurrency=3, samples=2)
        assert run.stats.count == 6 and run.stats.total_samples == 12
        assert run.stats.p50_ms is not None and run.stats.throughput

        # A stage killed outright is noticed by the requests, then by asking the hosts.
        os.kill(pipeline.stages[1].pid, signal.SIGKILL)
        with pytest.raises(PipelineBroken):
            await pipeline.infer(x)
        assert await pipeline.dead_stages() == [1]

        # The model is repartitioned over the host that is left, and still gives the same.
        survivor = await pipeline.recover()
        try:
            assert [(s.spec.host, s.spec.first, s.spec.stop) for s in survivor.stages] == [
                ("tb1", 0, 20)
            ]
            assert torch.allclose(await survivor.infer(x), expected, atol=1e-5)
        finally:
            await survivor.close()
    finally:
        await pipeline.close()


async def test_local_and_ssh_stages_are_joined_by_port_forwarding(
    openssh_testbed: TestbedFactory, tmp_path: Path
) -> None:
    """local -> ssh (local forward) -> local (remote forward): the other two wirings."""
    (host,) = openssh_testbed([(1.0, 1024 * MIB)])
    tb = openssh_testbed.testbed(host)
    local = '[[host]]\nname = "me"\ntransport = "local"\nkind = "cpu"\n\n'
    config = parse_config(local + tb.hosts_toml(sys.executable), tmp_path / "hosts.toml")
    specs = [StageSpec("me", 0, 6), StageSpec("tb1", 6, 13), StageSpec("me", 13, 20)]
    x, expected = whole_model(1)
    pipeline = await deploy_pipeline(
        config, specs, model=MODEL, options=OPTIONS,
        state_dir=str(tmp_path / "state"), cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    dirs = [Path(s.directory) for s in pipeline.stages]
    try:
        first, middle, last = pipeline.stages
        assert middle.pid in openssh_testbed.pids(host)
        assert first.next != f"127.0.0.1:{middle.port}"
        assert middle.next != f"127.0.0.1:{last.port}"
        assert torch.allclose(await pipeline.infer(x), expected, atol=1e-5)
        await pipeline.ping()
        assert await pipeline.dead_stages() == []
    finally:
        await pipeline.close()
    # close() stopped every stage (the testbed host shares this filesystem).
    assert [stage.describe(d)["state"] for d in dirs] == ["stopped"] * 3
