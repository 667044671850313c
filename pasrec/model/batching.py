"""Histories as model batches: the one place days become normalised time tensors."""

from __future__ import annotations

import numpy as np
import torch

from pasrec.model.time_norm import TimeNormalizer


def make_batch(
    items: np.ndarray,
    days: np.ndarray,
    normalizer: TimeNormalizer,
    device: torch.device | str,
    target: np.ndarray | None = None,
    target_day: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """``items``/``days`` are [B, L], left-padded with item 0."""
    times = np.where(items != 0, normalizer.normalize_days(days), 0.0)
    batch = {
        "items": torch.as_tensor(items, dtype=torch.long, device=device),
        "times": torch.as_tensor(times, dtype=torch.float32, device=device),
    }
    if target is not None:
        batch["target"] = torch.as_tensor(target, dtype=torch.long, device=device)
    if target_day is not None:
        batch["target_time"] = torch.as_tensor(
            normalizer.normalize_days(target_day), dtype=torch.float32, device=device
        )
    return batch


def left_pad(sequences: list[list[int]], length: int) -> np.ndarray:
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = seq[-length:]
        if tail:
            out[row, length - len(tail) :] = tail
    return out
