"""ToI quality in days (SPEC section 4): the model's decoded time vs three naive predictors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pasrec.model.batching import make_batch
from pasrec.model.checkpoint import load_checkpoint
from pasrec.model.interfaces import TimeOfInterest, time_of_interest
from pasrec.model.time_norm import TimeNormalizer
from pasrec.model.tpp import fit_calibration, median_gap
from pasrec.training.splits import Samples

QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def error_summary(predicted_days: np.ndarray, true_days: np.ndarray) -> dict[str, float]:
    err = np.abs(np.asarray(predicted_days, dtype=np.float64) - np.asarray(true_days))
    return {
        "mae_days": float(err.mean()),
        "median_ae_days": float(np.median(err)),
        "within_1d_pct": float((err <= 1).mean() * 100),
        "within_7d_pct": float((err <= 7).mean() * 100),
    }


def history_days(items: np.ndarray, days: np.ndarray) -> list[np.ndarray]:
    """Per row, the days of the real (non-padded) history events."""
    return [row_days[row_items != 0] for row_items, row_days in zip(items, days, strict=True)]


def naive_predictions(test: Samples, global_gap: float) -> dict[str, np.ndarray]:
    """Predicted next days: last gap, the user's median gap, the global median gap.

    Both per-user gaps count a same-day pair as a gap of 0: these predict the next event,
    not a return (`median_gap` says why the push schedule differs)."""
    last_day = test.days[:, -1].astype(np.float64)
    last, median = [], []
    for real in history_days(test.items, test.days):
        last.append(real[-1] - real[-2] if len(real) > 1 else global_gap)
        gap = median_gap(real.tolist(), distinct=False)
        median.append(global_gap if gap is None else gap)
    return {
        "naive: last gap": last_day + np.asarray(last, dtype=np.float64),
        "naive: user median gap": last_day + np.asarray(median, dtype=np.float64),
        "naive: global median gap": last_day + global_gap,
    }


def global_median_gap(train: Samples) -> float:
    return float(np.median(train.target_day - train.days[:, -1]))


def _batches(samples: Samples, normalizer: TimeNormalizer, device: torch.device, size: int):
    for start in range(0, len(samples), size):
        part = samples.subset(np.arange(start, min(start + size, len(samples))))
        yield part, make_batch(
            part.items, part.days, normalizer, device, part.target, part.target_day
        )


def _dequantised_gaps(part: Samples, jitter: torch.Generator, device: torch.device):
    """True gap in days + U[0, 1): the continuous time the tpp head models (seeded)."""
    gap = torch.as_tensor(part.target_day - part.days[:, -1], dtype=torch.float32)
    return (gap + torch.rand(gap.shape, generator=jitter)).to(device)


@torch.no_grad()
def tpp_pit(
    model: torch.nn.Module,
    samples: Samples,
    normalizer: TimeNormalizer,
    device: torch.device,
    batch_size: int = 2048,
) -> torch.Tensor:
    """The raw mixture's F(true gap) per target (the probability integral transform), over
    the targets the head learns (``tpp_target="later_day"``: those after the last day)."""
    if model.config.tpp_target == "later_day":
        samples = samples.subset(np.flatnonzero(samples.target_day > samples.days[:, -1]))
    jitter = torch.Generator().manual_seed(0)
    values = []
    toi = _forecaster(model)
    for part, batch in _batches(samples, normalizer, device, batch_size):
        forecast = toi.gap_distribution(batch)
        values.append(forecast.raw_cdf(_dequantised_gaps(part, jitter, device)).cpu())
    return torch.cat(values)


def calibrate_tpp(
    model: torch.nn.Module, valid: Samples, normalizer: TimeNormalizer, device: torch.device
) -> None:
    """Fit the tpp head's recalibration on the validation targets (the model's fitted state,
    saved in its checkpoint)."""
    levels = fit_calibration(tpp_pit(model, valid, normalizer, device))
    _forecaster(model).set_gap_calibration(levels)


def _forecaster(model: torch.nn.Module) -> TimeOfInterest:
    toi = time_of_interest(model)
    if toi is None:
        raise ValueError(f"{type(model).__name__} forecasts no time of interest")
    return toi


def _coverage(pit: np.ndarray) -> dict[str, float]:
    """Share (%) of targets whose true gap lies below the predicted q-quantile, i.e. F <= q."""
    return {str(q): float((pit <= q).mean() * 100) for q in QUANTILE_LEVELS}


@torch.no_grad()
def model_toi(
    model: torch.nn.Module,
    samples: Samples,
    normalizer: TimeNormalizer,
    device: torch.device,
    horizon_days: int = 365,
    batch_size: int = 2048,
) -> dict[str, Any]:
    """Decoded days, the paper's cosine, and (tpp head) medians, NLL and quantile coverage."""
    decoded, cosines, medians, windows, nll, pit, raw_pit = [], [], [], [], [], [], []
    # The tpp head models gap + U[0,1) (dequantised days); score it on the same, seeded.
    jitter = torch.Generator().manual_seed(0)
    toi = _forecaster(model)
    recalibrated = False
    for part, batch in _batches(samples, normalizer, device, batch_size):
        predicted = toi.predict_toi(batch)
        truth = toi.encode_times(batch["target_time"])
        cosines.append(F.cosine_similarity(predicted, truth, dim=-1).cpu().numpy())
        last = torch.as_tensor(part.days[:, -1], device=device)
        decoded.append(toi.decode_toi_days(predicted, last, normalizer, horizon_days).cpu().numpy())
        forecast = toi.gap_distribution(batch)
        if forecast is not None:
            gap = _dequantised_gaps(part, jitter, device)
            nll.append((-forecast.log_prob(gap)).cpu().numpy())
            median = forecast.quantile(0.5).floor().cpu().numpy()
            medians.append(part.days[:, -1] + median)
            windows.append(part.days[:, -1] + forecast.window_point(7).cpu().numpy())
            raw = forecast.raw_cdf(gap)
            raw_pit.append(raw.cpu().numpy())
            pit.append(forecast.calibrate(raw).cpu().numpy())
            recalibrated = bool(forecast.calibration)
    cos = np.concatenate(cosines)
    out: dict[str, Any] = {
        "decoded_days": np.concatenate(decoded),
        "cosine_mean": float(cos.mean()),
        "cosine_above_0.95_pct": float((cos > 0.95).mean() * 100),
    }
    if medians:
        out["tpp_median_days"] = np.concatenate(medians)
        out["tpp_window7_days"] = np.concatenate(windows)
        out["tpp_nll_mean"] = float(np.concatenate(nll).mean())
        out["tpp_calibration_pct"] = _coverage(np.concatenate(pit))
        out["tpp_calibration_raw_pct"] = _coverage(np.concatenate(raw_pit))
        out["tpp_recalibrated"] = recalibrated
    return out


