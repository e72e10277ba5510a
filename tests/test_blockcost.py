"""Per-block costs of zoo models, and torch.fx linearisation of user models."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from edgetop.models.blockcost import BlockCost, block_costs, linearise, user_blocks
from edgetop.models.catalog import load_catalog
from edgetop.models.errors import ModelError
from edgetop.models.nets import run_blocks
from edgetop.models.zoo import get_model


def test_mobilenet_blocks_add_up_to_the_catalog_features() -> None:
    costs = block_costs("mobilenetv2")
    features = load_catalog()["mobilenetv2"]
    with torch.device("meta"):
        model = get_model("mobilenetv2").build()
    assert len(costs) == len(model.blocks()) == 20
    assert [c.index for c in costs] == list(range(20))
    assert costs[0].name == "features.0" and costs[-1].name == "head"
    assert sum(c.gflops for c in costs) == pytest.approx(features.gflops, rel=1e-6)
    # every parameter and buffer is in exactly one block
    held = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    assert sum(c.param_bytes for c in costs) == held >= features.param_bytes
    # the first block reads a 3x224x224 float image and writes 32x112x112
    assert costs[0].out_bytes == 32 * 112 * 112 * 4
    assert costs[0].peak_bytes >= 3 * 224 * 224 * 4 + costs[0].out_bytes
    assert costs[-1].out_bytes == 1000 * 4
    for before, after in itertools.pairwise(costs):
        assert after.peak_bytes >= before.out_bytes  # its input is live while it runs


def test_figures_are_per_sample_at_any_batch() -> None:
    one = block_costs("resnet50", image_size=64)
    four = block_costs("resnet50", batch=4, image_size=64)
    assert [c.gflops for c in four] == pytest.approx([c.gflops for c in one])
    assert [c.out_bytes for c in four] == [c.out_bytes for c in one]
    assert [c.param_bytes for c in four] == [c.param_bytes for c in one]  # weights do not scale
    assert sum(c.gflops for c in one) < load_catalog()["resnet50"].gflops  # 64 px, not 224


def test_tuple_states_count_every_tensor() -> None:
    costs = block_costs("bert-base", seq_len=16)
    # BERT threads (hidden, additive mask): the embeddings' output is both
    assert costs[0].out_bytes == 16 * 768 * 4 + 16 * 4
    assert all(isinstance(c, BlockCost) for c in costs)


def test_bad_batch_and_unknown_model() -> None:
    with pytest.raises(ModelError, match="batch"):
        block_costs("mobilenetv2", batch=0)
    with pytest.raises(ModelError, match="unknown model"):
        block_costs("no-such-model")
    with pytest.raises(ModelError, match="needs its inputs"):
        block_costs(nn.Linear(2, 2))


def test_to_dict_round_trips_the_fields() -> None:
    cost = block_costs("mobilenetv2", image_size=32)[3]
    assert BlockCost(**cost.to_dict()) == cost


# ---- user models through torch.fx ---------------------------------------------------------


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        y = y + self.body(y)  # y is live beside body's output: no cut inside the residual
        return self.fc(torch.flatten(y.mean((2, 3)), 1))


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 6)
        self.b = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x) * scale))


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a(x), self.b(x)  # x and then both outputs stay live to the end


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if y.sum() > 0:  # control flow on a tensor value: fx cannot trace it
            return y
        return -y


def test_a_residual_model_is_cut_where_one_tensor_is_live() -> None:
    torch.manual_seed(0)
    model = Residual().eval()
    x = torch.randn(1, 3, 8, 8)
    blocks, names = linearise(model, (x,))
    # stem+relu | body+add+mean+flatten | fc: flopless ops join the block before them
    assert names == ["stem..relu", "body..flatten", "fc"]
    batch = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(run_blocks(blocks, (batch,)), model(batch), atol=1e-6)
        assert torch.allclose(run_blocks(user_blocks(model, (x,)), (batch,)), model(batch))
    costs = block_costs(model, inputs=(x,))
    assert [c.name for c in costs] == names
    assert costs[0].out_bytes == 8 * 8 * 8 * 4 and costs[-1].out_bytes == 4 * 4
    assert sum(c.param_bytes for c in costs) == sum(p.numel() * 4 for p in model.parameters())
    assert all(c.gflops > 0 for c in costs)


def test_a_multi_input_model_takes_the_tuple_first() -> None:
    torch.manual_seed(0)
    model = TwoInputs().eval()
    x, scale = torch.randn(2, 4), torch.randn(2, 6)
    blocks, _ = linearise(model, (x[:1], scale[:1]))
    assert len(blocks) == 2
    with torch.no_grad():
        assert torch.allclose(run_blocks(blocks, (x, scale)), model(x, scale))


def test_a_user_model_by_name_is_measured_on_meta() -> None:
    costs = block_costs("tiny_models:tiny")  # Linear(16, 32), ReLU, Linear(32, 4)
    assert [c.name for c in costs] == ["0..1", "2"]
    assert costs[0].gflops == pytest.approx(2 * 16 * 32 / 1e9)
    assert costs[0].param_bytes == (16 * 32 + 32) * 4
    assert costs[0].out_bytes == 32 * 4


def test_control_flow_is_refused_with_the_reason() -> None:
    with pytest.raises(ModelError, match=r"torch.fx cannot trace it.*control flow"):
        linearise(DataDependent(), (torch.randn(1, 4),))


def test_no_single_tensor_cut_is_refused_with_the_reason() -> None:
    with pytest.raises(ModelError, match="no point in its graph has exactly one tensor live"):
        linearise(Branchy(), (torch.randn(1, 4),))


def test_a_wrong_number_of_inputs_is_refused() -> None:
    with pytest.raises(ModelError, match="forward takes 2 inputs, the example has 1"):
        linearise(TwoInputs(), (torch.randn(1, 4),))


@pytest.mark.parametrize("name", ["tiny_models:tiny", "mobilenetv2"])
def test_a_stage_runs_the_blocks_the_partitioner_counted(name: str) -> None:
    from edgetop.remote.worker import pipeline_blocks

    model = get_model(name).build().eval()
    blocks = pipeline_blocks(model)
    assert len(blocks) == len(block_costs(name))
    (x,) = get_model(name).make_input(1)
    with torch.no_grad():
        assert torch.allclose(run_blocks(blocks, (x,)), model(x))
