"""The point-process ToI head: a log-normal mixture over the gap (in days) to the next event.

Data are day-granular (many same-day returns), so the head models the continuous time
``gap_days + u`` with ``u ~ U[0, 1)`` (dequantisation); its quantiles are floored back to days.
The mixture is over ``log(1 + gap)`` for numerical range. Its input is the history's gaps,
with (``tpp_inputs="state"``) the user representation (detached, so the head cannot cost
recommendation quality) and the last time's encoding, or (``"gaps"``) the rhythm of the
distinct days instead: features that keep their meaning at any absolute time.

Optionally recalibrated after training (``LogNormalMixtureHead.set_calibration``, saved in
the checkpoint as fitted state): a monotone map G fitted so that the share of validation
targets below the q-quantile is q. Every probability and quantile the head gives out is
calibrated; the log-likelihood stays the raw mixture's.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn

from pasrec.model.config import ModelConfig


def consecutive_gaps(
    times: torch.Tensor, items: torch.Tensor, span_days: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(gap in days between consecutive history events, whether both slots hold an event)."""
    gaps = (times[:, 1:] - times[:, :-1]).clamp_min(0.0) * span_days
    return gaps, (items[:, 1:] != 0) & (items[:, :-1] != 0)


def median_gap(times: Iterable[float], *, distinct: bool) -> float | None:
    """The user's median gap: the median of the gaps between consecutive event times (the
    mean of the middle two for an even count), None with fewer than two times.

    The one definition of the "user median gap"; its callers differ, on purpose, only in
    whether events at the same time count (`distinct=False`: a gap of 0):
    - the service's `user_median` push timing and `history_rhythm` (the tpp head's feature)
      take distinct times: a push or a return right at the last event is no schedule;
    - the naive ToI predictor keeps same-day pairs: it predicts the next *event*, often on
      the same day. On Beauty (LOO) distinct days would raise its MAE from 80.0 to 127.0
      days and misstate the baseline that docs/results compares the model against."""
    ordered = sorted(set(times) if distinct else times)
    if len(ordered) < 2:
        return None
    return statistics.median([later - earlier for earlier, later in pairwise(ordered)])


RHYTHM_FEATURES = 4