def gap_summary(samples: Samples) -> dict[str, float]:
    """How far the targets lie after their history's last event, in days."""
    gaps = (samples.target_day - samples.days[:, -1]).astype(np.float64)
    return {
        "median_days": float(np.median(gaps)),
        "mean_days": float(gaps.mean()),
        "same_day_pct": float((gaps == 0).mean() * 100),
    }


def gaps_by_calendar(parts: dict[str, Samples], bins: int = 8) -> list[dict[str, Any]]:
    """Each part's target gaps within calendar-time bins (quantiles, over all parts, of the
    day of the history's last event): whether a part's gaps differ from the others' at the
    same moment, or only because the part lies later in time."""
    last = {name: part.days[:, -1].astype(np.float64) for name, part in parts.items()}
    gaps = {name: (part.target_day - part.days[:, -1]).astype(np.float64)
            for name, part in parts.items()}  # fmt: skip
    edges = np.quantile(np.concatenate(list(last.values())), np.linspace(0.0, 1.0, bins + 1))
    rows = []
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        row: dict[str, Any] = {"from_day": float(low), "to_day": float(high)}
        for name in parts:
            inside = (last[name] >= low) & ((last[name] < high) | (i == bins - 1))
            chosen = gaps[name][inside]
            row[name] = {
                "count": int(inside.sum()),
                "median_days": float(np.median(chosen)) if chosen.size else None,
                "same_day_pct": float((chosen == 0).mean() * 100) if chosen.size else None,
            }
        rows.append(row)
    return rows


def toi_report(
    model: torch.nn.Module,
    train: Samples,
    valid: Samples,
    test: Samples,
    normalizer: TimeNormalizer,
    device: torch.device,
    label: str,
    plot_path: str | Path | None = None,
) -> dict[str, Any]:
    """The ToI table: one row per predictor, all on the same test targets; the gaps of the
    training, validation and test targets side by side, since a shift between them is what
    a calibration fitted on validation targets cannot see."""
    truth = test.target_day.astype(np.float64)
    predictions: dict[str, np.ndarray] = {}
    report: dict[str, Any] = {
        "test_targets": int(len(test)),
        "target_gaps": {name: gap_summary(part) for name, part in
                        (("train", train), ("valid", valid), ("test", test))},
    }  # fmt: skip
    if time_of_interest(model) is not None:
        result = model_toi(model, test, normalizer, device)
        predictions[f"{label}: decoded ToI"] = result["decoded_days"]
        report["cosine_mean"] = result["cosine_mean"]
        report["cosine_above_0.95_pct"] = result["cosine_above_0.95_pct"]
        if "tpp_median_days" in result:
            predictions[f"{label}: tpp median"] = result["tpp_median_days"]
            predictions[f"{label}: tpp best ±7-day window"] = result["tpp_window7_days"]
            report["tpp_nll_mean"] = result["tpp_nll_mean"]
            for key in ("tpp_calibration_pct", "tpp_calibration_raw_pct", "tpp_recalibrated"):
                report[key] = result[key]
            raw_valid = tpp_pit(model, valid, normalizer, device).numpy()
            report["tpp_calibration_raw_valid_pct"] = _coverage(raw_valid)
    predictions.update(naive_predictions(test, global_median_gap(train)))
    report["predictors"] = {name: error_summary(p, truth) for name, p in predictions.items()}
    if plot_path is not None:
        from pasrec.training.plots import plot_error_distributions

        errors = {name: np.abs(p - truth).tolist() for name, p in predictions.items()}
        plot_error_distributions(errors, plot_path, "ToI error on the test targets")
        report["plot"] = str(plot_path)
    return report


def evaluate_toi_for_checkpoint(checkpoint, data_opts, device: str, plot: str | None):
    from pasrec.training.pipeline import prepare_data

    ckpt = load_checkpoint(checkpoint, device)
    data_opts.history_length = ckpt.config.history_length
    _, split, _, _ = prepare_data(data_opts)
    return toi_report(
        ckpt.model, split.train, split.valid, split.test, ckpt.time, torch.device(device),
        ckpt.name, plot,
    )
