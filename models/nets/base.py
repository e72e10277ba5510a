"""What every zoo network is: an `nn.Module` that can also be run as an ordered list of blocks.

The block contract (what a partitioner relies on):

- Every block is an `nn.Module` called with exactly one positional argument, the *state*, and
  returns the next state. A state is a tensor or a tuple of tensors (never a dict or None),
  so it can be shipped between devices as it is.
- The first state is built from the model's inputs: the input tensor itself for single-input
  models (images, GPT-2 token ids), the tuple of inputs for multi-input models (BERT's
  `(input_ids, attention_mask, token_type_ids)`, DLRM's `(dense, sparse)`).
- What the last block returns is exactly what `forward(*inputs)` returns.

`run_blocks(model.blocks(), inputs)` does that fold; `model.run_blocks(*inputs)` is the same as
a method. Each network documents what its intermediate states hold (BERT threads
`(hidden, additive_mask)`, DLRM `(bottom_out, sparse)` then `(bottom_out, embeddings)`, YOLOv5
the tuple of feature maps that later layers still need).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

import torch
from torch import nn

State = Any  # a tensor or a tuple of tensors


def first_state(inputs: Sequence[torch.Tensor]) -> State:
    """The state the first block receives: the lone input, or the tuple of inputs."""
    inputs = tuple(inputs)
    return inputs[0] if len(inputs) == 1 else inputs


def run_blocks(blocks: Sequence[nn.Module], inputs: Sequence[torch.Tensor]) -> State:
    """Run `blocks` in order starting from `inputs`; equals the model's `forward(*inputs)`."""
    state = first_state(inputs)
    for block in blocks:
        state = block(state)
    return state


class ZooModel(nn.Module):
    """Base of every zoo network (and of the wrapper around user models)."""

    def blocks(self) -> list[nn.Module]:
        """The ordered stages; chaining them on the inputs equals `forward` (see module doc)."""
        raise NotImplementedError

    def run_blocks(self, *inputs: torch.Tensor) -> State:
        return run_blocks(self.blocks(), inputs)


def zip_strict(*sized: Collection[Any]) -> Iterator[tuple[Any, ...]]:
    """`zip(*sized, strict=True)` for the hosts' Python 3.8/3.9 (no `strict` there):
    ValueError when the lengths differ, checked before anything is yielded."""
    lengths = [len(c) for c in sized]
    if len(set(lengths)) > 1:
        raise ValueError(f"zip_strict: the lengths differ: {lengths}")
    return zip(*sized)  # noqa: B905 - the lengths were checked just above


def current_device() -> torch.device:
    """The device factory functions use right now (honours `with torch.device(...)`,
    a context manager since torch 2.0, the zoo's minimum: the worker's MIN_TORCH)."""
    return torch.empty(0).device


def num_params(module: nn.Module) -> int:
    """Parameters counted once each (tied weights such as GPT-2's lm_head count once)."""
    return sum(p.numel() for p in module.parameters())
