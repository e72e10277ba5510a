"""What each block of a model costs: FLOPs, parameter bytes, output bytes, peak activations.

The partitioner (core/partition.py) splits a model at block boundaries; it needs, per block,
the compute it does, the weights a stage holding it must keep, the bytes its output state
weighs when shipped to the next stage, and the activation memory it peaks at.

    costs = block_costs("mobilenetv2")                  # a zoo model, at its default size
    costs = block_costs("resnet50", image_size=64)      # options go to build and make_input
    costs = block_costs("mypkg.mymod:make")             # a user's model, linearised by torch.fx

Measured like models/features.py: on torch's META device (exact shapes and FLOP counts, no
weights allocated), FLOPs from `FlopCounterMode` (2 per multiply-accumulate), live activation
bytes from the same dispatch-mode tracker. Figures are PER SAMPLE, measured at `batch` and
divided by it (activations and outputs scale linearly with the batch; weights do not and are
not divided).

Zoo models come with their own ordered `blocks()` (models/nets/base.py). A user's model
(`package.module:function`) is linearised here through torch.fx instead: `symbolic_trace`
gives its graph, a cut between two nodes is allowed where exactly one tensor value is live
across it (every later node reads only that value, parameters aside), and each stretch between
allowed cuts becomes a `GraphModule` block taking that one tensor. Stretches that do no counted
FLOPs (activations, pooling, reshapes) are merged into the block before them. When fx cannot
trace the module (data-dependent control flow) or no allowed cut exists (two branches live all
the way to the output), `ModelError` says so.

torch is imported lazily: core/partition.py imports `BlockCost` without paying for torch.
Like the zoo, this runs on the hosts' Python >= 3.8 (a pipeline stage linearises a user's
model with `user_blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgetop.models.errors import ModelError

if TYPE_CHECKING:
    import torch
    from torch import fx, nn

    from edgetop.models.zoo import ModelSpec

__all__ = ["BlockCost", "block_costs", "linearise", "measure_blocks", "user_blocks"]

GIGA = 1e9


@dataclass(frozen=True)
class BlockCost:
    """One block's cost, per sample except `param_bytes` (weights do not grow with batch)."""

    index: int
    name: str
    gflops: float  # counted FLOPs per sample (2 per MAC), in units of 1e9
    param_bytes: int  # parameters and buffers the block holds
    out_bytes: int  # bytes of the state it hands to the next block, per sample
    peak_bytes: int  # peak live activations while it runs (its input state included), per sample

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "gflops": self.gflops,
            "param_bytes": self.param_bytes,
            "out_bytes": self.out_bytes,
            "peak_bytes": self.peak_bytes,
        }


def _state_bytes(state: Any) -> int:
    import torch
    from torch.utils._pytree import tree_flatten

    return sum(
        t.numel() * t.element_size() for t in tree_flatten(state)[0] if isinstance(t, torch.Tensor)
    )


