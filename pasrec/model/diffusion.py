"""Gaussian diffusion over item embeddings: the x0-predicting denoiser and DDIM with guidance."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pasrec.model.config import ModelConfig


def step_embedding(steps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the integer diffusion step (as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=steps.device) / half)
    angles = steps.float().unsqueeze(-1) * freqs
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


class Denoiser(nn.Module):
    """f(e_t, t, c) -> e_0 over [e_t ; c ; step]: one linear layer (``linear``, PreferDiff's
    design) or c + a two-layer MLP (``mlp``). A linear f weighs e_t the same at every step, so
    it cannot both copy a nearly clean e_t and ignore a noisy one; the MLP can."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.hidden
        self.hidden = d
        self.affine = config.denoiser == "linear"
        self.dropout = config.denoiser_dropout
        self.step_mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.out = (
            nn.Linear(3 * d, d)
            if self.affine
            else nn.Sequential(nn.Linear(3 * d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        )
        # The learned null condition Phi of classifier-free guidance.
        self.null = nn.Parameter(torch.randn(d) * 0.02)

    def forward(self, noisy: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # Rows share few distinct steps (all rows share one while sampling): embed each once.
        unique, index = steps.unique(return_inverse=True)
        s = self.step_mlp(step_embedding(unique, self.hidden))[index]
        inputs = F.dropout(torch.cat((noisy, cond, s), dim=-1), self.dropout, self.training)
        out = self.out(inputs)
        # The MLP corrects the condition: from the first step the estimate is the user state,
        # so a full-item loss on it trains the encoder as directly as a classifier's.
        return out if self.affine else cond + out

    def guided(
        self, noisy: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor, guidance: float
    ) -> torch.Tensor:
        """(1+w) f(x, c) - w f(x, Phi). An affine f makes it one pass, f(x, (1+w) c - w Phi),
        exactly (the x and step terms carry weight (1+w) - w = 1)."""
        if not guidance:
            return self(noisy, steps, cond)
        if self.affine:
            return self(noisy, steps, (1 + guidance) * cond - guidance * self.null_like(cond))
        both = self(noisy.repeat(2, 1), steps.repeat(2), torch.cat((cond, self.null_like(cond))))
        conditional, unconditional = both.chunk(2)
        return (1 + guidance) * conditional - guidance * unconditional

    def null_like(self, cond: torch.Tensor) -> torch.Tensor:
        return self.null.to(cond.dtype).expand_as(cond)


class GaussianDiffusion(nn.Module):
    """Linear-beta forward process and deterministic DDIM sampling with CFG."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        betas = torch.linspace(config.beta_start, config.beta_end, config.diffusion_steps)
        self.register_buffer("alpha_bar", torch.cumprod(1.0 - betas, dim=0), persistent=False)
        self.steps = config.diffusion_steps

    def sample_steps(self, batch: int, device: torch.device, generator=None) -> torch.Tensor:
        return torch.randint(0, self.steps, (batch,), device=device, generator=generator)

    def q_sample(self, x0: torch.Tensor, steps: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        abar = self.alpha_bar[steps].unsqueeze(-1).to(x0.dtype)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def ddim_schedule(self, ddim_steps: int, floor: float = 0.0) -> list[int]:
        """Uniformly spaced steps over [floor T, T), from the noisiest down to floor T."""
        first = round(floor * self.steps)
        count = max(1, min(ddim_steps, self.steps - first))
        grid = torch.linspace(first, self.steps - 1, count).round().long().unique()
        return grid.flip(0).tolist()

    @torch.no_grad()
    def ddim(
        self,
        denoiser: Denoiser,
        cond: torch.Tensor,
        guidance: float,
        ddim_steps: int,
        seed: int = 0,
        floor: float = 0.0,
    ) -> torch.Tensor:
        """Deterministic DDIM (eta=0) from seeded noise; returns the final x0 estimate, the
        one at step ``floor`` T (0: the clean end of the chain)."""

        def predict_x0(x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
            return denoiser.guided(x, steps, cond, guidance)

        return self.ddim_sample(predict_x0, cond, ddim_steps, seed, floor)

    @torch.no_grad()
    def ddim_sample(
        self,
        predict_x0: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        like: torch.Tensor,
        ddim_steps: int,
        seed: int = 0,
        floor: float = 0.0,
    ) -> torch.Tensor:
        """The DDIM loop for any x0-predictor ``predict_x0(x_t, steps)``; ``like`` [B, d] gives
        the shape, device and dtype of the sample."""
        generator = torch.Generator(device="cpu").manual_seed(seed)
        # One noise vector shared by every row: a user's result must not depend on which
        # other users happen to share the batch (the service batches unrelated requests).
        noise = torch.randn((1, like.shape[-1]), generator=generator)
        x = noise.to(like.device, like.dtype).expand_as(like)
        schedule = self.ddim_schedule(ddim_steps, floor)
        x0 = x
        for i, step in enumerate(schedule):
            steps = torch.full((like.shape[0],), step, device=like.device, dtype=torch.long)
            x0 = predict_x0(x, steps)
            if i == len(schedule) - 1:
                break
            abar = self.alpha_bar[step]
            abar_prev = self.alpha_bar[schedule[i + 1]]
            eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()
            x = abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps
        return x0
