"""The pipeline controller on `local` hosts (no SSH, no root): direct connections between
stage processes on this machine; outputs, a killed stage, recovery, bad plans."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from edgetop.core.config import FleetConfig, parse_config
from edgetop.core.partition import PartitionPlan, Stage
from edgetop.core.pipeline import (
    PipelineBroken,
    PipelineError,
    StageSpec,
    deploy_pipeline,
)
from edgetop.models.zoo import get_model

MODEL, OPTIONS = "mobilenetv2", {"image_size": 64}
HOSTS = "".join(f'[[host]]\nname = "{n}"\ntransport = "local"\nkind = "cpu"\n\n' for n in "ab")
HOSTS += '[[host]]\nname = "s"\ntransport = "sim"\nkind = "gpu-server"\ndevice = "t4"\n'


@pytest.fixture
def config(tmp_path: Path) -> FleetConfig:
    return parse_config(HOSTS, tmp_path / "hosts.toml")


def dirs(tmp_path: Path) -> dict[str, str]:
    return {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache")}


def whole_model(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    spec = get_model(MODEL)
    (x,) = spec.make_input(batch, **OPTIONS)
    with torch.inference_mode():
        return x, spec.build(**OPTIONS)(x)


async def test_a_plan_runs_and_a_killed_stage_is_replaced(
    config: FleetConfig, tmp_path: Path
) -> None:
    plan = PartitionPlan(
        model=MODEL, objective="throughput", batch=1,
        stages=(Stage("a", 0, 12, 1.0, 0.1, 1), Stage("b", 12, 20, 1.0, 0.0, 1)),
        bottleneck_ms=1.0, latency_ms=2.1, throughput=1000.0,
    )  # fmt: skip
    x, expected = whole_model(3)
    pipeline = await deploy_pipeline(config, plan, options=OPTIONS, **dirs(tmp_path))
    try:
        assert pipeline.model == MODEL
        assert torch.allclose(await pipeline.infer(x), expected, atol=1e-5)
        run = await pipeline.run(x, requests=4, concurrency=2, samples=3)
        assert run.stats.total_queries == 4 and run.stats.total_samples == 12
        infos = await pipeline.describe()
        assert [i["state"] for i in infos] == ["running", "running"]

        os.kill(pipeline.stages[0].pid, signal.SIGKILL)
        with pytest.raises(PipelineBroken):
            await pipeline.infer(x)
        assert await pipeline.dead_stages() == [0]
        survivor = await pipeline.recover()
        try:
            assert [(s.spec.host, s.spec.first, s.spec.stop) for s in survivor.stages] == [
                ("b", 0, 20)
            ]
            assert torch.allclose(await survivor.infer(x), expected, atol=1e-5)
            with pytest.raises(PipelineError, match="no stage is dead"):
                await survivor.recover()
        finally:
            await survivor.close()
    finally:
        await pipeline.close()


async def test_a_failing_stage_fails_the_deploy_with_its_reason(
    config: FleetConfig, tmp_path: Path
) -> None:
    with pytest.raises(PipelineError, match="has 20 blocks"):
        await deploy_pipeline(
            config, [StageSpec("a", 0, 25)], model=MODEL, options=OPTIONS, **dirs(tmp_path)
        )


@pytest.mark.parametrize(
    "specs, error",
    [
        ([StageSpec("nowhere", 0, 20)], "no host 'nowhere'"),
        ([StageSpec("s", 0, 20)], "needs an ssh or local host"),
        ([], "at least one stage"),
    ],
)
async def test_bad_plans_are_refused_by_name(
    config: FleetConfig, tmp_path: Path, specs: list[StageSpec], error: str
) -> None:
    with pytest.raises(PipelineError, match=error):
        await deploy_pipeline(config, specs, model=MODEL, **dirs(tmp_path))
