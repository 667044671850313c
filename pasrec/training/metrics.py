"""Full-ranking HR@k and NDCG@k with deterministic tie-breaking (SPEC section 3)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among items 1..n (column 0 is padding and never ranks).

    An item ranks ahead of the target if it scores higher, or scores the same and has a
    smaller id, so constant or tied scores cannot flatter a model. NaN scores rank last.
    """
    if scores.dim() != 2 or targets.dim() != 1 or scores.shape[0] != targets.shape[0]:
        raise ValueError(
            f"expected scores [B, n_items+1] and targets [B], got {tuple(scores.shape)} "
            f"and {tuple(targets.shape)}"
        )
    targets = targets.to(device=scores.device, dtype=torch.long)
    if len(targets) and (targets.min() < 1 or targets.max() >= scores.shape[1]):
        raise ValueError(f"targets must be item ids in 1..{scores.shape[1] - 1}")
    # A NaN compares false with everything, which would give a NaN target rank 0.
    items = scores[:, 1:]
    items = torch.where(items.isnan(), -torch.inf, items)
    target_scores = items.gather(1, targets[:, None] - 1)
    ids = torch.arange(1, scores.shape[1], device=scores.device)
    ahead = (items > target_scores) | ((items == target_scores) & (ids[None, :] < targets[:, None]))
    return ahead.sum(dim=1)


def ranking_metrics(
    ranks: torch.Tensor | np.ndarray, ks: Sequence[int] = (5, 10)
) -> dict[str, float]:
    """HR@k and NDCG@k in percent; NDCG@k credits 1 / log2(rank + 2) when rank < k."""
    ranks = torch.as_tensor(ranks).detach().cpu().to(torch.float64)
    if ranks.numel() == 0:
        raise ValueError("no ranks to score")
    gains = 1.0 / torch.log2(ranks + 2.0)
    result: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        result[f"HR@{k}"] = 100.0 * hit.double().mean().item()
        result[f"NDCG@{k}"] = 100.0 * torch.where(hit, gains, 0.0).mean().item()
    return result


class MetricAccumulator:
    """Collects target ranks batch by batch; `result()` scores all of them at once."""

    def __init__(self, ks: Sequence[int] = (5, 10)) -> None:
        self.ks = tuple(ks)
        self._ranks: list[torch.Tensor] = []

    def add(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        self._ranks.append(target_ranks(scores, targets).cpu())

    def __len__(self) -> int:
        return sum(len(ranks) for ranks in self._ranks)

    def result(self) -> dict[str, float]:
        if not self._ranks:
            raise ValueError("no batches were added")
        return ranking_metrics(torch.cat(self._ranks), self.ks)
