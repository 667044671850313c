"""The Time-of-Interest module M_phi and the fusion of its prediction into g_u."""

from __future__ import annotations

import torch
from torch import nn

from pasrec.model.config import ModelConfig


def mlp(d_in: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, d_out), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_out, d_out)
    )


class ToIModule(nn.Module):
    """tau_hat_n = MLP([g_u ; tau_{n-1}])."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.net = mlp(2 * config.hidden, config.hidden, config.dropout)

    def forward(self, user: torch.Tensor, last_time_encoding: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((user, last_time_encoding), dim=-1))


class Fusion(nn.Module):
    """g'_u = (1 - gamma) g_u + gamma MLP([g_u ; tau])."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gamma = config.gamma
        self.net = mlp(2 * config.hidden, config.hidden, config.dropout)

    def forward(self, user: torch.Tensor, toi_encoding: torch.Tensor) -> torch.Tensor:
        return (1 - self.gamma) * user + self.gamma * self.net(torch.cat((user, toi_encoding), -1))
