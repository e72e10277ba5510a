"""The model zoo: sizes against the published facts, forward passes, blocks, determinism, and
user models.

Full-size parameters and FLOPs are measured on the meta device (no memory, no arithmetic);
forward passes run on CPU at small sizes (batch 2, 64x64 images, 16 tokens, tiny DLRM tables).
The facts come from tests/fixtures/model_facts.csv, a verbatim copy of the project's reference
data with its source column.
"""

from __future__ import annotations

import csv
import functools
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgetop.models.errors import ModelError, ModelOptionError, UnknownModelError
from edgetop.models.nets import dlrm as dlrm_net
from edgetop.models.nets import ssd as ssd_net
from edgetop.models.nets.base import num_params, run_blocks
from edgetop.models.zoo import (
    CATALOG,
    FAMILIES,
    FULL_DLRM_EMBEDDING_PARAMS,
    UserModel,
    ZooModel,
    get_model,
)

FACTS_CSV = Path(__file__).parent / "fixtures" / "model_facts.csv"
PARAMS_TOLERANCE = 0.01  # parameter counts within 1%
FLOPS_TOLERANCE = 0.05  # FLOPs per sample within 5%


class Fact(NamedTuple):
    model: str
    quantity: str
    value: str
    unit: str
    source: str

    @property
    def number(self) -> float:
        return float(self.value)


FACTS = [Fact(**row) for row in csv.DictReader(FACTS_CSV.read_text("utf-8").splitlines())]


# ---- measuring on the meta device ------------------------------------------------------


class Measured(NamedTuple):
    params: int
    flops: int  # FlopCounterMode: 2 per multiply-accumulate
    by_module: dict[str, int]
    model: ZooModel
    inputs: tuple[torch.Tensor, ...]
    output: Any


@functools.cache
def measure(name: str, **opts: Any) -> Measured:
    spec = CATALOG[name]
    with torch.device("meta"):
        model = spec.build(**opts)
    inputs = spec.make_input(1, device="meta", **opts)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        output = model(*inputs)
    by_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    return Measured(num_params(model), counter.get_total_flops(), by_module, model, inputs, output)


def within(ours: float, reference: float, tolerance: float) -> bool:
    return abs(ours - reference) <= tolerance * abs(reference)


# ---- one check per fact row ------------------------------------------------------------


def check_params(name: str) -> Callable[[Fact], None]:
    def check(fact: Fact) -> None:
        assert within(measure(name).params, fact.number, PARAMS_TOLERANCE), measure(name).params

    return check


# FLOPs counted per unit of a fact: FlopCounterMode counts 2 per multiply-accumulate, so a MAC
# figure compares with half the count. BERT's "GOps" are FLOPs (the MAC reading is 2x off).
FLOPS_PER_UNIT = {"GMAC": 2e9, "GFLOPs": 1e9, "GOps": 1e9}


def check_flops(name: str, **opts: Any) -> Callable[[Fact], None]:
    def check(fact: Fact) -> None:
        ours = measure(name, **opts).flops / FLOPS_PER_UNIT[fact.unit.split()[0]]
        assert within(ours, fact.number, FLOPS_TOLERANCE), (ours, fact.number)

    return check


def check_input(name: str) -> Callable[[Fact], None]:
    def check(fact: Fact) -> None:
        # "1x3x224x224" or "3 x (1x384) int64": how many inputs, each shape, the dtype
        parsed = re.fullmatch(r"(?:(\d+) x \()?([\dx]+)\)?(?: (\w+))?", fact.value)
        assert parsed is not None, fact.value
        count, dims, dtype = parsed.groups()
        inputs = measure(name).inputs
        shape = tuple(int(d) for d in dims.split("x"))
        assert [tuple(t.shape) for t in inputs] == [shape] * int(count or 1)
        assert all(t.dtype == getattr(torch, dtype or "float32") for t in inputs)

    return check


def check_bert_config(fact: Fact) -> None:
    numbers = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", fact.value)}
    cfg = measure("bert-large").model.config
    assert (cfg.layers, cfg.hidden, cfg.heads) == (
        numbers["layers"],
        numbers["hidden"],
        numbers["heads"],
    )


