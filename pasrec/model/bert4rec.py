"""BERT4Rec (Sun et al., CIKM 2019): a bidirectional Transformer trained by the cloze task.

A sample's history and target form one sequence of L+1 slots. Training replaces a random
``mask_prob`` share of its items by a learned [mask] and predicts them from both sides; as the
paper does, every sample is also used once with only its last item (the target) masked, the
situation met at inference, where [mask] is appended after the history and its output ranks
the items. MEANTIME trains the same way and subclasses ``ClozeRecommender``.
"""

from __future__ import annotations

import torch
from torch import nn

from pasrec.model.config import ModelConfig
from pasrec.model.encoder import CausalTransformer
from pasrec.model.recommenders import (
    Batch,
    EmbeddingRecommender,
    mask_padding_column,
    next_item_loss,
)


class ClozeRecommender(EmbeddingRecommender):
    """Cloze training and appended-[mask] scoring; subclasses supply ``encode``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, item_init_std=config.hidden**-0.5, time_encoding=False)
        d = config.hidden
        self.mask_token = nn.Parameter(torch.randn(d) * d**-0.5)
        # BERT4Rec's output layer: a GELU projection before the tied item embeddings.
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))

    def encode(
        self, tokens: torch.Tensor, masked: torch.Tensor, times: torch.Tensor
    ) -> torch.Tensor:
        """States [B, L+1, d] of item ids ``tokens`` (0 = padding) with ``masked`` slots hidden."""
        raise NotImplementedError

    def embed(self, tokens: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        return torch.where(masked.unsqueeze(-1), self.mask_token.to(self.items.weight.dtype),
                           self.items(tokens))

    @staticmethod
    def with_last_time(times: torch.Tensor) -> torch.Tensor:
        """Times of the L+1 slots: the appended slot gets the last history time, in training and
        at inference alike, since the target's own time is not known when ranking."""
        return torch.cat((times, times[:, -1:]), dim=1)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        tokens = torch.cat((batch["items"], batch["target"].unsqueeze(1)), dim=1)
        cloze = (torch.rand(tokens.shape, device=tokens.device) < self.config.mask_prob) & (
            tokens != 0
        )
        last_only = torch.zeros_like(cloze)
        last_only[:, -1] = True
        times = self.with_last_time(batch["times"])
        tokens, times = tokens.repeat(2, 1), times.repeat(2, 1)
        masked = torch.cat((cloze, last_only))
        states = self.encode(tokens, masked, times)[masked]
        loss = next_item_loss(
            self.head(states), tokens[masked], self.items, "ce",
            smoothing=self.config.label_smoothing,
        )
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def score(self, batch: Batch, at: torch.Tensor | None = None) -> torch.Tensor:
        items = batch["items"]
        # The appended slot's id only has to be non-zero (not padding): it is masked.
        tokens = torch.cat((items, torch.ones_like(items[:, :1])), dim=1)
        masked = torch.zeros_like(tokens, dtype=torch.bool)
        masked[:, -1] = True
        states = self.encode(tokens, masked, self.with_last_time(batch["times"]))[:, -1]
        return mask_padding_column(self.head(states) @ self.items.weight.T)


class BERT4Rec(ClozeRecommender):
    """Item + learned position embeddings through a bidirectional Transformer."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.position = nn.Embedding(config.history_length + 1, config.hidden)
        # At the items' scale: with nn.Embedding's N(0, 1) the positions drown the item signal
        # in the residual stream and training sits on the popularity plateau for many epochs.
        nn.init.normal_(self.position.weight, 0.0, config.hidden**-0.5)
        self.encoder = CausalTransformer(config, causal=False)

    def encode(
        self, tokens: torch.Tensor, masked: torch.Tensor, times: torch.Tensor
    ) -> torch.Tensor:
        return self.encoder(tokens, self.embed(tokens, masked) + self.position.weight)
