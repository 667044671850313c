"""TiSASRec (Li, Wang and McAuley, WSDM 2020): self-attention aware of time intervals.

Each user's pairwise intervals are divided by that user's smallest non-zero interval, floored
and clipped at ``k`` (``config.max_interval``). Attention adds learned interval and absolute
position embeddings to the keys and values:
``e_ij = q_i . (k_j + P^K_j + R^K_ij) / sqrt(d)``, ``z_i = sum_j a_ij (v_j + P^V_j + R^V_ij)``.
Training is SASRec's: every slot predicts the next item.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pasrec.model.config import ModelConfig
from pasrec.model.encoder import attention_mask
from pasrec.model.recommenders import Batch, NextItemModel
from pasrec.model.relative_attention import (
    AttentionStack,
    attention_weights,
    days_from_times,
    merge_heads,
    split_heads,
)


def interval_matrix(days: torch.Tensor, valid: torch.Tensor, max_interval: int) -> torch.Tensor:
    """Personalised relative intervals [B, L, L] (long) from days [B, L].

    ``r_ij = min(floor(|d_i - d_j| / r_u), k)`` with ``r_u`` the smallest non-zero interval
    among the row's valid items (1 when all share one day); pairs with padding are 0. The
    scale comes from the visible history only: the target's time is unknown at inference.
    """
    gaps = (days.unsqueeze(2) - days.unsqueeze(1)).abs()
    pairs = valid.unsqueeze(2) & valid.unsqueeze(1)
    nonzero = torch.where(pairs & (gaps > 0), gaps, torch.iinfo(gaps.dtype).max)
    scale = nonzero.flatten(1).amin(dim=1)
    scale = torch.where(scale == torch.iinfo(gaps.dtype).max, 1, scale)
    intervals = torch.div(gaps, scale.view(-1, 1, 1), rounding_mode="floor")
    return torch.where(pairs, intervals.clamp(max=max_interval), 0)


class IntervalAwareAttention(nn.Module):
    """Multi-head attention with absolute-position and interval terms in keys and values."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.query = nn.Linear(config.hidden, config.hidden)
        self.key = nn.Linear(config.hidden, config.hidden)
        self.value = nn.Linear(config.hidden, config.hidden)
        self.out = nn.Linear(config.hidden, config.hidden)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        blocked: torch.Tensor,
        position_key: torch.Tensor,
        position_value: torch.Tensor,
        interval_key: torch.Tensor,
        interval_value: torch.Tensor,
    ) -> torch.Tensor:
        """``position_*`` [L, d]; ``interval_*`` [B, L, L, d]."""
        h = self.heads
        q, k, v = (split_heads(f(x), h) for f in (self.query, self.key, self.value))
        batch, length = x.shape[:2]
        pos_k = position_key.view(length, h, -1).transpose(0, 1)  # [h, L, d/h]
        pos_v = position_value.view(length, h, -1).transpose(0, 1)
        int_k = interval_key.view(batch, length, length, h, -1).permute(0, 3, 1, 2, 4)
        int_v = interval_value.view(batch, length, length, h, -1).permute(0, 3, 1, 2, 4)
        scores = q @ (k + pos_k).transpose(-1, -2) + torch.einsum("bhid,bhijd->bhij", q, int_k)
        weights = attention_weights(scores / math.sqrt(q.shape[-1]), blocked, self.dropout)
        mixed = weights @ (v + pos_v) + torch.einsum("bhij,bhijd->bhid", weights, int_v)
        return self.out(merge_heads(mixed))


class TiSASRec(NextItemModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, item_init_std=config.hidden**-0.5, time_encoding=False)
        d = config.hidden
        self.position_key = nn.Embedding(config.history_length, d)
        self.position_value = nn.Embedding(config.history_length, d)
        self.interval_key = nn.Embedding(config.max_interval + 1, d)
        self.interval_value = nn.Embedding(config.max_interval + 1, d)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = AttentionStack(config, lambda: IntervalAwareAttention(config))

    def states(self, batch: Batch) -> torch.Tensor:
        items = batch["items"]
        valid = items != 0
        days = days_from_times(batch["times"], self.config.span_days)
        intervals = interval_matrix(days, valid, self.config.max_interval)
        drop = self.embedding_dropout
        return self.encoder(
            valid,
            self.items(items),
            attention_mask(items),
            position_key=drop(self.position_key.weight),
            position_value=drop(self.position_value.weight),
            interval_key=drop(self.interval_key(intervals)),
            interval_value=drop(self.interval_value(intervals)),
        )
