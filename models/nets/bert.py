# ruff: noqa: UP006, UP035
# runs on the hosts' Python >= 3.8 (JetPack 5): typing's generics where evaluated at runtime
"""BERT encoders with the SQuAD question-answering head (the MLPerf BERT task).

bert-large is the shape of open_model_zoo's `bert-large-uncased-whole-word-masking-squad-0001`
(the MLPerf reference model): 24 layers, hidden 1024, 16 heads, FFN 4096, WordPiece vocabulary
30522, 512 positions, 2 token types, and a Linear(1024, 2) head giving start and end logits.
As in HuggingFace's `BertForQuestionAnswering` there is no pooler. That makes 334,094,338
parameters (the fact says 333.96e6, 0.04% fewer). bert-base is the same with 12 layers,
hidden 768, 12 heads, FFN 3072 (108,893,186 parameters).

Inputs, in MLPerf order: `input_ids`, `attention_mask` (1 = real token, 0 = padding) and
`token_type_ids` (segment ids), each (B, T) int64 with T <= 512. Output: a tuple
`(start_logits, end_logits)`, each (B, T).

Blocks and their states:

    (input_ids, attention_mask, token_type_ids)
      -> Embeddings   -> (hidden (B, T, H), additive mask (B, 1, 1, T))
      -> EncoderLayer -> (hidden, additive mask)            [x num_layers]
      -> QAHead       -> (start_logits, end_logits)

Attention uses `scaled_dot_product_attention`; FLOPs are counted on the meta device, where it
decomposes into two batched matmuls (the CPU fused kernel is invisible to FlopCounterMode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn
from torch.nn import functional as F

from edgetop.models.nets.base import ZooModel, current_device

State = Tuple[torch.Tensor, torch.Tensor]  # evaluated at import: typing.Tuple


@dataclass(frozen=True)
class BertConfig:
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int = 30522
    max_positions: int = 512
    type_vocab: int = 2
    eps: float = 1e-12


BERT_BASE = BertConfig(layers=12, hidden=768, heads=12, intermediate=3072)
BERT_LARGE = BertConfig(layers=24, hidden=1024, heads=16, intermediate=4096)


class Embeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(cfg.vocab, cfg.hidden)
        self.position = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type = nn.Embedding(cfg.type_vocab, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> State:
        input_ids, attention_mask, token_type_ids = inputs
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        hidden = self.norm(hidden)
        # 0 where attended, the most negative value where padded; broadcasts over heads/queries.
        keep = attention_mask[:, None, None, :].to(hidden.dtype)
        additive = (1.0 - keep) * torch.finfo(hidden.dtype).min
        return hidden, additive


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.attn_out = nn.Linear(cfg.hidden, cfg.hidden)
        self.attn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.ffn_in = nn.Linear(cfg.hidden, cfg.intermediate)
        self.ffn_out = nn.Linear(cfg.intermediate, cfg.hidden)
        self.ffn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)

    def forward(self, state: State) -> State:
        hidden, mask = state
        b, t, h = hidden.shape
        q, k, v = self.qkv(hidden).view(b, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        ctx = ctx.transpose(1, 2).reshape(b, t, h)
        hidden = self.attn_norm(hidden + self.attn_out(ctx))
        hidden = self.ffn_norm(hidden + self.ffn_out(F.gelu(self.ffn_in(hidden))))
        return hidden, mask


class QAHead(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.qa_outputs = nn.Linear(hidden, 2)

    def forward(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.qa_outputs(state[0])
        start, end = logits.unbind(-1)
        return start.contiguous(), end.contiguous()


class BertQA(ZooModel):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.config = cfg
        device = current_device()
        # Made on the meta device and then given storage, so torch's default initialisation
        # (a third of the build time) is skipped: init_weights sets every parameter.
        with torch.device("meta"):
            self.embeddings = Embeddings(cfg)
            self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.layers))
            self.head = QAHead(cfg.hidden)
        self.to_empty(device=device)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif any(True for _ in m.parameters(recurse=False)):
                raise TypeError(f"no initialisation for {type(m).__name__}")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        state = self.embeddings((input_ids, attention_mask, token_type_ids))
        for layer in self.layers:
            state = layer(state)
        return self.head(state)

    def blocks(self) -> list[nn.Module]:
        return [self.embeddings, *self.layers, self.head]
