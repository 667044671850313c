"""How well a time encoding tells two moments apart, in days.

The encodings take times normalised by the training span (SPEC 2.1), so on a data set spanning
ten years a week is 0.002 of the axis. ``similarity_by_gap`` gives the cosine between
``TE(t)`` and ``TE(t + g days)`` averaged over real anchor times ``t``: a value near 1 at
g = 7 means the encoding cannot distinguish visits a week apart, nor order a user's history.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from pasrec.model.config import ModelConfig
from pasrec.model.time_encoding import TimeEncoding


def encoding(base: ModelConfig, kind: str, sigma: float | None = None) -> TimeEncoding:
    """``kind`` with its sigma (RFF's frequency scale or the Gaussian width) when given."""
    changes: dict[str, object] = {"time_encoding": kind}
    if sigma is not None:
        changes["rff_sigma" if kind == "rff" else "gaussian_sigma"] = sigma
    return TimeEncoding(dataclasses.replace(base, **changes))


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


@torch.no_grad()
def similarity_by_gap(
    te: TimeEncoding, anchors: np.ndarray, span_days: float, gaps: list[float]
) -> dict[float, float]:
    """Mean cos(TE(t), TE(t + g days)) over the anchors ``t`` (normalised times)."""
    t = torch.as_tensor(anchors, dtype=torch.float32)
    base = te(t)
    return {g: float(_cosine(base, te(t + g / span_days)).mean()) for g in gaps}


@torch.no_grad()
def history_similarity(te: TimeEncoding, times: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """Median cosine between consecutive visible items and between each history's first and
    last item (rows: histories of normalised times, left-padded; ``valid`` marks real items)."""
    enc = te(torch.as_tensor(times, dtype=torch.float32))
    mask = torch.as_tensor(valid)
    adjacent = _cosine(enc[:, 1:], enc[:, :-1])[mask[:, 1:] & mask[:, :-1]]
    first = mask.float().argmax(dim=1)  # left padding: the first True is the oldest item
    rows = torch.arange(len(enc))
    keep = mask.sum(dim=1) >= 2
    ends = _cosine(enc[rows, first], enc[:, -1])[keep]
    return {"adjacent_median": float(adjacent.median()), "first_last_median": float(ends.median())}
