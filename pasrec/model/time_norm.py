"""The map from wall-clock time to the model's time axis (days, scaled by the training span)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_SECONDS = 86400


@dataclass(frozen=True)
class TimeNormalizer:
    """Training times land in [0, 1]; later (serving) times go beyond 1, as encoders allow."""

    origin_day: int
    span_days: int

    @classmethod
    def from_day_range(cls, first_day: int, last_day: int) -> TimeNormalizer:
        # A one-day training set still needs a non-zero scale.
        return cls(int(first_day), max(int(last_day) - int(first_day), 1))

    def days(self, unix_seconds: np.ndarray | float) -> np.ndarray:
        return np.floor(np.asarray(unix_seconds, dtype=np.float64) / DAY_SECONDS).astype(np.int64)

    def normalize_days(self, days: np.ndarray | int) -> np.ndarray:
        return (np.asarray(days, dtype=np.float64) - self.origin_day) / self.span_days

    def normalize_seconds(self, unix_seconds: np.ndarray | float) -> np.ndarray:
        return self.normalize_days(self.days(unix_seconds))

    def day_to_seconds(self, day: np.ndarray | int) -> np.ndarray:
        return np.asarray(day, dtype=np.int64) * DAY_SECONDS

    def to_dict(self) -> dict[str, int]:
        return {"origin_day": self.origin_day, "span_days": self.span_days}
