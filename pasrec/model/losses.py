"""The IoI (reconstruction + in-batch BPR) and ToI losses of SPEC section 2.7-2.8."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_error(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample error: ``cosine`` = (cos - 1)^2, ``l2`` = squared Euclidean distance."""
    if kind == "cosine":
        return (F.cosine_similarity(pred, target, dim=-1) - 1.0) ** 2
    return ((pred - target) ** 2).sum(dim=-1)


def bpr_loss(pos_error: torch.Tensor, neg_error: torch.Tensor, scale: float) -> torch.Tensor:
    """-log sigmoid(-k (l+ - l-)): small when the positive reconstructs better."""
    return -F.logsigmoid(-scale * (pos_error - neg_error)).mean()


def ioi_loss(
    pos_error: torch.Tensor, neg_error: torch.Tensor, lam: float, scale: float
) -> torch.Tensor:
    return lam * pos_error.mean() + (1 - lam) * bpr_loss(pos_error, neg_error, scale)


def toi_loss(predicted: torch.Tensor, true_encoding: torch.Tensor) -> torch.Tensor:
    """1 - cos(tau_hat, TE(t_n)); the paper's -cos with the same gradient, but >= 0."""
    return (1.0 - F.cosine_similarity(predicted, true_encoding, dim=-1)).mean()


def in_batch_negative_centroid(targets: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """For each sample, the mean embedding of the batch's other targets (a different item)."""
    batch = targets.shape[0]
    if batch < 2:
        return embeddings.detach().roll(1, dims=0)
    differs = (targets.unsqueeze(0) != targets.unsqueeze(1)).to(embeddings.dtype)
    counts = differs.sum(dim=1, keepdim=True).clamp_min(1.0)
    return differs @ embeddings / counts
