"""Raw-id inference over any checkpoint: the one model interface the service uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pasrec.model.batching import left_pad, make_batch
from pasrec.model.checkpoint import Checkpoint, load_checkpoint
from pasrec.model.interfaces import time_of_interest
from pasrec.model.time_norm import DAY_SECONDS
from pasrec.model.time_span import TrainingSpan

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
HORIZONS_DAYS = (1.0, 7.0, 30.0)

History = list[tuple[str, float]]


@dataclass
class NextTime:
    time: float  # unix seconds, UTC
    quantiles: dict[float, float] | None = None
    p_within: dict[float, float] | None = None
    # With a tpp head: the start of the `window_days`-long span the user most likely returns
    # in (from the day after the last event), unix seconds.
    window_start: float | None = None
    # With a tpp head: P(the user comes back within `window_days` of `window_start` | not
    # back before it), i.e. how likely a push sent then is timely (a push is only sent to a
    # user who has not come back by its time).
    p_timely: float | None = None


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Predictor:
    """Loads a checkpoint once and answers in raw item ids and unix seconds."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: torch.device,
        horizon_days: int = 365,
        window_days: float = 7.0,
    ):
        self.checkpoint = checkpoint
        self.device = device
        self.model = checkpoint.model
        self.horizon_days = horizon_days
        self.window_days = window_days
        self.items = checkpoint.item_vocab
        self._index = {raw: i + 1 for i, raw in enumerate(self.items)}
        counts = np.asarray(checkpoint.item_counts, dtype=np.float64)
        self._popular_order = np.argsort(-counts, kind="stable")
        self._counts = counts
        self.span = TrainingSpan.of(checkpoint.time)
        self.toi = time_of_interest(self.model)

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        horizon_days: int = 365,
        window_days: float = 7.0,
    ) -> Predictor:
        resolved = resolve_device(device)
        return cls(load_checkpoint(path, resolved), resolved, horizon_days, window_days)

    @property
    def version(self) -> str:
        return self.checkpoint.version

    @property
    def model_name(self) -> str:
        return self.checkpoint.name

    @property
    def history_length(self) -> int:
        return self.checkpoint.config.history_length

    @property
    def has_toi(self) -> bool:
        return self.toi is not None

    @property
    def has_tpp(self) -> bool:
        return self.toi is not None and self.toi.has_gap_head

    @property
    def training_spans(self) -> tuple[TrainingSpan, ...]:
        return (self.span,)

    def known(self, raw_item_id: str) -> bool:
        return raw_item_id in self._index

    def popular(self, k: int, exclude: set[str] | None = None) -> list[tuple[str, float]]:
        exclude = exclude or set()
        out: list[tuple[str, float]] = []
        for idx in self._popular_order:
            raw = self.items[idx]
            if raw not in exclude:
                out.append((raw, float(self._counts[idx])))
                if len(out) == k:
                    break
        return out

    def _shifts(self, histories: list[History]) -> list[int]:
        """Per history, the days that bring it inside the training span
        (pasrec/model/time_span.py)."""
        return [self.span.shift_days(h[-1][1]) if h else 0 for h in histories]

    def _batch(
        self, histories: list[History], shifts: list[int]
    ) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        length = self.history_length
        ids, days = [], []
        for history, shift in zip(histories, shifts, strict=True):
            known = [(self._index[i], t) for i, t in history if i in self._index]
            ids.append([i for i, _ in known])
            days.append([int(t // DAY_SECONDS) + shift for _, t in known])
        items = left_pad(ids, length)
        day_arr = left_pad(days, length)
        batch = make_batch(items, day_arr, self.checkpoint.time, self.device)
        return batch, items

    def _gap_batch(self, histories: list[History], shifts: list[int]) -> dict[str, torch.Tensor]:
        """The days of every event, known item or not, for a tpp head that reads the gaps
        alone: its forecast then starts at the user's last event, as a push's delay does,
        and sees visits to items released after training (1 marks a present slot)."""
        length = self.history_length
        days = left_pad(
            [
                [int(t // DAY_SECONDS) + shift for _, t in h]
                for h, shift in zip(histories, shifts, strict=True)
            ],
            length,
        )
        present = left_pad([[1] * len(h) for h in histories], length)
        return make_batch(present, days, self.checkpoint.time, self.device)

    @torch.no_grad()
    def recommend(
        self,
        histories: list[History],
        k: int,
        at: list[float | None] | None = None,
        exclude: list[set[str]] | None = None,
    ) -> list[list[tuple[str, float]]]:
        if not histories:
            return []
        shifts = self._shifts(histories)
        batch, _ = self._batch(histories, shifts)
        at_tensor = None
        if at is not None and any(a is not None for a in at):
            # `at` moves with its history, so the gap from the last event is what the model reads.
            norm = [
                float("nan")
                if a is None
                else float(self.checkpoint.time.normalize_seconds(a + shift * DAY_SECONDS))
                for a, shift in zip(at, shifts, strict=True)
            ]
            at_tensor = torch.tensor(norm, dtype=torch.float32, device=self.device)
        scores = self.model.score(batch, at_tensor).float()
        if exclude is not None:
            for row, excluded in enumerate(exclude):
                cols = [self._index[i] for i in excluded if i in self._index]
                if cols:
                    scores[row, cols] = float("-inf")
        top = scores.topk(min(k, scores.shape[1] - 1), dim=1)
        results = []
        for values, indices in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            results.append(
                [
                    (self.items[i - 1], v)
                    for i, v in zip(indices, values, strict=True)
                    if v > float("-inf")
                ]
            )
        return results

    @torch.no_grad()
    def predict_next_time(self, histories: list[History]) -> list[NextTime | None]:
        if not self.has_toi or not histories:
            return [None] * len(histories)
        shifts = self._shifts(histories)
        batch, items = self._batch(histories, shifts)
        toi = self.toi
        predicted = toi.predict_toi(batch)
        last_days = torch.as_tensor(
            [
                int(h[-1][1] // DAY_SECONDS) + shift if h else 0
                for h, shift in zip(histories, shifts, strict=True)
            ],
            device=self.device,
        )
        decoded = toi.decode_toi_days(
            predicted, last_days, self.checkpoint.time, self.horizon_days
        ).tolist()
        days = [day - shift for day, shift in zip(decoded, shifts, strict=True)]
        forecast = None
        if self.has_tpp:
            forecast = toi.gap_distribution(
                batch if toi.gap_reads_state else self._gap_batch(histories, shifts)
            )
        if forecast is not None:
            # Whole-batch quantiles and CDFs: one bisection per level, not one per user.
            gap_quantiles = {q: forecast.quantile(q).tolist() for q in QUANTILES}
            horizon = torch.tensor(HORIZONS_DAYS, device=self.device)
            within = forecast.cdf(horizon.expand(len(histories), -1)).tolist()
            start = forecast.best_window_start(self.window_days, horizon_days=self.horizon_days)
            window = start.tolist()
            timely = forecast.p_timely(start, self.window_days).tolist()
        out: list[NextTime | None] = []
        for row, history in enumerate(histories):
            if not history or items[row, -1] == 0:
                out.append(None)
                continue
            # Day-granular answers start at a midnight; a return "on the last event's day" is
            # one after that event, never before it.
            last = float(history[-1][1])
            result = NextTime(time=max(float(days[row] * DAY_SECONDS), last))
            if forecast is not None:
                # The head's unit is (dequantised) days after the day of the last event.
                last_midnight = (last // DAY_SECONDS) * DAY_SECONDS
                result.quantiles = {
                    q: max(last_midnight + gap_quantiles[q][row] * DAY_SECONDS, last)
                    for q in QUANTILES
                }
                result.p_within = dict(zip(HORIZONS_DAYS, within[row], strict=True))
                result.window_start = last_midnight + window[row] * DAY_SECONDS
                result.p_timely = timely[row]
            out.append(result)
        return out


class PairedPredictor:
    """The items of one checkpoint with the next-time predictions of another: a deployment
    may pair a better recommender with a better clock (SPEC 5), e.g. a PASRec whose fine RFF
    scale decodes days well with one whose coarse scale ranks items better. It answers the
    same questions as `Predictor`; every question about time goes to `timing`."""

    def __init__(self, items: Predictor, timing: Predictor) -> None:
        if not timing.has_toi:
            raise ValueError(
                f"the ToI checkpoint ({timing.model_name}, version {timing.version}) has no "
                "time-of-interest module: it cannot predict next times"
            )
        self.recommender = items
        self.timing = timing
        self.device = items.device
        self.items = items.items

    @property
    def version(self) -> str:
        return f"{self.recommender.version}+toi.{self.timing.version}"

    @property
    def model_name(self) -> str:
        return f"{self.recommender.model_name}+toi:{self.timing.model_name}"

    @property
    def history_length(self) -> int:
        return max(self.recommender.history_length, self.timing.history_length)

    @property
    def has_toi(self) -> bool:
        return True

    @property
    def has_tpp(self) -> bool:
        return self.timing.has_tpp

    @property
    def training_spans(self) -> tuple[TrainingSpan, ...]:
        return tuple(dict.fromkeys((self.recommender.span, self.timing.span)))

    def known(self, raw_item_id: str) -> bool:
        return self.recommender.known(raw_item_id)

    def popular(self, k: int, exclude: set[str] | None = None) -> list[tuple[str, float]]:
        return self.recommender.popular(k, exclude)

    def recommend(
        self,
        histories: list[History],
        k: int,
        at: list[float | None] | None = None,
        exclude: list[set[str]] | None = None,
    ) -> list[list[tuple[str, float]]]:
        return self.recommender.recommend(histories, k, at, exclude)

    def predict_next_time(self, histories: list[History]) -> list[NextTime | None]:
        return self.timing.predict_next_time(histories)


AnyPredictor = Predictor | PairedPredictor