def check_gpt2_config(fact: Fact) -> None:
    values = {}
    for part in fact.value.split(" / "):  # "12 layers", "vocab 50257" or "124M params"
        a, b = part.split()
        key, value = (b, a) if a[0].isdigit() else (a, b)
        values[key] = value
    m = measure("gpt2")
    cfg = m.model.config
    assert int(values["layers"]) == cfg.layers and int(values["heads"]) == cfg.heads
    assert int(values["embd"]) == cfg.embd and int(values["vocab"]) == cfg.vocab
    assert int(values["ctx"]) == cfg.context
    assert within(m.params, float(values["params"].rstrip("M")) * 1e6, PARAMS_TOLERANCE)


def check_gpt2_compute(fact: Fact) -> None:
    """0.247 GFLOP per token from the weights, plus attention that grows with the context."""
    attention, ctx = (
        float(x) for x in re.search(r"plus ([\d.]+) attention at (\d+)", fact.unit).groups()
    )
    per_token = measure("gpt2", seq_len=1).flops / 1e9  # attention is 1/1024 of `attention`
    assert within(per_token, fact.number, FLOPS_TOLERANCE), per_token
    at_ctx = measure("gpt2", seq_len=int(ctx)).flops / ctx / 1e9
    assert within(at_ctx - per_token, attention, FLOPS_TOLERANCE), at_ctx - per_token


def check_dlrm_rows(fact: Fact) -> None:
    rows = tuple(int(r) for r in fact.value.split(","))
    assert len(rows) == 26 and rows == dlrm_net.MLPERF_ROWS
    tables = measure("dlrm", rows_scale=1.0).model.embeddings.tables
    assert tuple(t.num_embeddings for t in tables) == rows


def check_dlrm_dim(fact: Fact) -> None:
    tables = measure("dlrm", rows_scale=1.0).model.embeddings.tables
    assert {t.embedding_dim for t in tables} == {int(fact.value)}


def check_dlrm_mlp(part: str) -> Callable[[Fact], None]:
    def check(fact: Fact) -> None:
        mlp = getattr(measure("dlrm").model, part).mlp
        linears = [m for m in mlp if isinstance(m, nn.Linear)]
        sizes = [linears[0].in_features] + [m.out_features for m in linears]
        assert "-".join(map(str, sizes)) == fact.value

    return check


def check_dlrm_embedding_params(fact: Fact) -> None:
    # Counted on a rows_scale=1 model built on the meta device (89.5 GiB never allocated).
    full = measure("dlrm", rows_scale=1.0).model
    counted = num_params(full.embeddings)
    assert counted == int(fact.value) == FULL_DLRM_EMBEDDING_PARAMS
    assert counted == dlrm_net.embedding_params(1.0)
    assert counted * 4 / 2**30 == pytest.approx(89.5, abs=0.05)  # "about 89.5 GiB fp32"


def check_dlrm_mlp_compute(fact: Fact) -> None:
    m = measure("dlrm")
    macs = (m.by_module["DLRM.bottom"] + m.by_module["DLRM.top"]) / 2
    assert within(macs, fact.number, FLOPS_TOLERANCE), macs


CHECKS: dict[tuple[str, str], Callable[[Fact], None]] = {
    ("resnet50-v1.5", "params"): check_params("resnet50"),
    ("resnet50-v1.5", "compute"): check_flops("resnet50"),  # GMAC
    ("resnet50-v1.5", "input"): check_input("resnet50"),
    ("bert-large", "params"): check_params("bert-large"),  # with the SQuAD head, no pooler
    ("bert-large", "compute_seq384"): check_flops("bert-large", seq_len=384),  # GOps = FLOPs
    ("bert-large", "config"): check_bert_config,
    ("bert-large", "input"): check_input("bert-large"),
    ("ssd-resnet34-1200", "compute"): check_flops("ssd-resnet34"),
    ("ssd-resnet34-1200", "params"): check_params("ssd-resnet34"),
    ("ssd-resnet34-1200", "input"): check_input("ssd-resnet34"),
    ("dlrm-mlperf-1tb", "embedding_rows"): check_dlrm_rows,
    ("dlrm-mlperf-1tb", "embedding_dim"): check_dlrm_dim,
    ("dlrm-mlperf-1tb", "bottom_mlp"): check_dlrm_mlp("bottom"),
    ("dlrm-mlperf-1tb", "top_mlp"): check_dlrm_mlp("top"),
    ("dlrm-mlperf-1tb", "embedding_params"): check_dlrm_embedding_params,
    ("dlrm-mlperf-1tb", "mlp_compute"): check_dlrm_mlp_compute,
    ("gpt2-small", "config"): check_gpt2_config,
    ("gpt2-small", "compute"): check_gpt2_compute,
    ("yolov5s-640", "params"): check_params("yolov5s"),
    ("yolov5s-640", "compute"): check_flops("yolov5s"),  # ultralytics GFLOPs = 2 x MAC
    ("yolov5m-640", "params"): check_params("yolov5m"),
    ("yolov5m-640", "compute"): check_flops("yolov5m"),
}
NOT_NUMBERS = {("mobilenetv2", "role")}  # a statement about AMP4EC, nothing to measure


