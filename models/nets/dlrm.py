"""DLRM with the structure of the MLPerf Inference 1TB (Criteo Terabyte) benchmark.

13 dense features through the bottom MLP 13-512-256-128; 26 categorical features, one index
each, looked up in 26 embedding tables of width 128 (row counts below, from the MLPerf
reference `main.py`); the dot interaction of the 27 vectors (351 pairwise dot products)
concatenated with the bottom output (128 + 351 = 479); the top MLP 479-1024-1024-512-256-1
with a sigmoid. The MLPs hold 2,365,184 multiply-accumulates per sample (the fact: 2.37e6);
the interaction's batched matmul adds 27 * 27 * 128 = 93,312 more.

The full tables hold 24,034,227,072 parameters, 89.5 GiB in float32: no test machine or edge
device can allocate them. `rows_scale` scales every table's rows (ceil, at least one row); the
zoo's default 1e-3 keeps 187,783 rows (24.0 M parameters, 92 MiB; 26.4 M with the MLPs).
rows_scale=1 is the real model: build it on the meta device (`with torch.device("meta")`) to
count or trace it, or use `embedding_params()` for the count without building anything.

Inputs: dense (B, 13) float32 and sparse (B, 26) int64, column i in [0, rows[i]).
Output: click probability (B, 1).

Blocks and their states:

    (dense, sparse)
      -> BottomMLP        -> (bottom (B, 128), sparse)
      -> EmbeddingLookup  -> (bottom, embeddings (B, 26, 128))
      -> DotInteraction   -> interaction (B, 479)
      -> TopMLP           -> probability (B, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from edgetop.models.nets.base import ZooModel, zip_strict

MLPERF_ROWS = (
    39884406, 39043, 17289, 7420, 20263, 3, 7120, 1543, 63, 38532951, 2953546, 403346, 10,
    2208, 11938, 155, 4, 976, 14, 39979771, 25641295, 39664984, 585935, 12972, 108, 36,
)  # fmt: skip
EMBEDDING_DIM = 128
DENSE_FEATURES = 13
BOTTOM_MLP = (DENSE_FEATURES, 512, 256, 128)
TOP_MLP = (479, 1024, 1024, 512, 256, 1)
DEFAULT_ROWS_SCALE = 1e-3


def scaled_rows(rows_scale: float) -> tuple[int, ...]:
    """The 26 table sizes at `rows_scale` (ceil, at least 1 row); 1.0 gives the MLPerf sizes."""
    if not 0 < rows_scale <= 1:
        raise ValueError(f"rows_scale must be in (0, 1], not {rows_scale!r}")
    return tuple(max(1, math.ceil(rows * rows_scale)) for rows in MLPERF_ROWS)


def embedding_params(rows_scale: float = 1.0) -> int:
    """Embedding parameters at `rows_scale`, computed without building anything."""
    return sum(scaled_rows(rows_scale)) * EMBEDDING_DIM


def _mlp(sizes: Sequence[int], sigmoid_last: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):  # successive pairs (no itertools.pairwise before 3.10)
        n_in, n_out = sizes[i], sizes[i + 1]
        linear = nn.Linear(n_in, n_out)
        # the MLPerf reference's initialisation
        nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / (n_in + n_out)))
        nn.init.normal_(linear.bias, 0.0, math.sqrt(1.0 / n_out))
        last = i == len(sizes) - 2
        layers += [linear, nn.Sigmoid() if last and sigmoid_last else nn.ReLU()]
    return nn.Sequential(*layers)


class BottomMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp = _mlp(BOTTOM_MLP, sigmoid_last=False)

    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        dense, sparse = state
        return self.mlp(dense), sparse


class EmbeddingLookup(nn.Module):
    def __init__(self, rows: Sequence[int]) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n, EMBEDDING_DIM) for n in rows)
        for table, n in zip_strict(self.tables, rows):
            bound = math.sqrt(1.0 / n)
            nn.init.uniform_(table.weight, -bound, bound)

    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        bottom, sparse = state
        looked_up = [table(sparse[:, i]) for i, table in enumerate(self.tables)]
        return bottom, torch.stack(looked_up, dim=1)


class DotInteraction(nn.Module):
    """Pairwise dot products of the 27 feature vectors (below the diagonal), after `bottom`."""

    def __init__(self, features: int = len(MLPERF_ROWS) + 1) -> None:
        super().__init__()
        li, lj = torch.tril_indices(features, features, offset=-1)
        self.register_buffer("li", li, persistent=False)
        self.register_buffer("lj", lj, persistent=False)

    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        bottom, embeddings = state
        t = torch.cat([bottom.unsqueeze(1), embeddings], dim=1)  # (B, 27, 128)
        z = torch.bmm(t, t.transpose(1, 2))
        return torch.cat([bottom, z[:, self.li, self.lj]], dim=1)


class TopMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp = _mlp(TOP_MLP, sigmoid_last=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class DLRM(ZooModel):
    def __init__(self, rows_scale: float = DEFAULT_ROWS_SCALE) -> None:
        super().__init__()
        self.rows = scaled_rows(rows_scale)
        self.bottom = BottomMLP()
        self.embeddings = EmbeddingLookup(self.rows)
        self.interaction = DotInteraction()
        self.top = TopMLP()

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        state = self.embeddings(self.bottom((dense, sparse)))
        return self.top(self.interaction(state))

    def blocks(self) -> list[nn.Module]:
        return [self.bottom, self.embeddings, self.interaction, self.top]
