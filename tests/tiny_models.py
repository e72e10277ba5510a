"""Tiny user models for the worker and deploy tests, named as `tiny_models:function`.

Each function returns (model, example input at batch 1), the user-model convention of a
`package.module:function` name. The deploy tests ship this file to the host beside edgetop.
"""

from __future__ import annotations

import torch
from torch import nn


def tiny() -> tuple[nn.Module, torch.Tensor]:
    """A 16 -> 32 -> 4 MLP: microseconds per batch."""
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)), torch.randn(1, 16)


def huge() -> tuple[nn.Module, torch.Tensor]:
    """One 16384 x 16384 Linear: 1 GiB of fp32 weights, more than a 256 MiB host has."""
    return nn.Linear(16384, 16384), torch.randn(1, 16384)


def terabyte() -> tuple[nn.Module, torch.Tensor]:
    """2^38 weights (1 TiB of fp32): no machine running the tests has that free."""
    return nn.Linear(1 << 19, 1 << 19), torch.randn(1, 1 << 19)


def broken() -> tuple[nn.Module, torch.Tensor]:
    raise RuntimeError("this model cannot be built")
