"""DiffuRec (Li et al., TOIS 2023): diffusion over the target item's representation.

The target embedding is noised to ``x_t`` (T=32, truncated-linear betas: see the preset).
The denoiser adds ``lambda * (x_t + step embedding)`` to every history item representation,
``lambda ~ N(delta, delta)`` element-wise (the "items as distributions" uncertainty), runs a
bidirectional Transformer over the sequence and reads the predicted ``x_0`` at the last slot.
The loss is cross-entropy of ``x_0``'s dot products with all item embeddings; ranking uses
the ``x_0`` reached by walking the reverse chain from noise.
"""

from __future__ import annotations

import torch
from torch import nn

from pasrec.model.config import ModelConfig
from pasrec.model.diffusion import GaussianDiffusion, step_embedding
from pasrec.model.encoder import CausalTransformer
from pasrec.model.recommenders import (
    Batch,
    EmbeddingRecommender,
    mask_padding_column,
    next_item_loss,
)


class DiffuRec(EmbeddingRecommender):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, item_init_std=config.hidden**-0.5)
        d = config.hidden
        # Positions at the items' scale (not nn.Embedding's N(0, 1), which drowns the items).
        nn.init.normal_(self.time_encoding.position.weight, 0.0, d**-0.5)
        self.diffusion = GaussianDiffusion(config)
        self.step_mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.SiLU(), nn.Linear(4 * d, d))
        self.input_norm = nn.LayerNorm(d)
        self.encoder = CausalTransformer(config, causal=False)

    def history(self, batch: Batch) -> torch.Tensor:
        """Item + position embeddings of the history, layer-normalised: [B, L, d]."""
        return self.input_norm(self.sequence_inputs(batch))

    def denoise(
        self, history: torch.Tensor, items: torch.Tensor, noisy: torch.Tensor, steps: torch.Tensor
    ) -> torch.Tensor:
        """Predicted x_0 [B, d] from x_t [B, d] at ``steps`` given the history."""
        d = self.config.hidden
        # Steps rescaled to a 1000-step range, where the sinusoid's frequencies are spread.
        scaled = steps.float() * (1000.0 / self.diffusion.steps)
        target = (noisy + self.step_mlp(step_embedding(scaled, d))).unsqueeze(1)
        delta = self.config.uncertainty
        if self.training:
            lam = torch.normal(delta, delta, history.shape, device=history.device)
        else:
            # The mean of lambda at inference, so that a history always gets the same ranking.
            lam = torch.full_like(history, delta)
        return self.encoder(items, history + lam.to(history.dtype) * target)[:, -1]

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        history = self.history(batch)
        target = self.items(batch["target"])
        steps = self.diffusion.sample_steps(target.shape[0], target.device)
        noisy = self.diffusion.q_sample(target, steps, torch.randn_like(target))
        x0 = self.denoise(history, batch["items"], noisy, steps)
        loss = next_item_loss(
            x0, batch["target"], self.items, "ce", smoothing=self.config.label_smoothing
        )
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def score(self, batch: Batch, at: torch.Tensor | None = None) -> torch.Tensor:
        history = self.history(batch)
        x0 = self.diffusion.ddim_sample(
            lambda x, steps: self.denoise(history, batch["items"], x, steps),
            history[:, -1],
            self.config.ddim_steps,
        )
        return mask_padding_column(x0 @ self.items.weight.T)
