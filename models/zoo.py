# ruff: noqa: UP006, UP035, UP045
# runs on the hosts' Python >= 3.8 (JetPack 5): typing's generics where evaluated at runtime
"""The model zoo: the MLPerf workloads and the held-out models, as pure torch definitions.

    spec = get_model("resnet50")           # a ModelSpec from CATALOG, or "package.module:function"
    model = spec.build()                   # seeded random weights (torch.manual_seed(0)), eval mode
    inputs = spec.make_input(8)            # a tuple: model(*inputs)
    model.run_blocks(*inputs)              # the same result, block by block (see nets/base.py)

Nothing is downloaded and torchvision is not used; weights are random but identical on every
build (the CPU RNG is left as it was). Every network also builds on the meta device, which
is how full-size parameters and FLOPs are measured at no cost:

    with torch.device("meta"):
        model = spec.build()
    inputs = spec.make_input(1, device="meta")

Options (keyword arguments, accepted alike by `build` and `make_input`, defaults in
`spec.options`): `image_size` for the conv and detector models, `seq_len` for BERT (<= 512)
and GPT-2 (<= 1024), `rows_scale` for DLRM (embedding rows scaled down, default 1e-3: the full
tables are 24.0 G parameters, 89.5 GiB, see nets/dlrm.py). Small values make CPU tests cheap:
`make_input(2, image_size=64)`, `seq_len=16`, `rows_scale=1e-5`.

MAC vs FLOP. `torch.utils.flop_counter.FlopCounterMode` counts 2 FLOPs per multiply-accumulate
of matmuls and convolutions (and nothing for element-wise ops, norms or pooling); the zoo and
the workload features use that count. The reference facts (tests/fixtures/model_facts.csv)
are compared as follows:
  - torchvision's "GFLOPS" for ResNet-50 (4.09) are GMAC: compared with counted / 2.
  - open_model_zoo's "GOps" for BERT-large at seq 384 (246.93) are FLOPs = 2 x MAC: the counted
    figure matches it directly (the MAC reading would be off by a factor of two).
  - open_model_zoo's "GFLOPs" for SSD-ResNet34 (433.411) are 2 x MAC: compared directly.
  - ultralytics' "GFLOPs" for YOLOv5 at 640 are 2 x the MACs of its profiler: compared directly.
  - DLRM's "MAC per sample" (2.37e6) covers the bottom and top MLPs: compared with the MLPs'
    counted FLOPs / 2 (the dot interaction adds 93,312 MAC on top).
  - GPT-2's "GFLOP per token" (0.247, plus 0.038 of attention at 1024 context) is 2 x MAC:
    0.247 is compared with the count at seq_len=1, 0.038 with the per-token count at 1024
    less that.
Count on the meta device: there `scaled_dot_product_attention` decomposes into the two
matmuls FlopCounterMode sees, whereas on the CPU its fused kernel is not counted at all (the
BERT and GPT-2 attention FLOPs would be missing).

Measured (meta device, batch 1; tests/test_zoo.py checks every row of model_facts.csv):

    model           quantity              ours                  fact              off
    resnet50        params                25,557,032            25,557,032        0.00%
    resnet50        compute (GMAC)        4.089                 4.09              -0.02%
    bert-large      params (+QA head)     334,094,338           333.96e6          +0.04%
    bert-large      GOps at seq 384       246.43 GFLOPs         246.93            -0.20%
    ssd-resnet34    params                19,972,534            20.058e6          -0.43%
    ssd-resnet34    GFLOPs at 1200        432.83                433.411           -0.13%
    dlrm            embedding params      24,034,227,072        24,034,227,072    exact
    dlrm            MLP MAC per sample    2,365,184             2.37e6            -0.20%
    gpt2            params                124,439,808           124M              +0.35%
    gpt2            GFLOP per token       0.2471 (+0.0377 attn) 0.247 (+0.038)    +0.04%
    yolov5s         params / GFLOPs       7,235,389 / 16.43     7.2e6 / 16.5      +0.49% / -0.40%
    yolov5m         params / GFLOPs       21,190,557 / 48.87    21.2e6 / 49.0     -0.04% / -0.26%

User models: `get_model("package.module:function")` imports the module and calls the
function, which returns `(module, example_input)`, example at batch 1 (a tensor or a tuple of
tensors). get_model calls it on the meta device, so looking up even a terabyte model allocates
nothing (a function that fails on meta is called again on the CPU); `build(**options)` calls
it again, options passed on, on the current device; `make_input(batch)` repeats the example of
the last build along dim 0 (calling the function on the CPU if nothing was built yet). Bad
names, import errors, a function that raises or returns the wrong thing: UnknownModelError
saying which. The family is the module's `family` attribute, else the Python module's
`FAMILY`, else "custom". The blocks are the module's children when it is an `nn.Sequential`
or when chaining its children on the example reproduces its output; otherwise the module
itself is the only block (wrapped in `SpreadInputs` when it takes several inputs, so that it
too takes the one tuple state).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Dict, Optional

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from edgetop.models.errors import ModelError, ModelOptionError, UnknownModelError
from edgetop.models.nets import ZooModel, run_blocks
from edgetop.models.nets import bert as bert_net
from edgetop.models.nets import dlrm as dlrm_net
from edgetop.models.nets import gpt2 as gpt2_net
from edgetop.models.nets import ssd as ssd_net
from edgetop.models.nets import ssd_mobilenet as ssd_mobilenet_net
from edgetop.models.nets import yolov5 as yolo_net
from edgetop.models.nets.base import zip_strict
from edgetop.models.nets.mobilenet import MobileNetV2
from edgetop.models.nets.resnet import ResNet50

__all__ = [
    "CATALOG",
    "FAMILIES",
    "FULL_DLRM_EMBEDDING_PARAMS",
    "ModelError",
    "ModelOptionError",
    "ModelSpec",
    "UnknownModelError",
    "UserModel",
    "ZooModel",
    "get_model",
]

FAMILIES = ("conv", "transformer", "recommender", "detector", "language-model", "custom")
SEED = 0
FULL_DLRM_EMBEDDING_PARAMS = dlrm_net.embedding_params(1.0)  # 24,034,227,072 (89.5 GiB fp32)

# Evaluated at import: typing's generics, as collections.abc's and dict[...] need 3.9.
Builder = Callable[..., nn.Module]
InputMaker = Callable[[int, torch.device, Optional[torch.Generator], Dict[str, Any]], tuple]


@dataclass(frozen=True)
class ModelSpec:
    """A named workload: how to build the network and how to make inputs for it."""

    name: str
    family: str
    description: str
    input_desc: str
    # Option defaults; build and make_input take the same keywords. None: anything, passed on
    # (user models hand them to their function).
    options: Mapping[str, Any] | None = field(default_factory=dict, hash=False)
    builder: Builder = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    input_maker: InputMaker = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    validate: Callable[[dict[str, Any]], None] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.options is not None:  # read-only, so a caller cannot change the defaults
            object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def resolve(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The options with defaults filled in; unknown names and bad values raise."""
        if self.options is None:
            return dict(kwargs)
        unknown = sorted(set(kwargs) - set(self.options))
        if unknown:
            valid = ", ".join(f"{k}={v!r}" for k, v in self.options.items()) or "none"
            raise ModelOptionError(
                f"model {self.name!r} takes no option {', '.join(unknown)}; its options: {valid}"
            )
        opts = {**self.options, **kwargs}
        if self.validate is not None:
            self.validate(opts)
        return opts

    def build(self, **kwargs: Any) -> ZooModel:
        """The network with seeded random weights, in eval mode, on the current default device."""
        opts = self.resolve(kwargs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            model = self.builder(**opts)
        return model.eval()

    def make_input(
        self, batch: int, device: str | torch.device = "cpu", **kwargs: Any
    ) -> tuple[torch.Tensor, ...]:
        """Arguments for `forward(*inputs)` at `batch` (seeded random values; empty on meta)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ModelOptionError(f"batch must be a positive integer, not {batch!r}")
        opts = self.resolve(kwargs)
        device = torch.device(device)
        gen = None if device.type == "meta" else torch.Generator(device=device).manual_seed(SEED)
        return tuple(self.input_maker(batch, device, gen, opts))


# ---- inputs -----------------------------------------------------------------------------


def _image(normalized: bool) -> InputMaker:
    def make(batch: int, device: torch.device, gen: Any, opts: dict[str, Any]) -> tuple:
        shape = (batch, 3, opts["image_size"], opts["image_size"])
        draw = torch.randn if normalized else torch.rand
        return (draw(shape, generator=gen, device=device),)

    return make


def _bert_input(batch: int, device: torch.device, gen: Any, opts: dict[str, Any]) -> tuple:
    t = opts["seq_len"]
    ids = torch.randint(bert_net.BERT_BASE.vocab, (batch, t), generator=gen, device=device)
    mask = torch.ones(batch, t, dtype=torch.int64, device=device)
    segments = (torch.arange(t, device=device) >= t // 2).to(torch.int64)  # question, context
    return ids, mask, segments.expand(batch, t).contiguous()


def _gpt2_input(batch: int, device: torch.device, gen: Any, opts: dict[str, Any]) -> tuple:
    return (
        torch.randint(
            gpt2_net.GPT2_SMALL.vocab, (batch, opts["seq_len"]), generator=gen, device=device
        ),
    )


def _dlrm_input(batch: int, device: torch.device, gen: Any, opts: dict[str, Any]) -> tuple:
    dense = torch.rand(batch, dlrm_net.DENSE_FEATURES, generator=gen, device=device)
    rows = dlrm_net.scaled_rows(opts["rows_scale"])
    sparse = torch.stack(
        [torch.randint(n, (batch,), generator=gen, device=device) for n in rows], dim=1
    )
    return dense, sparse


# ---- option checks ----------------------------------------------------------------------


def _int_option(opts: dict[str, Any], key: str, low: int, high: int, multiple: int = 1) -> None:
    value = opts[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelOptionError(f"{key} must be an integer in [{low}, {high}], not {value!r}")
    if value % multiple:
        raise ModelOptionError(f"{key} must be a multiple of {multiple}, not {value}")


def _image_check(minimum: int, multiple: int = 1) -> Callable[[dict[str, Any]], None]:
    return lambda opts: _int_option(opts, "image_size", minimum, 8192, multiple)


def _seq_check(maximum: int) -> Callable[[dict[str, Any]], None]:
    return lambda opts: _int_option(opts, "seq_len", 1, maximum)


def _dlrm_check(opts: dict[str, Any]) -> None:
    value = opts["rows_scale"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ModelOptionError(f"rows_scale must be a number in (0, 1], not {value!r}")


# ---- the catalog ------------------------------------------------------------------------


def _catalog() -> dict[str, ModelSpec]:
    def image_desc(size: int, normalized: bool = True) -> str:
        values = "normalized" if normalized else "RGB in [0, 1)"
        return f"3x{size}x{size} float32 image, {values} (option image_size={size})"

    bert_desc = (
        "3 x (seq_len) int64: input_ids, attention_mask, token_type_ids (option seq_len=384, "
        "<= 512)"
    )
    gpt2_desc = "(seq_len) int64 token ids (option seq_len=1024, <= 1024)"
    specs = [
        ModelSpec(
            "resnet50",
            "conv",
            "ResNet-50 v1.5 ImageNet classifier (MLPerf resnet50), 1000 classes",
            image_desc(224),
            {"image_size": 224},
            lambda **_: ResNet50(),
            _image(normalized=True),
            _image_check(32),
        ),
        ModelSpec(
            "bert-base",
            "transformer",
            "BERT-base (12 layers, 768 hidden, 12 heads) with the SQuAD start/end head",
            bert_desc,
            {"seq_len": 384},
            lambda **_: bert_net.BertQA(bert_net.BERT_BASE),
            _bert_input,
            _seq_check(bert_net.BERT_BASE.max_positions),
        ),
        ModelSpec(
            "bert-large",
            "transformer",
            "BERT-large (24 layers, 1024 hidden, 16 heads) with the SQuAD start/end head "
            "(MLPerf bert-99)",
            bert_desc,
            {"seq_len": 384},
            lambda **_: bert_net.BertQA(bert_net.BERT_LARGE),
            _bert_input,
            _seq_check(bert_net.BERT_LARGE.max_positions),
        ),
        ModelSpec(
            "ssd-resnet34",
            "detector",
            "SSD with a ResNet-34 trunk at 1200x1200, COCO 81 classes (MLPerf ssd-large); "
            "raw loc/conf outputs, no NMS",
            image_desc(1200) + f", >= {ssd_net.MIN_IMAGE_SIZE}",
            {"image_size": 1200},
            lambda **_: ssd_net.SSDResNet34(),
            _image(normalized=True),
            _image_check(ssd_net.MIN_IMAGE_SIZE),
        ),
        ModelSpec(
            "ssd-mobilenet",
            "detector",
            "SSD with a MobileNet-v1 trunk at 300x300, COCO 91 classes (MLPerf ssd-small); "
            "raw loc/conf outputs, no NMS",
            image_desc(300),
            {"image_size": 300},
            lambda **_: ssd_mobilenet_net.SSDMobileNetV1(),
            _image(normalized=True),
            _image_check(ssd_mobilenet_net.MIN_IMAGE_SIZE),
        ),
        ModelSpec(
            "dlrm",
            "recommender",
            "DLRM, MLPerf 1TB structure: 26 tables x 128, MLPs 13-512-256-128 and "
            "479-1024-1024-512-256-1, dot interaction; embedding rows scaled by rows_scale "
            "(the full tables are 24.0 G parameters, 89.5 GiB)",
            "13 float32 dense features + 26 int64 categorical indices "
            f"(option rows_scale={dlrm_net.DEFAULT_ROWS_SCALE})",
            {"rows_scale": dlrm_net.DEFAULT_ROWS_SCALE},
            lambda rows_scale, **_: dlrm_net.DLRM(rows_scale),
            _dlrm_input,
            _dlrm_check,
        ),
        ModelSpec(
            "gpt2",
            "language-model",
            "GPT-2 small (124M: 12 layers, 12 heads, 768 wide), logits for every position",
            gpt2_desc,
            {"seq_len": 1024},
            lambda **_: gpt2_net.GPT2(gpt2_net.GPT2_SMALL),
            _gpt2_input,
            _seq_check(gpt2_net.GPT2_SMALL.context),
        ),
        ModelSpec(
            "gpt2-medium",
            "language-model",
            "GPT-2 medium (355M: 24 layers, 16 heads, 1024 wide), logits for every position",
            gpt2_desc,
            {"seq_len": 1024},
            lambda **_: gpt2_net.GPT2(gpt2_net.GPT2_MEDIUM),
            _gpt2_input,
            _seq_check(gpt2_net.GPT2_MEDIUM.context),
        ),
        ModelSpec(
            "yolov5s",
            "detector",
            "YOLOv5s v6 (CSPDarknet/C3, SPPF, PANet, Detect), COCO 80 classes; "
            "decoded boxes before NMS",
            image_desc(640, normalized=False) + ", a multiple of 32",
            {"image_size": 640},
            lambda **_: yolo_net.YOLOv5(yolo_net.YOLOV5S),
            _image(normalized=False),
            _image_check(32, multiple=32),
        ),
        ModelSpec(
            "yolov5m",
            "detector",
            "YOLOv5m v6 (CSPDarknet/C3, SPPF, PANet, Detect), COCO 80 classes; "
            "decoded boxes before NMS",
            image_desc(640, normalized=False) + ", a multiple of 32",
            {"image_size": 640},
            lambda **_: yolo_net.YOLOv5(yolo_net.YOLOV5M),
            _image(normalized=False),
            _image_check(32, multiple=32),
        ),
        ModelSpec(
            "mobilenetv2",
            "conv",
            "MobileNetV2 (width 1.0) ImageNet classifier, 1000 classes (the AMP4EC model)",
            image_desc(224),
            {"image_size": 224},
            lambda **_: MobileNetV2(),
            _image(normalized=True),
            _image_check(32),
        ),
    ]
    return {spec.name: spec for spec in specs}


CATALOG: Mapping[str, ModelSpec] = MappingProxyType(_catalog())


# ---- user models ------------------------------------------------------------------------

_USER_SPEC = re.compile(r"(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<function>[A-Za-z_]\w*)")


def _same_output(a: Any, b: Any) -> bool:
    flat_a, spec_a = tree_flatten(a)
    flat_b, spec_b = tree_flatten(b)
    if spec_a != spec_b or not flat_a:  # equal specs: as many leaves on both sides
        return False
    return all(
        isinstance(x, torch.Tensor)
        and isinstance(y, torch.Tensor)
        and x.shape == y.shape
        and torch.allclose(x, y, rtol=1e-4, atol=1e-5)
        for x, y in zip_strict(flat_a, flat_b)
    )


class SpreadInputs(nn.Module):
    """A multi-input module as one block: the state (the tuple of inputs) becomes its args."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, state: tuple[torch.Tensor, ...]) -> Any:
        return self.module(*state)


class UserModel(ZooModel):
    """A user's module as a zoo model; `forward` is the module's own."""

    def __init__(self, module: nn.Module, example: tuple[torch.Tensor, ...]) -> None:
        super().__init__()
        self.module = module
        self._example = example
        self._blocks: list[nn.Module] | None = None

    @property
    def example(self) -> tuple[torch.Tensor, ...]:
        """The inputs at batch 1 the user's function returned with the module."""
        return self._example

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.module(*inputs)

    def blocks(self) -> list[nn.Module]:
        if self._blocks is None:
            self._blocks = self._find_blocks()
        return self._blocks

    def _find_blocks(self) -> list[nn.Module]:
        whole = [self.module] if len(self._example) == 1 else [SpreadInputs(self.module)]
        children = list(self.module.children())
        if isinstance(self.module, nn.Sequential) and children:
            return children
        if len(children) < 2:
            return whole
        # Other modules: the children are the blocks if chaining them reproduces forward.
        tensors = [*self.module.parameters(), *self.module.buffers(), *self._example]
        if any(t.is_meta for t in tensors):
            return whole  # nothing to compare on the meta device
        device = next(iter(self.module.parameters()), self._example[0]).device
        example = tuple(t.to(device) for t in self._example)
        try:
            with torch.no_grad():
                ok = _same_output(self.module(*example), run_blocks(children, example))
        except Exception:  # children that do not chain: the module is one block
            ok = False
        return children if ok else whole


class _FunctionFailed(UnknownModelError):
    """The user's function raised (rather than returning the wrong thing)."""


def _call_user(name: str, function: Callable[..., Any], kwargs: dict[str, Any]) -> tuple:
    """Call the user's function (seeded); check it returned (module, example at batch 1)."""
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            result = function(**kwargs)
    except TypeError as exc:
        if kwargs:
            raise ModelOptionError(f"model {name!r} rejected options {kwargs}: {exc}") from exc
        raise _FunctionFailed(f"model {name!r}: calling the function failed: {exc}") from exc
    except Exception as exc:
        raise _FunctionFailed(
            f"model {name!r}: calling the function failed: {type(exc).__name__}: {exc}"
        ) from exc
    expected = "(torch.nn.Module, example input tensor or tuple of tensors at batch 1)"
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise UnknownModelError(
            f"model {name!r}: the function must return {expected}, not {type(result).__name__}"
        )
    module, example = result
    if not isinstance(module, nn.Module):
        raise UnknownModelError(
            f"model {name!r}: the function returned a {type(module).__name__} where a "
            f"torch.nn.Module belongs; it must return {expected}"
        )
    if isinstance(example, torch.Tensor):
        example = (example,)
    if (
        not isinstance(example, (tuple, list))
        or not example
        or not all(isinstance(t, torch.Tensor) for t in example)
    ):
        raise UnknownModelError(
            f"model {name!r}: the example input must be a tensor or a tuple of tensors, "
            f"not {type(example).__name__}"
        )
    shapes = [tuple(t.shape) for t in example]
    if any(not s or s[0] != 1 for s in shapes):
        raise UnknownModelError(
            f"model {name!r}: the example input must have batch 1 on dim 0, got shapes {shapes}"
        )
    return module, tuple(example)


def _user_model(name: str) -> ModelSpec:
    match = _USER_SPEC.fullmatch(name)
    if match is None:
        raise UnknownModelError(
            f"{name!r} is neither a zoo model ({', '.join(CATALOG)}) nor a user model "
            "written package.module:function"
        )
    module_name, function_name = match["module"], match["function"]
    try:
        pymodule = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises as it imports
        raise UnknownModelError(
            f"model {name!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    function = getattr(pymodule, function_name, None)
    if function is None:
        raise UnknownModelError(
            f"model {name!r}: module {module_name!r} has no function {function_name!r}"
        )
    if not callable(function):
        raise UnknownModelError(
            f"model {name!r}: {module_name}.{function_name} is a "
            f"{type(function).__name__}, not a function"
        )
    # Looked up on the meta device: nothing is allocated however large the model (the worker
    # checks free memory before it builds). A function that cannot run on meta runs for real.
    try:
        with torch.device("meta"):
            module, example = _call_user(name, function, {})
    except _FunctionFailed:
        with torch.device("cpu"):
            module, example = _call_user(name, function, {})
    family = getattr(module, "family", None) or getattr(pymodule, "FAMILY", None) or "custom"
    if family not in FAMILIES:
        raise UnknownModelError(
            f"model {name!r}: family {family!r} is not one of {', '.join(FAMILIES)}"
        )
    doc = (function.__doc__ or "").strip().splitlines()
    description = doc[0] if doc else f"user model {type(module).__name__} from {name}"
    input_desc = ", ".join(
        f"{'x'.join(map(str, t.shape[1:])) or 'scalar'} {_without_prefix(str(t.dtype), 'torch.')}"
        for t in example
    )
    # The example with values, per options, from the last real build (make_input repeats it).
    examples: dict[str, tuple[torch.Tensor, ...]] = {}
    if not any(t.is_meta for t in example):
        examples[_options_key({})] = example

    def builder(**kwargs: Any) -> UserModel:
        module, example = _call_user(name, function, kwargs)
        if not any(t.is_meta for t in example):
            examples[_options_key(kwargs)] = example
        return UserModel(module, example)

    def input_maker(batch: int, device: torch.device, gen: Any, opts: dict[str, Any]) -> tuple:
        key = _options_key(opts)
        if device.type == "meta":
            base = example if not opts else _meta_example(name, function, opts)
        elif key in examples:
            base = examples[key]
        else:  # no real build yet: call the function on the CPU once for its example
            with torch.device("cpu"):
                base = examples[key] = _call_user(name, function, opts)[1]
        return tuple(t.to(device).repeat(batch, *([1] * (t.dim() - 1))) for t in base)

    return ModelSpec(
        name, family, description, input_desc, None, builder, input_maker, validate=None
    )


def _without_prefix(text: str, prefix: str) -> str:
    """`text.removeprefix(prefix)`, which the hosts' Python 3.8 does not have."""
    return text[len(prefix) :] if text.startswith(prefix) else text


def _options_key(opts: Mapping[str, Any]) -> str:
    return repr(sorted(opts.items()))


def _meta_example(name: str, function: Callable[..., Any], opts: dict[str, Any]) -> tuple:
    with torch.device("meta"):
        return _call_user(name, function, opts)[1]


def get_model(name: str) -> ModelSpec:
    """The spec of a catalog model, or of a user model named `package.module:function`."""
    if not isinstance(name, str):
        raise UnknownModelError(f"a model name is a string, not {type(name).__name__}")
    spec = CATALOG.get(name)
    if spec is not None:
        return spec
    if ":" in name:
        return _user_model(name)
    raise UnknownModelError(
        f"unknown model {name!r}; the zoo has: {', '.join(CATALOG)} "
        "(or name your own as package.module:function; a non-torch server declared in "
        "workloads.toml is run by the worker, never built by the zoo)"
    )
