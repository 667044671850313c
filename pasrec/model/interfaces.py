"""The model contract: what training, evaluation and serving may call on a model.

Every model is a ``Recommender``. A model with a Time-of-Interest module also follows the
``TimeOfInterest`` protocol, and callers reach it through ``time_of_interest(model)``, never
through a model's parts (its encoder, time encoding or point-process head).

A batch is a dict of tensors: ``items`` [B, L] (left-padded, 0 = padding), ``times`` [B, L]
(normalised), and for training ``target`` [B] and ``target_time`` [B].
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from pasrec.model.config import ModelConfig
from pasrec.model.time_norm import TimeNormalizer
from pasrec.model.tpp import GapDistribution

Batch = dict[str, torch.Tensor]


class Recommender(nn.Module):
    """Scores every item for each history; ``loss`` trains it by gradient steps, and
    ``fit_statistics`` fits what is counted rather than learned (before those steps)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def has_toi(self) -> bool:
        return False

    def fit_statistics(self, train_targets: torch.Tensor) -> None:
        """Fit counted statistics from the training targets' item indices (none by default)."""

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def score(self, batch: Batch, at: torch.Tensor | None = None) -> torch.Tensor:
        """[B, n_items + 1] scores (padding column -inf); ``at`` (normalised times, NaN = the
        model's own forecast) asks what the user will want then, where the model can say."""
        raise NotImplementedError

    def predict_toi(self, batch: Batch) -> torch.Tensor | None:
        """The predicted Time-of-Interest embedding tau_hat [B, d] (None without the module)."""
        return None

    def fitted_state(self) -> dict[str, Any]:
        """What was fitted after training beside the weights (JSON), saved in the checkpoint."""
        return {}

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"unknown fitted state for {type(self).__name__}: {sorted(state)}")


@runtime_checkable
class TimeOfInterest(Protocol):
    """A model that forecasts when each user comes back (the ToI module, and with a
    point-process head a full gap distribution)."""

    @property
    def has_gap_head(self) -> bool: ...

    @property
    def gap_reads_state(self) -> bool:
        """Whether the gap head reads the user state (else the gaps alone, so a caller may
        give it a batch of times without items)."""
        ...

    def predict_toi(self, batch: Batch) -> torch.Tensor | None: ...

    def encode_times(self, times: torch.Tensor) -> torch.Tensor:
        """The time encoding [N, d] of normalised times [N]: what tau_hat is compared to."""
        ...

    def decode_toi_days(
        self,
        predicted: torch.Tensor,
        last_days: torch.Tensor,
        normalizer: TimeNormalizer,
        horizon_days: int,
    ) -> torch.Tensor:
        """The day each tau_hat [B, d] stands for, searched after ``last_days`` [B]."""
        ...

    def gap_distribution(self, batch: Batch) -> GapDistribution | None:
        """The gap forecast of the point-process head (None without one). A head that reads
        the gaps alone needs only ``batch``'s times and present slots."""
        ...

    def gap_nll(self, batch: Batch) -> torch.Tensor:
        """The head's negative log-likelihood of the targets' gaps (dequantised days)."""
        ...

    def set_gap_calibration(self, levels: list[float]) -> None: ...


def time_of_interest(model: nn.Module) -> TimeOfInterest | None:
    """``model`` as a ToI forecaster, or None when it has no ToI module."""
    if getattr(model, "has_toi", False) and isinstance(model, TimeOfInterest):
        return model
    return None
