import math

import numpy as np
import pytest
import torch

from pasrec.model.config import ModelConfig, preset
from pasrec.model.registry import build_model
from pasrec.model.time_encoding import TimeEncoding
from pasrec.model.time_norm import TimeNormalizer
from pasrec.model.toi_decode import decode_toi_days
from pasrec.model.tpp import (
    GapDistribution,
    consecutive_gaps,
    fit_calibration,
    history_rhythm,
    median_gap,
)
from pasrec.training.splits import Samples
from pasrec.training.toi_eval import (
    error_summary,
    gaps_by_calendar,
    global_median_gap,
    naive_predictions,
)

NORMALIZER = TimeNormalizer(origin_day=10000, span_days=1000)


@pytest.mark.parametrize("kind", ["sinusoidal", "gaussian", "rff"])
@pytest.mark.parametrize("true_day", [10500, 10990, 11080])  # the last is past the training range
def test_decoding_returns_the_encoded_day(kind, true_day):
    encoding = TimeEncoding(ModelConfig(hidden=64, heads=2, time_encoding=kind, seed=2))
    last_day = true_day - 17
    exact = encoding(torch.tensor([[NORMALIZER.normalize_days(true_day).item()]])).squeeze(1)
    decoded = decode_toi_days(exact, torch.tensor([last_day]), encoding, NORMALIZER, 365)
    assert decoded.tolist() == [true_day]


def test_error_summary_by_hand():
    summary = error_summary(np.array([10, 12, 20, 100]), np.array([10, 11, 27, 50]))
    assert summary == {
        "mae_days": (0 + 1 + 7 + 50) / 4,
        "median_ae_days": 4.0,
        "within_1d_pct": 50.0,
        "within_7d_pct": 75.0,
    }


def samples(items, days, target_day):
    items = np.asarray(items)
    return Samples(
        items=items,
        days=np.asarray(days),
        target=np.ones(len(items), dtype=np.int64),
        target_day=np.asarray(target_day),
        user=np.arange(len(items)),
    )


def test_naive_predictors_by_hand():
    test = samples(
        items=[[0, 1, 2, 3], [0, 0, 0, 4], [5, 6, 7, 8]],
        days=[[0, 100, 103, 110], [0, 0, 0, 50], [10, 11, 30, 31]],
        target_day=[120, 60, 40],
    )
    preds = naive_predictions(test, global_gap=9.0)
    # last gaps: 7, none (global 9), 1; user medians: median(3,7)=5, 9, median(1,19,1)=1
    assert preds["naive: last gap"].tolist() == [117, 59, 32]
    assert preds["naive: user median gap"].tolist() == [115, 59, 32]
    assert preds["naive: global median gap"].tolist() == [119, 59, 40]


def test_global_median_gap_is_over_training_targets():
    train = samples(
        items=[[1, 2], [3, 4], [5, 6]], days=[[0, 5], [0, 10], [3, 4]], target_day=[6, 20, 104]
    )
    assert global_median_gap(train) == 10.0  # gaps 1, 10, 100


def test_gaps_by_calendar_compares_parts_at_the_same_moment():
    # Last events on days 0..3 (early) and 10..13 (late); "final" gaps are long in both bins.
    early = samples(items=[[1, 2]] * 4, days=[[0, d] for d in range(4)],
                    target_day=[d + g for d, g in zip(range(4), [0, 0, 1, 0], strict=True)])
    late_days = list(range(10, 14))
    final = samples(items=[[1, 2]] * 4, days=[[0, d] for d in late_days[:2] + [1, 2]],
                    target_day=[10 + 30, 11 + 20, 1 + 9, 2 + 0])  # fmt: skip
    rows = gaps_by_calendar({"earlier": early, "final": final}, bins=2)
    # Pooled last days 0,1,2,3,10,11,1,2: the median edge is 2.
    assert [(r["from_day"], r["to_day"]) for r in rows] == [(0.0, 2.0), (2.0, 11.0)]
    first, second = rows
    assert first["earlier"] == {"count": 2, "median_days": 0.0, "same_day_pct": 100.0}
    assert first["final"] == {"count": 1, "median_days": 9.0, "same_day_pct": 0.0}
    assert second["earlier"] == {"count": 2, "median_days": 0.5, "same_day_pct": 50.0}
    # The last bin includes its upper edge (day 11).
    third = pytest.approx(100 / 3)
    assert second["final"] == {"count": 3, "median_days": 20.0, "same_day_pct": third}


