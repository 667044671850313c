"""Attention blocks whose scores take extra temporal terms, shared by TiSASRec and MEANTIME.

``nn.TransformerEncoderLayer`` only accepts an additive mask, so attention that mixes in
per-pair interval embeddings needs its own block; the block and stack here are the same
pre-norm layout as ``pasrec.model.encoder.CausalTransformer`` with the attention supplied.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pasrec.model.config import ModelConfig


def days_from_times(times: torch.Tensor, span_days: float) -> torch.Tensor:
    """Whole days since the training origin from normalised times (rounded: float error)."""
    return torch.round(times.double() * span_days).long()


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, T, d] -> [B, h, T, d/h]."""
    batch, length, hidden = x.shape
    return x.view(batch, length, heads, hidden // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, h, T, d/h] -> [B, T, d]."""
    batch, heads, length, size = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * size)


def attention_weights(
    scores: torch.Tensor, blocked: torch.Tensor, dropout: nn.Dropout
) -> torch.Tensor:
    """Softmax of scores [B, h, T, T] over keys with ``blocked`` [B, T, T] keys removed."""
    scores = scores.masked_fill(blocked.unsqueeze(1), float("-inf"))
    return dropout(torch.softmax(scores, dim=-1))


class PreNormBlock(nn.Module):
    """x + Attention(LN x), then x + FFN(LN x); extra keyword context goes to the attention."""

    def __init__(self, config: ModelConfig, attention: nn.Module) -> None:
        super().__init__()
        d = config.hidden
        self.attention = attention
        self.attention_norm = nn.LayerNorm(d)
        self.feed_forward_norm = nn.LayerNorm(d)
        self.feed_forward = nn.Sequential(
            nn.Linear(d, d), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(d, d)
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, blocked: torch.Tensor, **context: torch.Tensor | list
    ) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attention_norm(x), blocked, **context))
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))


class AttentionStack(nn.Module):
    """``config.blocks`` pre-norm blocks, a final layer norm, padded slots kept at zero."""

    def __init__(self, config: ModelConfig, make_attention: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            PreNormBlock(config, make_attention()) for _ in range(config.blocks)
        )
        self.norm = nn.LayerNorm(config.hidden)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        valid: torch.Tensor,
        inputs: torch.Tensor,
        blocked: torch.Tensor,
        **context: torch.Tensor | list,
    ) -> torch.Tensor:
        keep = valid.unsqueeze(-1).to(inputs.dtype)
        x = self.dropout(inputs) * keep
        for block in self.blocks:
            x = block(x, blocked, **context) * keep
        return self.norm(x) * keep