def _held_bytes(block: nn.Module) -> int:
    tensors = [*block.parameters(), *block.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_blocks(
    blocks: Sequence[nn.Module],
    inputs: Sequence[torch.Tensor],
    names: Sequence[str] | None = None,
    batch: int = 1,
) -> tuple[BlockCost, ...]:
    """Run `blocks` in order on `inputs` (at `batch`, any device; meta costs nothing), one
    FLOP counter and one activation tracker per block; figures divided by `batch`."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from edgetop.models.features import _LiveActivations
    from edgetop.models.nets import first_state

    if names is not None and len(names) != len(blocks):
        raise ValueError(f"{len(names)} names for {len(blocks)} blocks")
    state = first_state(inputs)
    costs: list[BlockCost] = []
    for i, block in enumerate(blocks):
        flops = FlopCounterMode(display=False)
        live = _LiveActivations()
        with torch.no_grad(), flops, live:
            out = block(state)
        in_bytes = _state_bytes(state)
        costs.append(
            BlockCost(
                index=i,
                name=names[i] if names is not None else type(block).__name__,
                gflops=flops.get_total_flops() / GIGA / batch,
                param_bytes=_held_bytes(block),
                out_bytes=_state_bytes(out) // batch,
                peak_bytes=(in_bytes + live.peak) // batch,
            )
        )
        state = out
    return tuple(costs)


def _block_names(model: nn.Module, blocks: Sequence[nn.Module]) -> list[str]:
    """Each block's qualified name inside the model ("features.3"), else its class name."""
    where = {id(m): name for name, m in model.named_modules() if name}
    return [where.get(id(b), f"{type(b).__name__}[{i}]") for i, b in enumerate(blocks)]


def block_costs(
    model: str | ModelSpec | nn.Module,
    batch: int = 1,
    inputs: Sequence[torch.Tensor] | None = None,
    **options: Any,
) -> tuple[BlockCost, ...]:
    """Per-block costs of a zoo model, a user model (`package.module:function`, linearised by
    torch.fx) or a built ZooModel (then `inputs`, at `batch`, are required)."""
    import torch

    from edgetop.models.zoo import ModelSpec, UserModel, get_model

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ModelError(f"batch must be a positive integer, not {batch!r}")
    if isinstance(model, torch.nn.Module):
        if inputs is None:
            raise ModelError("block_costs of a built model needs its inputs")
        return _costs_of(model, tuple(inputs), batch)
    spec = model if isinstance(model, ModelSpec) else get_model(model)
    with torch.device("meta"):
        built = spec.build(**options)
    meta_inputs = spec.make_input(batch, device="meta", **options)
    if isinstance(built, UserModel):
        return _costs_of(built.module, meta_inputs, batch)
    return _costs_of(built, meta_inputs, batch)


def _costs_of(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], batch: int
) -> tuple[BlockCost, ...]:
    from edgetop.models.nets import ZooModel

    if isinstance(model, ZooModel) and not _is_user_wrapper(model):
        blocks = model.blocks()
        return measure_blocks(blocks, inputs, _block_names(model, blocks), batch)
    blocks, names = linearise(model, inputs)
    return measure_blocks(blocks, inputs, names, batch)


def _is_user_wrapper(model: nn.Module) -> bool:
    from edgetop.models.zoo import UserModel

    return isinstance(model, UserModel)


def user_blocks(module: nn.Module, example: Sequence[torch.Tensor]) -> list[nn.Module]:
    """A user's module as sequential blocks (fx GraphModules): what a pipeline stage runs.
    `run_blocks(user_blocks(m, x), x)` equals `m(*x)`."""
    return list(linearise(module, tuple(example))[0])


# ---- torch.fx linearisation ---------------------------------------------------------------


def linearise(
    module: nn.Module, example: tuple[torch.Tensor, ...]
) -> tuple[list[fx.GraphModule], list[str]]:
    """The module's graph cut where exactly one tensor is live; (blocks, names). ModelError
    when fx cannot trace it or it has no such cut."""
    import torch
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    label = type(module).__name__
    try:
        traced = fx.symbolic_trace(module)
    except Exception as exc:  # TraceError, or whatever the module's Python raises on proxies
        raise ModelError(
            f"cannot split {label}: torch.fx cannot trace it ({type(exc).__name__}: "
            f"{_first_line(exc)}); data-dependent control flow (an `if` or loop on tensor "
            "values) is the usual cause: move it out of forward or make it a leaf module"
        ) from exc
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(example):
        raise ModelError(
            f"cannot split {label}: forward takes {len(placeholders)} inputs, the example has "
            f"{len(example)}"
        )
    try:
        with torch.no_grad():
            ShapeProp(traced).propagate(*example)
    except Exception as exc:
        raise ModelError(
            f"cannot split {label}: running its traced graph on the example failed "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    ops = [n for n in traced.graph.nodes if n.op in ("call_module", "call_function", "call_method")]
    if not ops:
        raise ModelError(f"cannot split {label}: its graph computes nothing")
    carried = _single_tensor_cuts(traced.graph, ops)  # boundary b -> the tensor live across it
    if not carried and len(ops) > 1:
        raise ModelError(
            f"cannot split {label}: no point in its graph has exactly one tensor live across it "
            f"({len(ops)} operations; branches stay live until the output), so it runs only "
            "whole"
        )
    bounds = [0, *carried, len(ops)]
    pairs = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]  # hosts' Python 3.8
    spans = _merge_flopless(traced, ops, carried, pairs, example) if carried else pairs
    blocks = [_segment(traced, ops, carried, a, b) for a, b in spans]
    return blocks, [_span_name(ops, a, b) for a, b in spans]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "no message"


