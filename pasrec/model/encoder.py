"""Sequence encoders that turn a left-padded history into the user representation g_u."""

from __future__ import annotations

import torch
from torch import nn

from pasrec.model.config import ModelConfig


def attention_mask(items: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """Boolean [B, L, L] mask, True = blocked: padded keys hidden, and the future if causal.

    Each slot may always see itself so that fully padded rows never produce NaN.
    """
    length = items.shape[1]
    blocked = (items == 0).unsqueeze(1).expand(-1, length, -1)
    if causal:
        future = torch.ones(length, length, dtype=torch.bool, device=items.device).triu(1)
        blocked = blocked | future.unsqueeze(0)
    eye = torch.eye(length, dtype=torch.bool, device=items.device).unsqueeze(0)
    return blocked & ~eye


class CausalTransformer(nn.Module):
    """SASRec-style encoder (pre-norm blocks, causal self-attention).

    ``causal=False`` lets every slot see the whole sequence (BERT4Rec, DiffuRec's denoiser).
    """

    def __init__(self, config: ModelConfig, causal: bool = True) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=config.hidden,
            nhead=config.heads,
            dim_feedforward=config.hidden,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, config.blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.heads = config.heads
        self.causal = causal

    def _prepare(
        self, items: torch.Tensor, inputs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dropped-out inputs with padding zeroed, per-head attention mask, padding keep)."""
        mask = attention_mask(items, self.causal).repeat_interleave(self.heads, dim=0)
        keep = (items != 0).unsqueeze(-1).to(inputs.dtype)
        return self.dropout(inputs) * keep, mask, keep

    def forward(self, items: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """All positions' outputs [B, L, d]; ``inputs`` = item embedding + time encoding."""
        hidden, mask, keep = self._prepare(items, inputs)
        return self.norm(self.blocks(hidden, mask=mask)) * keep

    def last(self, items: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The last slot's output [B, d], equal to ``forward(...)[:, -1]``.

        Models that read only the last slot skip the last block's query, attention output and
        feed-forward work for the other slots: at L = 10 that is most of a one-block encoder.
        """
        hidden, mask, keep = self._prepare(items, inputs)
        *earlier, final = self.blocks.layers
        for layer in earlier:
            hidden = layer(hidden, src_mask=mask)
        keys = final.norm1(hidden)
        attended = final.self_attn(
            keys[:, -1:], keys, keys, attn_mask=mask[:, -1:], need_weights=False
        )[0]
        state = hidden[:, -1:] + final.dropout1(attended)
        expanded = final.dropout(final.activation(final.linear1(final.norm2(state))))
        state = state + final.dropout2(final.linear2(expanded))
        return (self.norm(state) * keep[:, -1:]).squeeze(1)


class GRUEncoder(nn.Module):
    """GRU4Rec's recurrent encoder; left padding keeps the last slot the latest item."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(config.hidden, config.hidden, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, items: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        output, _ = self.gru(self.dropout(inputs))
        return output

    def last(self, items: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The last slot's output [B, d] (a recurrence computes every slot on the way)."""
        return self.forward(items, inputs)[:, -1]
