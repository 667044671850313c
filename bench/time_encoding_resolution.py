"""How many days apart two moments must be before each time encoding tells them apart.

On real data (the test histories of a LOO split, times normalised by the training span as
the models see them): the mean cosine between TE(t) and TE(t + g days) for several gaps, the
median cosine between consecutive items of a history and between its first and last item.
No training; seconds on MovieLens, minutes on Beauty. Writes JSON, a Markdown table and a
PNG of cosine against gap.

    python bench/time_encoding_resolution.py --data ../shared/data/beauty --name Beauty \
        --out docs/results/time_encoding_resolution
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pasrec.training.encoding_resolution import encoding, history_similarity, similarity_by_gap
from pasrec.training.pipeline import DataOptions, model_config, prepare_data
from pasrec.training.plots import plot_similarity_by_gap

TABLE_GAPS = [1.0, 7.0, 30.0, 365.0]
PLOT_GAPS = [float(g) for g in np.unique(np.geomspace(1, 3650, 30).round())]
GAPS = sorted(set(PLOT_GAPS) | set(TABLE_GAPS))  # each gap encoded once
# The paper's defaults (SPEC 2.2) and its RFF grid's top value, then larger RFF scales.
ENCODINGS = [("sinusoidal", None), ("gaussian", 0.05), ("rff", 1.0), ("rff", 10.0),
             ("rff", 100.0), ("rff", 1000.0)]  # fmt: skip


def label(kind: str, sigma: float | None) -> str:
    return kind if sigma is None else f"{kind} sigma {sigma:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--out", required=True, help="output stem: writes .json, .md, .png")
    args = parser.parse_args()

    opts = DataOptions(path=args.data, name=args.name, truncate=11, train_samples="last")
    data, split, normalizer, length = prepare_data(opts)
    config = model_config("pasrec", data, normalizer, length, hidden=args.hidden)
    test = split.test
    valid = test.items != 0
    times = np.where(valid, normalizer.normalize_days(test.days), 0.0)
    anchors = times[valid]
    results = {}
    for kind, sigma in ENCODINGS:
        te = encoding(config, kind, sigma)
        results[label(kind, sigma)] = {
            "by_gap": similarity_by_gap(te, anchors, normalizer.span_days, GAPS),
            **history_similarity(te, times, valid),
        }
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    title = f"{args.name or args.data}: time-encoding resolution (span {normalizer.span_days} d)"
    plot_similarity_by_gap({k: {g: v["by_gap"][g] for g in PLOT_GAPS} for k, v in results.items()},
                           stem.with_suffix(".png"), title)  # fmt: skip
    lines = [
        f"{title}, hidden {args.hidden}, {len(test)} test histories, {len(anchors)} anchor "
        "times. Mean cosine between TE(t) and TE(t + gap); median cosine between consecutive "
        "items of a history and between its first and last item.",
        "",
        "| encoding | "
        + " | ".join(f"{g:g} d" for g in TABLE_GAPS)
        + " | consecutive items | first vs last item |",
        "|---|" + "---|" * (len(TABLE_GAPS) + 2),
    ]
    for name, r in results.items():
        cells = [f"{r['by_gap'][g]:.3f}" for g in TABLE_GAPS]
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {r['adjacent_median']:.3f} | {r['first_last_median']:.3f} |"
        )
    table = "\n".join(lines) + "\n"
    stem.with_suffix(".md").write_text(table)
    stem.with_suffix(".json").write_text(json.dumps(
        {"data": args.data, "hidden": args.hidden, "span_days": normalizer.span_days,
         "results": {k: {**v, "by_gap": {str(g): c for g, c in v["by_gap"].items()}}
                     for k, v in results.items()}}, indent=2))  # fmt: skip
    print(table)


if __name__ == "__main__":
    main()
