"""Live times against a checkpoint's training span: when a history lies far outside it, and
the shift of whole days that moves such a history back to the span's end.

A model reads absolute time (its time encoding of normalised days, the ToI module's decoded
day) only in the range it was trained on. Queried with today's events, a model trained on
1997-98 data decoded next visits on the last event's own midnight or a year later. Shifting
the whole history by whole days keeps every gap, so the model answers relative to the user's
own rhythm, as the gaps-only tpp head does by construction; the answer is shifted back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pasrec.model.time_norm import DAY_SECONDS, TimeNormalizer

# How far outside the training span, in spans, a history counts as "far outside". Within one
# span after it the absolute features extrapolate as the replays measured them
# (docs/results/replay/: every replayed event lies after its checkpoint's span), so those
# answers stay as they were; further out nothing was ever measured.
FAR_SPANS = 1.0


@dataclass(frozen=True)
class TrainingSpan:
    first_day: int
    last_day: int

    @classmethod
    def of(cls, normalizer: TimeNormalizer) -> TrainingSpan:
        return cls(normalizer.origin_day, normalizer.origin_day + normalizer.span_days)

    @property
    def margin_days(self) -> float:
        return FAR_SPANS * max(self.last_day - self.first_day, 1)

    def far_outside(self, unix_seconds: float) -> bool:
        day = unix_seconds // DAY_SECONDS
        return day < self.first_day - self.margin_days or day > self.last_day + self.margin_days

    def shift_days(self, last_event_seconds: float) -> int:
        """Whole days to add to a history whose last event is at `last_event_seconds` so the
        model reads it inside its span: 0 unless far outside, else the last event lands on the
        span's last day (or first day, for a history from before the span)."""
        if not self.far_outside(last_event_seconds):
            return 0
        day = int(last_event_seconds // DAY_SECONDS)
        anchor = self.last_day if day > self.last_day else self.first_day
        return anchor - day

    def describe(self) -> str:
        def date(day: int) -> str:
            return datetime.fromtimestamp(day * DAY_SECONDS, UTC).date().isoformat()

        return f"{date(self.first_day)}..{date(self.last_day)}"