@pytest.mark.parametrize("fact", FACTS, ids=[f"{f.model}:{f.quantity}" for f in FACTS])
def test_zoo_matches_the_published_facts(fact: Fact) -> None:
    key = (fact.model, fact.quantity)
    if key in NOT_NUMBERS:
        return
    assert key in CHECKS, f"no check for fact row {key}"
    CHECKS[key](fact)


# ---- full-size shapes (meta) and small-size forward passes (CPU) -----------------------

FULL_OUTPUTS = {
    "resnet50": [(1, 1000)],
    "bert-base": [(1, 384), (1, 384)],
    "bert-large": [(1, 384), (1, 384)],
    "ssd-resnet34": [(1, 4, 15130), (1, 81, 15130)],  # 50²x4 + 25²x6 + 13²x6 + 7²x6 + 2 x 3²x4
    "ssd-mobilenet": [(1, 4, 1917), (1, 91, 1917)],  # 19²x3 + (10² + 5² + 3² + 2² + 1)x6
    "dlrm": [(1, 1)],
    "gpt2": [(1, 1024, 50257)],
    "gpt2-medium": [(1, 1024, 50257)],
    "yolov5s": [(1, 25200, 85)],  # 3 anchors x (80² + 40² + 20²)
    "yolov5m": [(1, 25200, 85)],
    "mobilenetv2": [(1, 1000)],
}

SMALL: dict[str, tuple[dict[str, Any], list[tuple[int, ...]]]] = {
    "resnet50": ({"image_size": 64}, [(2, 1000)]),
    "bert-base": ({"seq_len": 16}, [(2, 16), (2, 16)]),
    "bert-large": ({"seq_len": 16}, [(2, 16), (2, 16)]),
    # the smallest image SSD takes: grids 17, 9, 5, 3, 1, 1 -> 17²x4 + 9²x6 + ... = 1854 boxes
    "ssd-resnet34": ({"image_size": 385}, [(2, 4, 1854), (2, 81, 1854)]),
    "ssd-mobilenet": ({"image_size": 64}, [(2, 4, 96), (2, 91, 96)]),  # 4²x3 + (2² + 4 x 1)x6
    "dlrm": ({"rows_scale": 1e-5}, [(2, 1)]),
    "gpt2": ({"seq_len": 16}, [(2, 16, 50257)]),
    "gpt2-medium": ({"seq_len": 16}, [(2, 16, 50257)]),
    "yolov5s": ({"image_size": 64}, [(2, 252, 85)]),  # 3 x (8² + 4² + 2²)
    "yolov5m": ({"image_size": 64}, [(2, 252, 85)]),
    "mobilenetv2": ({"image_size": 64}, [(2, 1000)]),
}


def as_tuple(output: Any) -> tuple[torch.Tensor, ...]:
    return output if isinstance(output, tuple) else (output,)