def _is_tensor(node: fx.Node) -> bool:
    from torch.fx.passes.shape_prop import TensorMetadata

    return isinstance(node.meta.get("tensor_meta"), TensorMetadata)


def _single_tensor_cuts(graph: fx.Graph, ops: list[fx.Node]) -> dict[int, fx.Node]:
    """Boundaries b (between ops[b-1] and ops[b]) where exactly one value, a tensor, is live
    across, with that tensor. Parameters (get_attr) do not count: each block re-reads them."""
    position = {node: i for i, node in enumerate(ops)}
    end = len(ops)  # the output node reads at this position
    values = [n for n in graph.nodes if n.op == "placeholder"] + ops
    spans = []  # (defined at, last read at) per value
    for value in values:
        uses = [end if u.op == "output" else position.get(u, -1) for u in value.users]
        spans.append((position.get(value, -1), max(uses, default=-1), value))
    carried: dict[int, fx.Node] = {}
    for b in range(1, len(ops)):
        live = [v for defined, last, v in spans if defined < b <= last]
        if len(live) == 1 and _is_tensor(live[0]):
            carried[b] = live[0]
    return carried


def _segment(
    traced: fx.GraphModule, ops: list[fx.Node], carried: dict[int, fx.Node], a: int, b: int
) -> fx.GraphModule:
    """ops[a:b] as a GraphModule taking one state: the tensor carried into boundary a, or for
    the first block the model's input (the tuple of inputs when there are several)."""
    import operator

    from torch import fx

    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    if a == 0:
        inputs = [n for n in traced.graph.nodes if n.op == "placeholder"]
        state = graph.placeholder("state")
        if len(inputs) == 1:
            env[inputs[0]] = state
        else:  # several inputs: the first state is their tuple (models/nets/base.py)
            for i, node in enumerate(inputs):
                env[node] = graph.call_function(operator.getitem, (state, i))
    else:
        env[carried[a]] = graph.placeholder("state")

    def lookup(node: fx.Node) -> fx.Node:
        if node not in env:  # a parameter or constant read here: this block re-reads it
            env[node] = graph.node_copy(node, lookup)
        return env[node]

    for node in ops[a:b]:
        env[node] = graph.node_copy(node, lookup)
    if b == len(ops):
        output = next(n for n in traced.graph.nodes if n.op == "output")
        graph.output(fx.graph.map_arg(output.args[0], lookup))
    else:
        graph.output(lookup(carried[b]))
    graph.lint()
    return fx.GraphModule(traced, graph, class_name="LinearBlock")


def _merge_flopless(
    traced: fx.GraphModule,
    ops: list[fx.Node],
    carried: dict[int, fx.Node],
    spans: list[tuple[int, int]],
    example: tuple[torch.Tensor, ...],
) -> list[tuple[int, int]]:
    """Spans that do no counted FLOPs (a ReLU, a reshape) join the span before them (leading
    ones the first span that computes), so none becomes a stage of its own."""
    meta = tuple(t.to("meta") for t in example)
    blocks = [_on_meta(_segment(traced, ops, carried, a, b)) for a, b in spans]
    computes = [c.gflops > 0 for c in measure_blocks(blocks, meta)]
    merged: list[tuple[int, int]] = []
    start, seen = spans[0][0], False
    for i, (_, b) in enumerate(spans):
        seen = seen or computes[i]
        if seen and i + 1 < len(spans) and computes[i + 1]:
            merged.append((start, b))
            start, seen = b, False
    merged.append((start, spans[-1][1]))
    return merged


def _on_meta(block: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(block).to("meta")


def _span_name(ops: list[fx.Node], a: int, b: int) -> str:
    """A name like `stem..relu`: first and last operation, submodules by their path."""

    def name(node: fx.Node) -> str:
        return str(node.target) if node.op == "call_module" else node.name

    return name(ops[a]) if b - a == 1 else f"{name(ops[a])}..{name(ops[b - 1])}"
