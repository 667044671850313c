"""MEANTIME (Cho et al., RecSys 2020): each attention head sees its own temporal embedding.

Absolute kernels (one [B, T, d] embedding per slot) enter a head's queries and keys through
per-head projections: ``(q_i + W^Q_a A_i) . (k_j + W^K_a A_j)``. Relative kernels (one
[B, T, T, d] embedding per pair, a function of the day difference) enter Transformer-XL style:
``q_i . k_j + (q_i + u) . W^R R_ij``. Kernels: ``pos`` (learned slot embedding), ``day``
(learned embedding of the day index), ``con`` (one learned vector), ``sin`` (sinusoid of the
signed day difference), ``exp`` / ``log`` (``exp(-|D| w_k)`` / ``log(1 + |D| w_k)`` with
geometric ``w_k``). Bidirectional, trained by BERT4Rec's cloze task.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from pasrec.model.bert4rec import ClozeRecommender
from pasrec.model.config import ModelConfig
from pasrec.model.encoder import attention_mask
from pasrec.model.relative_attention import (
    AttentionStack,
    attention_weights,
    days_from_times,
    merge_heads,
    split_heads,
)
from pasrec.model.time_encoding import TimeEncoding

ABSOLUTE = ("pos", "day", "con")
RELATIVE = ("sin", "exp", "log")


class MixedAttention(nn.Module):
    """Heads 0..A-1 use the absolute kernels, heads A.. the relative ones, in config order."""

    def __init__(self, config: ModelConfig, n_absolute: int, n_relative: int) -> None:
        super().__init__()
        d = config.hidden
        self.heads = n_absolute + n_relative
        self.n_absolute = n_absolute
        size = d // self.heads
        self.qkv = nn.Linear(d, 3 * d)
        self.absolute_query = nn.ModuleList(nn.Linear(d, size) for _ in range(n_absolute))
        self.absolute_key = nn.ModuleList(nn.Linear(d, size) for _ in range(n_absolute))
        self.relative_key = nn.ModuleList(nn.Linear(d, size) for _ in range(n_relative))
        self.relative_bias = nn.Parameter(torch.zeros(n_relative, 1, size))
        self.out = nn.Linear(d, d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        blocked: torch.Tensor,
        absolute: list[torch.Tensor],
        relative: list[torch.Tensor],
    ) -> torch.Tensor:
        q, k, v = (split_heads(part, self.heads) for part in self.qkv(x).chunk(3, dim=-1))
        a = self.n_absolute
        scores = []
        if absolute:
            pq = torch.stack([f(e) for f, e in zip(self.absolute_query, absolute, strict=True)], 1)
            pk = torch.stack([f(e) for f, e in zip(self.absolute_key, absolute, strict=True)], 1)
            scores.append((q[:, :a] + pq) @ (k[:, :a] + pk).transpose(-1, -2))
        if relative:
            r = torch.stack([f(e) for f, e in zip(self.relative_key, relative, strict=True)], 1)
            qr = q[:, a:]
            scores.append(
                qr @ k[:, a:].transpose(-1, -2)
                + torch.einsum("bhid,bhijd->bhij", qr + self.relative_bias, r)
            )
        logits = torch.cat(scores, dim=1) / math.sqrt(q.shape[-1])
        return self.out(merge_heads(attention_weights(logits, blocked, self.dropout) @ v))


class Meantime(ClozeRecommender):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        d = config.hidden
        kernels = config.meantime_kernels.split(",")
        self.absolute_kinds = [k for k in kernels if k in ABSOLUTE]
        self.relative_kinds = [k for k in kernels if k in RELATIVE]
        if "pos" in kernels:
            self.position = nn.Embedding(config.history_length + 1, d)
        if "day" in kernels:
            # One row per training day; later (serving) days share the last row.
            self.day = nn.Embedding(int(round(config.span_days)) + 1, d)
        if "con" in kernels:
            self.constant = nn.Parameter(torch.randn(d) * d**-0.5)
        if "sin" in kernels:
            self.sinusoid = TimeEncoding(dataclasses.replace(config, time_encoding="sinusoidal"))
        if {"exp", "log"} & set(kernels):
            # Rates f^(-k/d), k = 0..d-1: intervals seen at geometrically spaced scales.
            rates = config.sinusoid_base ** (-torch.arange(d, dtype=torch.float32) / d)
            self.register_buffer("rates", rates, persistent=False)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = AttentionStack(
            config,
            lambda: MixedAttention(config, len(self.absolute_kinds), len(self.relative_kinds)),
        )

    def absolute_kernel(self, kind: str, tokens: torch.Tensor, days: torch.Tensor) -> torch.Tensor:
        """[B, T, d] embedding of each slot."""
        if kind == "day":
            return self.day(days.clamp(0, self.day.num_embeddings - 1))
        shape = (*tokens.shape, self.config.hidden)
        return (self.position.weight if kind == "pos" else self.constant).expand(shape)

    def relative_kernel(self, kind: str, days: torch.Tensor) -> torch.Tensor:
        """[B, T, T, d] embedding of each pair's day difference D_ij = day_i - day_j."""
        diff = (days.unsqueeze(2) - days.unsqueeze(1)).float()
        if kind == "sin":
            return self.sinusoid(diff)
        scaled = diff.abs().unsqueeze(-1) * self.rates
        return torch.exp(-scaled) if kind == "exp" else torch.log1p(scaled)

    def encode(
        self, tokens: torch.Tensor, masked: torch.Tensor, times: torch.Tensor
    ) -> torch.Tensor:
        days = days_from_times(times, self.config.span_days)
        drop = self.embedding_dropout
        return self.encoder(
            tokens != 0,
            self.embed(tokens, masked),
            attention_mask(tokens, causal=False),
            absolute=[drop(self.absolute_kernel(k, tokens, days)) for k in self.absolute_kinds],
            relative=[drop(self.relative_kernel(k, days)) for k in self.relative_kinds],
        )