def test_catalog_is_the_issue_list() -> None:
    assert set(CATALOG) == set(SMALL) == set(FULL_OUTPUTS)
    for name, spec in CATALOG.items():
        assert spec.name == name and spec.family in FAMILIES
        assert spec.description and spec.input_desc
        assert get_model(name) is spec


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_full_size_output_shapes_on_meta(name: str) -> None:
    m = measure(name)
    assert isinstance(m.model, ZooModel)
    assert [tuple(t.shape) for t in as_tuple(m.output)] == FULL_OUTPUTS[name]


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_forward_on_cpu_at_a_small_size_equals_its_blocks(name: str) -> None:
    opts, shapes = SMALL[name]
    spec = CATALOG[name]
    model = spec.build(**opts)
    assert not model.training
    inputs = spec.make_input(2, **opts)
    with torch.no_grad():
        output = as_tuple(model(*inputs))
        chained = as_tuple(run_blocks(model.blocks(), inputs))
    assert [tuple(t.shape) for t in output] == shapes
    assert all(t.isfinite().all() for t in output)
    assert len(chained) == len(output)
    for ours, theirs in zip(output, chained, strict=True):
        scale = ours.abs().max().item()
        assert scale > 1e-6  # activations neither vanish nor make the comparison trivial
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6 * scale)
    # The blocks hold every parameter, so a partition over them places the whole model.
    blocks = model.blocks()
    assert len(blocks) > 2
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    assert in_blocks == {id(p) for p in model.parameters()}


def test_dlrm_outputs_are_probabilities_and_indices_in_range() -> None:
    spec = CATALOG["dlrm"]
    dense, sparse = spec.make_input(64, rows_scale=1e-4)
    rows = torch.tensor(dlrm_net.scaled_rows(1e-4))
    assert dense.shape == (64, 13) and sparse.shape == (64, 26)
    assert bool((sparse >= 0).all()) and bool((sparse < rows).all())
    with torch.no_grad():
        p = spec.build(rows_scale=1e-4)(dense, sparse)
    assert bool(((p > 0) & (p < 1)).all())


def test_dlrm_rows_scale_has_a_floor_of_one_row() -> None:
    rows = dlrm_net.scaled_rows(1e-6)
    assert min(rows) == 1 and rows[0] == 40  # ceil(39,884,406 x 1e-6)
    assert dlrm_net.embedding_params(1e-3) < 25e6  # the default fits anywhere (92 MiB)


def test_ssd_feature_grids() -> None:
    assert ssd_net.feature_sizes(1200) == (50, 25, 13, 7, 3, 3)
    assert ssd_net.feature_sizes(ssd_net.MIN_IMAGE_SIZE)[-1] == 1
    with pytest.raises(ModelOptionError, match="image_size"):
        CATALOG["ssd-resnet34"].make_input(1, image_size=ssd_net.MIN_IMAGE_SIZE - 1)


def test_ssd_mobilenet_is_mlperfs_ssd_small() -> None:
    # The MLPerf Inference paper's table of models: SSD-MobileNet-v1, 6.91M parameters,
    # 2.47 GOPs per 300x300 input (ours: 6,819,839, 1.3% fewer).
    m = measure("ssd-mobilenet")
    assert within(m.params, 6.91e6, 0.02), m.params
    assert within(m.flops / 1e9, 2.47, FLOPS_TOLERANCE), m.flops


# ---- determinism -----------------------------------------------------------------------


# bert-large and gpt2-medium are the classes of bert-base and gpt2 with a wider config: building
# each twice would cost 3 s and check no code path the smaller ones do not.
SAME_CODE_AS = {"bert-large": "bert-base", "gpt2-medium": "gpt2"}


@pytest.mark.parametrize("name", sorted(set(CATALOG) - set(SAME_CODE_AS)))
def test_two_builds_have_identical_weights(name: str) -> None:
    opts = SMALL[name][0]
    spec = CATALOG[name]
    rng = torch.get_rng_state()
    first = spec.build(**opts).state_dict()
    second = spec.build(**opts).state_dict()
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is left alone
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    a, b = spec.make_input(2, **opts), spec.make_input(2, **opts)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ---- options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "opts", "message"),
    [
        ("resnet50", {"seq_len": 16}, "takes no option seq_len; its options: image_size=224"),
        ("bert-base", {"seq_len": 513}, r"seq_len must be an integer in \[1, 512\]"),
        ("gpt2", {"seq_len": 0}, r"seq_len must be an integer in \[1, 1024\]"),
        ("yolov5s", {"image_size": 100}, "image_size must be a multiple of 32"),
        ("dlrm", {"rows_scale": 0}, r"rows_scale must be a number in \(0, 1\]"),
        ("dlrm", {"rows_scale": 2.0}, "rows_scale"),
    ],
)
def test_bad_options_are_explained(name: str, opts: dict[str, Any], message: str) -> None:
    spec = CATALOG[name]
    with pytest.raises(ModelOptionError, match=message):
        spec.build(**opts)
    with pytest.raises(ModelOptionError, match=message):
        spec.make_input(1, **opts)


