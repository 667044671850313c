"""Time encodings TE(t) of SPEC section 2.2: position, sinusoidal, gaussian, rff."""

from __future__ import annotations

import math

import torch
from torch import nn

from pasrec.model.config import ModelConfig


class TimeEncoding(nn.Module):
    """Maps normalised times [B, L] to encodings [B, L, d].

    ``position`` ignores time and embeds the slot index instead (the PreferDiff base); the other
    three are fixed functions of time so that ``TE(t_n)`` is a stable target for the ToI loss.
    """

    def __init__(self, config: ModelConfig, position_std: float = 1.0) -> None:
        super().__init__()
        self.kind = config.time_encoding
        # Real-time encodings have entries of order 1: at the item table's scale (1 for the
        # diffusion presets, where this changes nothing) they do not drown the item signal.
        self.scale = min(position_std, 1.0)
        d = config.hidden
        self.hidden = d
        if self.kind == "position":
            self.position = nn.Embedding(config.history_length, d)
            # Same scale as the item table: a larger one would drown the item signal.
            nn.init.normal_(self.position.weight, 0.0, position_std)
        elif self.kind == "sinusoidal":
            exponent = torch.arange(0, d, 2, dtype=torch.float32) / d
            self.register_buffer("inv_freq", config.sinusoid_base ** (-exponent))
        elif self.kind == "gaussian":
            self.register_buffer("centers", torch.arange(d, dtype=torch.float32) / (d - 1))
            self.sigma = config.gaussian_sigma
        else:
            generator = torch.Generator().manual_seed(config.seed)
            freqs = torch.randn(d // 2, generator=generator) * config.rff_sigma
            self.register_buffer("rff_freqs", freqs)

    @property
    def uses_time(self) -> bool:
        return self.kind != "position"

    def forward(self, times: torch.Tensor) -> torch.Tensor:
        if self.kind == "position":
            slots = torch.arange(times.shape[-1], device=times.device)
            return self.position(slots).expand(*times.shape, self.hidden)
        return self.scale * self.encode(times.float().unsqueeze(-1))

    def encode(self, t: torch.Tensor) -> torch.Tensor:
        if self.kind == "sinusoidal":
            angles = t * self.inv_freq
            return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
        if self.kind == "gaussian":
            return torch.exp(-((t - self.centers) ** 2) / (2 * self.sigma**2))
        angles = 2 * math.pi * t * self.rff_freqs
        return torch.cat((angles.cos(), angles.sin()), dim=-1)
