"""PNG figures a person would rather look at than read."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TRAIN_LOG = "train_log.jsonl"
"""A run's per-epoch records, one JSON object a line (`pasrec train` writes it)."""


def read_train_log(run_dir: Path) -> list[dict[str, float]] | None:
    """A run's per-epoch records from `train_log.jsonl`, or from `train_log.jsonl.gz` (the
    way docs/results keeps raw logs, gzipped); None when the run has written neither."""
    for path, opener in ((run_dir / TRAIN_LOG, open), (run_dir / f"{TRAIN_LOG}.gz", gzip.open)):
        if path.is_file():
            with opener(path, "rt") as fh:
                return [json.loads(line) for line in fh if line.strip()]
    return None


def _save(fig, ax, path: str | Path, title: str, xlabel: str, ylabel: str,
          legend_size: int | None = None, grid: bool = True) -> Path:  # fmt: skip
    """The finish every one-axis figure shares: labels, title, legend, PNG."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if grid:
        ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_training_curves(history: list[dict[str, float]], path: str | Path, title: str) -> Path:
    """Training losses (left) and validation metrics (right) per epoch."""
    path = Path(path)
    epochs = [r["epoch"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in sorted({k for r in history for k in r if k.startswith("train_")}):
        left.plot(epochs, [r.get(key, float("nan")) for r in history], label=key[6:])
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    for key in sorted({k for r in history for k in r if k.startswith("valid_")}):
        points = [(r["epoch"], r[key]) for r in history if key in r]
        right.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=key[6:])
    right.set_xlabel("epoch")
    right.set_ylabel("validation metric (%)")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_validation_curves(
    curves: dict[str, list[tuple[float, float]]], path: str | Path, metric: str, title: str
) -> Path:
    """One validation curve per run (label "method/seedN"): a colour per method, a line style
    per seed, so that seeds of one method read as one band."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours: dict[str, str] = {}
    styles = ["-", "--", ":", "-."]
    for label, points in curves.items():
        method, _, seed = label.rpartition("/seed")
        colour = colours.setdefault(method, f"C{len(colours)}")
        style = styles[int(seed) % len(styles)] if seed.isdigit() else "-"
        ax.plot([p[0] for p in points], [p[1] for p in points], style, color=colour, label=label)
    return _save(fig, ax, path, title, "epoch", f"validation {metric} (%)", legend_size=7)


def plot_error_distributions(errors: dict[str, list[float]], path: str | Path, title: str) -> Path:
    """Histogram of absolute ToI errors in days, one line per predictor."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = [0, 1, 2, 4, 7, 14, 30, 60, 120, 240, 365, 730, 1500]
    for name, values in errors.items():
        ax.hist(values, bins=bins, histtype="step", linewidth=1.6, label=name, density=False)
    ax.set_xscale("symlog", linthresh=1)
    return _save(fig, ax, path, title, "|predicted - true| next-interaction time (days)",
                 "test users", grid=False)  # fmt: skip


def plot_similarity_by_gap(curves: dict[str, dict[float, float]], path: str | Path,
                           title: str) -> Path:  # fmt: skip
    """Cosine between the encodings of two moments against the days between them, one line
    per encoding: where a line stays near 1, the encoding cannot tell those moments apart."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, points in curves.items():
        gaps = sorted(points)
        ax.plot(gaps, [points[g] for g in gaps], marker=".", label=label)
    ax.set_xscale("log")
    return _save(fig, ax, path, title, "days between the two moments",
                 "mean cosine of their encodings", legend_size=8)  # fmt: skip