def test_bad_batch_is_explained() -> None:
    with pytest.raises(ModelOptionError, match="batch must be a positive integer"):
        CATALOG["resnet50"].make_input(0)


# ---- names and user models -------------------------------------------------------------


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(UnknownModelError) as info:
        get_model("resnet51")
    message = str(info.value)
    assert "resnet51" in message and "package.module:function" in message
    assert all(name in message for name in CATALOG)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ModelError)


USER_MODULE = '''
    """A user's models, as a test writes them."""
    import torch
    from torch import nn

    FAMILY = "conv"


    def sequential():
        """A two-layer perceptron."""
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), torch.randn(1, 4)


    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(4, 4)
            self.second = nn.Linear(4, 2)

        def forward(self, x):
            return self.second(self.first(x))


    def chain():
        return Chain(), torch.randn(1, 4)


    class NotAChain(Chain):
        def forward(self, x):
            return self.second(torch.relu(self.first(x)))


    def not_a_chain():
        return NotAChain(), torch.randn(1, 4)


    class TwoInputs(nn.Module):
        family = "transformer"

        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)
            self.b = nn.Linear(5, 3)

        def forward(self, x, y):
            return self.a(x) + self.b(y)


    def two_inputs():
        return TwoInputs(), (torch.randn(1, 4), torch.randn(1, 5))


    def sized(width=4):
        return nn.Linear(width, 2), torch.randn(1, width)


    def not_a_pair():
        return nn.Linear(2, 2)


    def not_a_module():
        return "a model", torch.zeros(1, 2)


    def not_tensors():
        return nn.Linear(2, 2), [1.0, 2.0]


    def batch_of_two():
        return nn.Linear(2, 2), torch.zeros(2, 2)


    def bad_family():
        model = nn.Linear(2, 2)
        model.family = "cnn"
        return model, torch.zeros(1, 2)


    def fails():
        raise RuntimeError("needs a GPU")


    def terabyte():
        """2^38 weights: 1 TiB of float32."""
        return nn.Linear(1 << 19, 1 << 19), torch.randn(1, 1 << 19)


    CALLS = []


    def counted():
        CALLS.append(torch.empty(0).device.type)
        return nn.Linear(3, 2), torch.randn(1, 3)


    def needs_values():
        model = nn.Linear(2, 2)
        assert model.weight.abs().sum().item() >= 0  # data-dependent: fails on meta
        return model, torch.ones(1, 2)


    NOT_CALLABLE = 3
'''


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Writes `zoo_user_models` (and a module that fails to import) onto sys.path."""
    (tmp_path / "zoo_user_models.py").write_text(textwrap.dedent(USER_MODULE))
    (tmp_path / "zoo_user_broken.py").write_text("import edgetop_no_such_package\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "zoo_user_models"
    for name in ("zoo_user_models", "zoo_user_broken"):
        sys.modules.pop(name, None)


def test_user_model_sequential(user_modules: str) -> None:
    spec = get_model(f"{user_modules}:sequential")
    assert (spec.name, spec.family) == (f"{user_modules}:sequential", "conv")  # FAMILY
    assert spec.description == "A two-layer perceptron."
    assert spec.input_desc == "4 float32"
    model = spec.build()
    assert isinstance(model, UserModel) and isinstance(model, ZooModel) and not model.training
    (x,) = spec.make_input(3)
    assert x.shape == (3, 4) and torch.equal(x[0], x[2])  # the example, repeated
    blocks = model.blocks()
    assert [type(b) for b in blocks] == [nn.Linear, nn.ReLU, nn.Linear]
    with torch.no_grad():
        assert model(x).shape == (3, 2)
        assert torch.allclose(model.run_blocks(x), model(x))
    assert torch.equal(spec.build().module[0].weight, model.module[0].weight)  # seeded


def test_user_model_blocks_are_children_only_when_they_chain(user_modules: str) -> None:
    chain = get_model(f"{user_modules}:chain").build()
    assert [type(b) for b in chain.blocks()] == [nn.Linear, nn.Linear]
    assert chain.blocks() == [chain.module.first, chain.module.second]
    not_a_chain = get_model(f"{user_modules}:not_a_chain").build()
    assert not_a_chain.blocks() == [not_a_chain.module]  # a ReLU runs between them


def test_user_model_with_two_inputs(user_modules: str) -> None:
    spec = get_model(f"{user_modules}:two_inputs")
    assert spec.family == "transformer"  # the module's own attribute wins
    assert spec.input_desc == "4 float32, 5 float32"
    model = spec.build()
    x, y = spec.make_input(2)
    assert (x.shape, y.shape) == ((2, 4), (2, 5))
    (block,) = model.blocks()  # children that do not chain: the module is the one block,
    assert block.module is model.module  # taking the tuple of inputs as its state
    with torch.no_grad():
        assert torch.equal(model.run_blocks(x, y), model(x, y))
    with torch.device("meta"):
        meta_model = spec.build()
    meta_inputs = spec.make_input(1, device="meta")
    assert meta_model(*meta_inputs).shape == (1, 3)


def test_user_model_lookup_allocates_nothing(user_modules: str) -> None:
    spec = get_model(f"{user_modules}:terabyte")  # on meta: instant, no memory
    assert spec.description == "2^38 weights: 1 TiB of float32."
    with torch.device("meta"):
        model = spec.build()
    assert num_params(model) == (1 << 38) + (1 << 19)
    assert spec.make_input(4, device="meta")[0].shape == (4, 1 << 19)


def test_user_model_inputs_repeat_the_example_of_the_build(user_modules: str) -> None:
    spec = get_model(f"{user_modules}:counted")
    calls = sys.modules[user_modules].CALLS
    assert calls == ["meta"]
    model = spec.build()
    (x,) = spec.make_input(2)
    assert calls == ["meta", "cpu"]  # make_input reused the build's example
    assert torch.equal(x[0], model._example[0][0])


def test_user_model_that_needs_values_is_looked_up_on_the_cpu(user_modules: str) -> None:
    spec = get_model(f"{user_modules}:needs_values")
    assert spec.make_input(3)[0].tolist() == [[1.0, 1.0]] * 3


def test_user_model_options_reach_the_function(user_modules: str) -> None:
    spec = get_model(f"{user_modules}:sized")
    assert spec.family == "conv" and spec.build(width=6).module.in_features == 6
    assert spec.make_input(2, width=6)[0].shape == (2, 6)
    with pytest.raises(ModelOptionError, match="rejected options"):
        spec.build(depth=3)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("zoo_user_models", "unknown model 'zoo_user_models'.*package.module:function"),
        ("zoo_user_models:", "neither a zoo model .* nor a user model written package.module:f"),
        ("zoo user:sequential", "package.module:function"),
        ("zoo_user_models:sequential:x", "package.module:function"),
        ("zoo_user_broken:model", "cannot import 'zoo_user_broken'.*edgetop_no_such_package"),
        ("zoo_user_absent:model", "cannot import 'zoo_user_absent': ModuleNotFoundError"),
        ("zoo_user_models:missing", "has no function 'missing'"),
        ("zoo_user_models:NOT_CALLABLE", "is a int, not a function"),
        ("zoo_user_models:not_a_pair", "must return .*Module, example input.*, not Linear"),
        ("zoo_user_models:not_a_module", "returned a str where a torch.nn.Module belongs"),
        ("zoo_user_models:not_tensors", "example input must be a tensor or a tuple of tensors"),
        ("zoo_user_models:batch_of_two", r"batch 1 on dim 0, got shapes \[\(2, 2\)\]"),
        ("zoo_user_models:bad_family", "family 'cnn' is not one of conv, transformer"),
        ("zoo_user_models:fails", "calling the function failed: RuntimeError: needs a GPU"),
    ],
)
def test_user_model_errors_say_what_is_wrong(user_modules: str, name: str, message: str) -> None:
    with pytest.raises(UnknownModelError, match=message) as info:
        get_model(name)
    assert isinstance(info.value, ModelError) and isinstance(info.value, KeyError)


def test_a_name_must_be_a_string() -> None:
    with pytest.raises(UnknownModelError, match="a model name is a string"):
        get_model(None)  # type: ignore[arg-type]