def history_rhythm(gaps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The user's rhythm from the gaps between the history's distinct days (`gaps`, `valid`
    from `consecutive_gaps`): log(1 + median), log(1 + mean), whether there is any such gap,
    and their count as a share of the slots. The strongest simple schedule on Beauty is the
    user's median gap; a head reading raw gaps alone ranks returns below it
    (docs/results/replay/README.md).

    The median is `median_gap(..., distinct=True)` over a batch, with one difference: for
    an even number of gaps torch's median takes the lower middle gap, not the mean of the
    two. It stays so because trained tpp heads learned on exactly this feature."""
    later = valid & (gaps > 0)
    median = torch.nanmedian(torch.where(later, gaps, torch.nan), dim=1).values
    count = later.sum(1)
    mean = (gaps * later).sum(1) / count.clamp_min(1)
    has = count > 0
    return torch.stack(
        (
            torch.where(has, torch.log1p(median), 0.0),
            torch.log1p(mean),
            has.to(gaps.dtype),
            count.to(gaps.dtype) / gaps.shape[1],
        ),
        dim=1,
    )


# The calibration map is piecewise linear in logit(F) on [-LOGIT_RANGE, LOGIT_RANGE]: evenly
# spaced knots in F itself cannot resolve the tails, where a too-narrow head puts most
# held-out targets at F = 0.999...
LOGIT_RANGE = 12.0


def _knot_position(u: torch.Tensor, n: int) -> torch.Tensor:
    z = torch.logit(u.double().clamp(1e-12, 1 - 1e-12))
    return ((z + LOGIT_RANGE) / (2 * LOGIT_RANGE)).clamp(0.0, 1.0) * (n - 1)


def piecewise_linear(u: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """G(u): linear in logit(u) between knots evenly spaced over [-LOGIT_RANGE, LOGIT_RANGE]."""
    n = values.shape[0]
    position = _knot_position(u, n)
    left = position.floor().long().clamp(max=n - 2)
    frac = position - left
    values = values.double()
    return (values[left] * (1 - frac) + values[left + 1] * frac).to(u.dtype)


def fit_calibration(pit: torch.Tensor, knots: int = 121, floor: float = 0.001) -> list[float]:
    """G at the knots from probability-integral-transform values ``pit`` = F(true gap) of
    held-out targets: G = share of pit at or below the knot, mixed with ``floor`` of the
    knot's own level so it rises strictly (invertible quantiles)."""
    if pit.numel() == 0:
        raise ValueError("calibration needs at least one held-out target")
    grid = torch.sigmoid(torch.linspace(-LOGIT_RANGE, LOGIT_RANGE, knots, dtype=torch.float64))
    empirical = (pit.double().flatten().unsqueeze(0) <= grid.unsqueeze(1)).double().mean(1)
    values = (1 - floor) * empirical + floor * grid
    values[0], values[-1] = 0.0, 1.0
    return [float(v) for v in values]


def check_calibration(levels: Sequence[float]) -> tuple[float, ...]:
    """``levels`` as a calibration map G at the knots, or ValueError: G rises strictly from
    0 to 1 (an empty map is the raw mixture)."""
    levels = tuple(float(v) for v in levels)
    if levels and (
        len(levels) < 2
        or levels[0] != 0.0
        or levels[-1] != 1.0
        or any(b <= a for a, b in pairwise(levels))
    ):
        raise ValueError("tpp calibration must rise strictly from 0 to 1")
    return levels


# Tensors have no truth value: comparing two forecasts with == would raise, so no eq.
@dataclass(frozen=True, eq=False)
class GapDistribution:
    """The forecast of each row's gap (in days) to its next event: a log-normal mixture over
    log(1 + gap), with the calibration map G fitted after training (empty: none). Every
    probability and quantile it gives out is calibrated; ``log_prob`` is the raw mixture's."""

    log_w: torch.Tensor
    means: torch.Tensor
    log_scales: torch.Tensor
    calibration: tuple[float, ...] = ()

    @property
    def params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.log_w, self.means, self.log_scales

    @property
    def rows(self) -> int:
        return self.log_w.shape[0]

    def log_prob(self, gap_days: torch.Tensor) -> torch.Tensor:
        y = torch.log1p(gap_days.clamp_min(0.0)).unsqueeze(-1)
        z = (y - self.means) / self.log_scales.exp()
        log_normal = -0.5 * z**2 - self.log_scales - 0.5 * math.log(2 * math.pi) - y
        return torch.logsumexp(self.log_w + log_normal, dim=-1)

    def cdf(self, gap_days: torch.Tensor) -> torch.Tensor:
        """Calibrated P(gap <= g) for ``gap_days`` of shape [B] or [B, G] (a grid per row)."""
        return self.calibrate(self.raw_cdf(gap_days))

    def calibrate(self, raw: torch.Tensor) -> torch.Tensor:
        """The recalibration map applied to raw mixture probabilities (identity without one)."""
        if not self.calibration:
            return raw
        levels = torch.tensor(self.calibration, dtype=raw.dtype, device=raw.device)
        return piecewise_linear(raw, levels)

    def raw_cdf(self, gap_days: torch.Tensor) -> torch.Tensor:
        """The mixture's own P(gap <= g), before recalibration."""
        log_w, means, log_scales = self.params
        if gap_days.dim() == 2:
            log_w, means, log_scales = (p.unsqueeze(1) for p in self.params)
        y = torch.log1p(gap_days.clamp_min(0.0)).unsqueeze(-1)
        z = (y - means) / (log_scales.exp() * math.sqrt(2.0))
        return (log_w.exp() * 0.5 * (1 + torch.erf(z))).sum(-1)

    def window_point(self, half_width: int, horizon_days: int = 365) -> torch.Tensor:
        """The day offset t maximising P(t - w <= gap_day <= t + w): the point forecast that
        best serves a "within +-w days" target (the median serves the absolute error)."""
        w = half_width
        # The window [t - w, t + w] is the 2w-day window starting at t - w.
        return self.best_window_start(2 * w, -w, horizon_days - w) + w

    def best_window_start(
        self, width_days: float, earliest_days: int = 1, horizon_days: int = 365
    ) -> torch.Tensor:
        """The day offset p (from ``earliest_days`` to ``horizon_days``) that maximises
        P(p <= gap_day <= p + width): a push at p then most likely finds the user back within
        ``width`` days. A day-granular gap g is the continuous g + u, u in [0, 1), hence the
        ``+ 1``; a window starting on or before the last event's day holds all mass below."""
        starts = torch.arange(
            earliest_days, horizon_days + 1, device=self.log_w.device, dtype=torch.float32
        )
        upper = self.cdf((starts + width_days + 1).expand(self.rows, -1))
        lower = self.cdf(starts.clamp_min(0.0).expand(self.rows, -1))
        lower = torch.where(starts > 0, lower, torch.zeros_like(lower))
        return starts[(upper - lower).argmax(dim=1)]

    def p_timely(self, start_days: torch.Tensor, width_days: float) -> torch.Tensor:
        """P(start <= gap_day <= start + width | gap_day >= start) per row: the chance that a
        push at day offset ``start`` (>= 1) finds its user back within ``width`` days, given
        that it is sent at all (the user has not come back before it)."""
        grid = torch.stack((start_days, start_days + width_days + 1), dim=1).float()
        lower, upper = self.cdf(grid).unbind(1)
        return (upper - lower) / (1 - lower).clamp_min(1e-6)

    def quantile(self, q: float, max_days: float = 36500.0) -> torch.Tensor:
        """Gap in days at quantile q, by bisection on log(1 + gap) (the CDF is monotone)."""
        low = torch.zeros(self.rows, device=self.log_w.device)
        high = torch.full_like(low, math.log1p(max_days))
        for _ in range(40):
            mid = (low + high) / 2
            below = self.cdf(torch.expm1(mid)) < q
            low = torch.where(below, mid, low)
            high = torch.where(below, high, mid)
        return torch.expm1((low + high) / 2)


class LogNormalMixtureHead(nn.Module):
    """The network from a history to its ``GapDistribution``. Its calibration is fitted
    state, set after training (``set_calibration``) and saved beside the weights, not a
    hyper-parameter."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.hidden
        k = config.tpp_components
        self.span_days = config.span_days
        gaps = config.history_length - 1
        self.reads_state = config.tpp_inputs == "state"
        width = 2 * gaps + (2 * d if self.reads_state else RHYTHM_FEATURES)
        self.net = nn.Sequential(
            nn.Linear(width, d),
            nn.GELU(),
            nn.Linear(d, d),
            nn.GELU(),
            nn.Linear(d, 3 * k),
        )
        self.components = k
        self.config = config
        self.calibration: tuple[float, ...] = ()

    def set_calibration(self, levels: Sequence[float]) -> None:
        self.calibration = check_calibration(levels)

    def parameters_for(
        self,
        user: torch.Tensor | None,
        time_encoding: torch.Tensor | None,
        items: torch.Tensor,
        times: torch.Tensor,
    ) -> GapDistribution:
        days, valid = consecutive_gaps(times, items, self.span_days)
        gaps = torch.log1p(days) * valid  # 0 where a slot is padding
        present = valid.to(gaps.dtype)
        if self.reads_state:
            if user is None or time_encoding is None:
                raise ValueError("this tpp head reads the user state and the last time")
            parts: tuple[torch.Tensor, ...] = (user.detach(), time_encoding)
        else:
            parts = (history_rhythm(days, valid),)
        features = torch.cat((*parts, gaps, present), dim=-1)
        logits, means, log_scales = self.net(features).chunk(3, dim=-1)
        return GapDistribution(
            logits.log_softmax(-1), means, log_scales.clamp(-5.0, 3.0), self.calibration
        )

    def features(
        self, user: torch.Tensor | None, batch: dict[str, torch.Tensor], encode
    ) -> GapDistribution:
        """The forecast; ``user`` may be None when the head reads the gaps alone."""
        last = encode(batch["times"][:, -1:]).squeeze(1) if self.reads_state else None
        return self.parameters_for(user, last, batch["items"], batch["times"])

    def nll(
        self, user: torch.Tensor | None, batch: dict[str, torch.Tensor], encode
    ) -> torch.Tensor:
        gap = (batch["target_time"] - batch["times"][:, -1]).clamp_min(0.0) * self.span_days
        gap = gap.round()
        nll = -self.features(user, batch, encode).log_prob(gap + torch.rand_like(gap))
        if self.config.tpp_target == "later_day":
            later = (gap > 0).to(nll.dtype)
            return (nll * later).sum() / later.sum().clamp_min(1.0)
        return nll.mean()