def test_tpp_head_learns_a_known_gap_distribution():
    """Gaps ~ LogNormal(log 10, 0.5) days: median 10, P(gap <= 7 days) = Phi(log(0.7)/0.5)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, length, span = 4096, 5, 1000.0
    config = preset(
        "pasrec",
        n_items=20,
        hidden=32,
        history_length=length,
        toi_head="tpp",
        span_days=span,
        tpp_components=4,
    )
    model = build_model(config)
    gaps = np.floor(rng.lognormal(math.log(10), 0.5, size=(n, length)))
    days = 10000 + np.cumsum(gaps, axis=1)
    items = rng.integers(1, 21, size=(n, length))
    target_day = days[:, -1] + np.floor(rng.lognormal(math.log(10), 0.5, size=n))
    times = torch.tensor((days - NORMALIZER.origin_day) / span, dtype=torch.float32)
    batch = {
        "items": torch.tensor(items),
        "times": times,
        "target": torch.tensor(rng.integers(1, 21, size=n)),
        "target_time": torch.tensor((target_day - 10000) / span, dtype=torch.float32),
    }
    optimizer = torch.optim.Adam(model.tpp.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        loss = model.gap_nll(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.5
    model.eval()
    forecast = model.gap_distribution({k: v[:256] for k, v in batch.items()})
    # Dequantised: floor(g) + U[0,1) has the median of g within half a day.
    median = forecast.quantile(0.5)
    assert median.mean().item() == pytest.approx(10.0, abs=1.0)
    p_week = forecast.cdf(torch.full((256,), 7.0)).mean().item()
    true_p = 0.5 * (1 + math.erf(math.log(7 / 10) / 0.5 / math.sqrt(2)))
    assert p_week == pytest.approx(true_p, abs=0.05)


def test_window_point_finds_the_densest_two_week_window():
    """A mixture with most mass near 2 days and a wider mode near 60: the best +-7-day window
    is centred on the narrow mode, while the median lies between the modes."""
    log_w = torch.log(torch.tensor([[0.55, 0.45]]))
    means = torch.log1p(torch.tensor([[2.0, 60.0]]))
    log_scales = torch.log(torch.tensor([[0.2, 0.3]]))
    forecast = GapDistribution(log_w, means, log_scales)
    assert 0 <= forecast.window_point(7).item() <= 8
    assert forecast.quantile(0.5).item() > 2.5


def test_best_window_start_skips_the_same_day_and_covers_the_later_mode():
    """60 % of returns on the day itself (gap ~0.3 d), 40 % tightly around day 30. From the
    next day on, the 7-day window [p, p + 7] holding most returns must contain day 30."""
    forecast = GapDistribution(
        torch.log(torch.tensor([[0.6, 0.4]])), torch.log1p(torch.tensor([[0.3, 30.0]])),
        torch.log(torch.tensor([[0.05, 0.01]])),
    )  # fmt: skip
    start = forecast.best_window_start(7.0).item()
    assert 23 <= start <= 30
    # Allowed to start on the day itself, the same-day mass wins.
    assert forecast.best_window_start(7.0, earliest_days=0).item() == 0
    # The mass the chosen window holds is the 40 % of the late mode.
    held = forecast.cdf(torch.tensor([start + 8.0])) - forecast.cdf(torch.tensor([start]))
    assert held.item() == pytest.approx(0.4, abs=0.01)


def test_recalibration_fixes_a_head_whose_spread_is_too_narrow():
    """The head says LogNormal(log 10, 0.3) for everyone; true gaps ~ LogNormal(log 14, 0.8).
    Raw quantiles miss badly; after fitting G on one sample, coverage on a fresh sample is
    within 2 points at every level, quantiles stay monotone, and the model keeps G as its
    fitted state."""
    config = preset("pasrec", n_items=4, hidden=8, history_length=3, toi_head="tpp",
                    tpp_components=1)  # fmt: skip
    model = build_model(config)
    n = 20000
    params = tuple(torch.full((n, 1), v) for v in (0.0, math.log1p(10.0), math.log(0.3)))
    raw = GapDistribution(*params)
    gen = torch.Generator().manual_seed(0)

    def true_gaps() -> torch.Tensor:
        return torch.expm1(math.log1p(14.0) + 0.8 * torch.randn(n, generator=gen))

    levels = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9])

    def coverage(forecast: GapDistribution, gaps: torch.Tensor) -> torch.Tensor:
        below = [(gaps <= forecast.quantile(float(q))).float().mean() for q in levels]
        return torch.stack(below)

    held_out, fresh = true_gaps(), true_gaps()
    assert (coverage(raw, fresh) - levels).abs().max() > 0.15  # badly calibrated before
    model.set_gap_calibration(fit_calibration(raw.raw_cdf(held_out)))
    calibrated = GapDistribution(*params, model.tpp.calibration)
    assert (coverage(calibrated, fresh) - levels).abs().max() < 0.02
    assert model.fitted_state() == {"tpp_calibration": list(calibrated.calibration)}
    first = GapDistribution(*(p[:1] for p in params), calibrated.calibration)
    quantiles = [first.quantile(q).item() for q in (0.2, 0.4, 0.6, 0.8)]
    assert quantiles == sorted(quantiles)


@pytest.mark.parametrize("values", [[0.0, 0.5], [0.0, 0.6, 0.5, 1.0], [0.1, 1.0], [0.0]])
def test_invalid_calibration_is_refused(values):
    model = build_model(preset("pasrec", n_items=4, hidden=8, toi_head="tpp"))
    with pytest.raises(ValueError, match="tpp calibration"):
        model.set_gap_calibration(values)
    assert model.fitted_state() == {}


def _tpp_model(**overrides):
    config = preset("pasrec", n_items=20, hidden=16, history_length=4, toi_head="tpp",
                    span_days=100.0, tpp_components=2, **overrides)  # fmt: skip
    torch.manual_seed(0)
    return build_model(config).eval()


def _gap_batch(shift: float = 0.0, items=None):
    return {
        "items": torch.tensor(items or [[0, 3, 4, 5], [1, 2, 3, 4]]),
        "times": torch.tensor([[0.0, 0.10, 0.12, 0.30], [0.2, 0.21, 0.25, 0.4]]) + shift,
        "target_time": torch.tensor([0.30, 0.47]) + shift,
    }


def test_gaps_only_tpp_head_reads_no_absolute_time_and_no_item():
    """Past the training span (times > 1) absolute features are out of range; a head on the
    gaps alone gives the same forecast for the same rhythm at any time, whatever the items."""
    gaps_head = _tpp_model(tpp_inputs="gaps")
    later = _gap_batch(shift=2.0, items=[[0, 9, 8, 7], [6, 5, 4, 3]])
    for now, then in zip(gaps_head.gap_distribution(_gap_batch()).params,
                         gaps_head.gap_distribution(later).params, strict=True):  # fmt: skip
        assert torch.allclose(now, then, atol=1e-6)
    state_head = _tpp_model()
    now, then = state_head.gap_distribution(_gap_batch()), state_head.gap_distribution(later)
    assert not torch.allclose(now.means, then.means)


def test_later_day_target_leaves_same_day_returns_out_of_the_loss():
    """Row 0's target falls on its last event's day (gap 0), row 1's 7 days later: under
    `later_day` the loss is row 1's alone, whatever row 0 holds; under `next` it is not."""
    for target, row_0_counts in (("later_day", False), ("next", True)):
        model = _tpp_model(tpp_inputs="gaps", tpp_target=target)
        batch = _gap_batch()
        changed = {**batch, "times": batch["times"].clone()}
        changed["times"][0, 1] = 0.25  # another rhythm for row 0 only
        losses = []
        for b in (batch, changed):
            torch.manual_seed(3)  # the same dequantisation draws
            with torch.no_grad():
                losses.append(float(model.gap_nll(b)))
        assert (losses[0] != pytest.approx(losses[1])) == row_0_counts, target


