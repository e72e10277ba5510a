"""GPT-2 language models (the nanoGPT layout of OpenAI's GPT-2).

gpt2 (small): 12 layers, 12 heads, 768 wide; gpt2-medium: 24 layers, 16 heads, 1024 wide.
Vocabulary 50257, context 1024, pre-LayerNorm blocks, tanh-GELU MLP, causal attention, and the
output projection tied to the token embedding (so its weight counts once): 124,439,808 and
354,823,168 parameters.

Input: token ids (B, T) int64, T <= 1024. Output: next-token logits (B, T, 50257) for every
position (a prompt's prefill, as in nanoGPT's forward without targets).

Compute per token is 2 FLOPs per weight of the 12-layer stack and of the vocabulary projection
(0.247 GFLOP for gpt2) plus attention, which grows with T (0.038 GFLOP at T = 1024, counted
as the full T x T product; the causal mask does not remove FLOPs from the count).

Blocks: TokenEmbedding (ids -> hidden), each Block (hidden -> hidden), LMHead (hidden ->
logits). Every state is a single tensor. LMHead shares its weight with TokenEmbedding; a
partitioner placing them apart holds a copy on each side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from edgetop.models.nets.base import ZooModel, current_device


@dataclass(frozen=True)
class GPT2Config:
    layers: int
    heads: int
    embd: int
    vocab: int = 50257
    context: int = 1024


GPT2_SMALL = GPT2Config(layers=12, heads=12, embd=768)
GPT2_MEDIUM = GPT2Config(layers=24, heads=16, embd=1024)


class TokenEmbedding(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab, cfg.embd)
        self.wpe = nn.Embedding(cfg.context, cfg.embd)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        return self.wte(idx) + self.wpe(positions)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.c_attn = nn.Linear(cfg.embd, 3 * cfg.embd)
        self.c_proj = nn.Linear(cfg.embd, cfg.embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.embd, 4 * cfg.embd)
        self.c_proj = nn.Linear(4 * cfg.embd, cfg.embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.embd)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class LMHead(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.ln_f = nn.LayerNorm(cfg.embd)
        self.lm_head = nn.Linear(cfg.embd, cfg.vocab, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.ln_f(x))


class GPT2(ZooModel):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.config = cfg
        device = current_device()
        # Made on the meta device and then given storage, so torch's default initialisation
        # (a third of the build time) is skipped: init_weights sets every parameter.
        with torch.device("meta"):
            self.embed = TokenEmbedding(cfg)
            self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
            self.head = LMHead(cfg)
        self.to_empty(device=device)
        self.head.lm_head.weight = self.embed.wte.weight  # weight tying (after to_empty)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """GPT-2's: N(0, 0.02), residual projections scaled by 1/sqrt(2 layers), unit norms."""
        for name, p in self.named_parameters():  # the tied weight comes once
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * self.config.layers))
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            elif ".ln_" in name:
                nn.init.ones_(p)
            else:
                raise TypeError(f"no initialisation for {name}")

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed(idx)
        for block in self.h:
            x = block(x)
        return self.head(x)

    def blocks(self) -> list[nn.Module]:
        return [self.embed, *self.h, self.head]
