"""Workload features measured from the real torch module, never typed in.

Everything runs on torch's META device: shapes and FLOPs are exact, no weights are allocated
and no arithmetic is done, so even DLRM's 89.5 GiB of embeddings or SSD-ResNet34 at 1200x1200
cost milliseconds. FLOPs come from `torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per
multiply-accumulate). Peak activation memory is the largest set of simultaneously live op
outputs during an eager inference forward pass, tracked with a dispatch mode and weakrefs.

Needs torch >= 2.1 (`torch.utils.flop_counter`; `with torch.device("meta")` is 2.0): on an
older torch this module does not import and the worker estimates memory without it. Runs on
the hosts' Python >= 3.8 like the rest of the zoo.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from edgetop.models.workload import WorkloadFeatures

if TYPE_CHECKING:
    from edgetop.models.zoo import ModelSpec

GIGA = 1e9


class _LiveActivations(TorchDispatchMode):
    """Tracks bytes of op outputs that are alive at once; views and in-place ops add nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.total = 0

    def _release(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        schema = getattr(func, "_schema", None)
        aliases = schema is not None and any(r.alias_info is not None for r in schema.returns)
        if aliases:  # a view or an in-place op: no new storage
            return out
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                nbytes = tensor.numel() * tensor.element_size()
                self.live += nbytes
                self.total += nbytes
                weakref.finalize(tensor, self._release, nbytes)
        self.peak = max(self.peak, self.live)
        return out


def _tensor_bytes(tensors: tuple[torch.Tensor, ...]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def extract(spec: ModelSpec, **kwargs: Any) -> WorkloadFeatures:
    """Measure one workload at batch 1 (kwargs go to build and make_input, e.g. seq_len)."""
    with torch.device("meta"):
        model = spec.build(**kwargs)
    inputs = spec.make_input(1, device="meta", **kwargs)
    params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    flops = FlopCounterMode(display=False)
    live = _LiveActivations()
    with torch.no_grad(), flops, live:
        model(*inputs)
    total_flops = flops.get_total_flops()
    input_bytes = _tensor_bytes(inputs)
    moved = param_bytes + input_bytes + live.total
    return WorkloadFeatures(
        name=spec.name,
        family=spec.family,
        params=params,
        param_bytes=param_bytes,
        gflops=total_flops / GIGA,
        activation_bytes=live.peak,
        activation_traffic_bytes=live.total,
        input_shape=tuple(tuple(t.shape) for t in inputs),
        input_bytes=input_bytes,
        arithmetic_intensity=total_flops / moved if moved else math.nan,
    )