def test_p_timely_is_the_window_mass_given_no_return_before_the_push():
    """60 % of returns on the day itself, 40 % tightly around day 30. A push on day 1 is sent
    to a user not back on day 0, who will return around day 30: not within 7 days of it. A
    push on day 25 finds such a user back by day 33 almost surely."""
    forecast = GapDistribution(torch.log(torch.tensor([[0.6, 0.4]] * 2)),
                               torch.log1p(torch.tensor([[0.3, 30.0]] * 2)),
                               torch.log(torch.tensor([[0.05, 0.01]] * 2)))  # fmt: skip
    p = forecast.p_timely(torch.tensor([1.0, 25.0]), 7.0)
    assert p[0].item() < 0.01 and p[1].item() > 0.99
    start = torch.tensor([5.0, 25.0])
    grid = torch.stack((start, start + 8.0), dim=1)
    lower, upper = forecast.cdf(grid).unbind(1)
    assert torch.allclose(forecast.p_timely(start, 7.0), (upper - lower) / (1 - lower))


@pytest.mark.parametrize(("field", "value"), [("tpp_inputs", "items"), ("tpp_target", "soon")])
def test_unknown_tpp_options_are_refused(field, value):
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        ModelConfig(**{field: value})


def test_history_rhythm_by_hand():
    """Days 0, 0, 2, 7 after a padded slot: distinct-day gaps 2 and 5 (the same-day pair and
    the padding are no gap); the median is the lower middle one of an even count."""
    items = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 0, 0, 5]])
    times = torch.tensor([[0.0, 0.0, 0.0, 0.02, 0.07], [0.0, 0.0, 0.0, 0.0, 0.5]])
    rhythm = history_rhythm(*consecutive_gaps(times, items, span_days=100.0))
    expected = [math.log1p(2.0), math.log1p(3.5), 1.0, 0.5]
    assert rhythm[0].tolist() == pytest.approx(expected, abs=1e-5)
    assert rhythm[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # one event: no rhythm yet


def test_median_gap_definition():
    assert median_gap([0, 2, 2, 8, 9], distinct=True) == 2  # gaps 2, 6, 1
    assert median_gap([0, 2, 2, 8, 9], distinct=False) == 1.5  # gaps 2, 0, 6, 1
    assert median_gap([9, 0, 3], distinct=True) == 4.5  # sorted first; the mean of 3 and 6
    assert median_gap([4, 4], distinct=True) is None
    assert median_gap([4, 4], distinct=False) == 0
    assert median_gap([7], distinct=False) is None


def test_history_rhythm_median_is_median_gap_over_a_batch():
    """Distinct days as in `median_gap`; torch's lower middle gap for an even count."""
    generator = torch.Generator().manual_seed(0)
    padding = torch.randint(0, 9, (64, 1), generator=generator)  # histories are left-padded
    items = (torch.arange(8) >= padding).long()
    days = torch.randint(0, 6, (64, 8), generator=generator).cumsum(1).float()
    rhythm = history_rhythm(*consecutive_gaps(days / 100.0, items, span_days=100.0))
    counts = set()
    for row in range(len(items)):
        distinct = sorted(set(days[row][items[row] != 0].tolist()))
        expected = median_gap(distinct, distinct=True)
        if expected is None:
            assert rhythm[row, 0] == 0.0
            continue
        gaps = sorted(b - a for a, b in zip(distinct, distinct[1:], strict=False))
        if len(gaps) % 2 == 0:
            expected = gaps[len(gaps) // 2 - 1]
        counts.add(len(gaps) % 2)
        assert rhythm[row, 0].item() == pytest.approx(math.log1p(expected), abs=1e-5)
    assert counts == {0, 1}  # both the odd and the even case were checked


def test_naive_user_median_counts_same_day_pairs():
    test = samples(items=[[1, 2, 3, 4]], days=[[0, 0, 0, 10]], target_day=[12])
    # gaps 0, 0, 10: the next event is often on the same day
    assert naive_predictions(test, global_gap=9.0)["naive: user median gap"].tolist() == [10]
