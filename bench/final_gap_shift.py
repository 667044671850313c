"""Are the LOO test gaps different, or only later? Target gaps of the training, validation and
test targets of a LOO split, side by side within calendar-time bins.

A tpp head recalibrated on validation targets is calibrated on the test targets only if the
two kinds of gap agree. If the test (each user's final) gap is longer than the earlier ones
*at the same calendar time*, no map fitted on earlier targets can fix it. No training;
seconds. Writes JSON and a Markdown table.

    python bench/final_gap_shift.py --data ../shared/data/beauty --name Beauty \
        --out docs/results/final_gap_shift
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from pasrec.training.pipeline import DataOptions, prepare_data
from pasrec.training.toi_eval import gap_summary, gaps_by_calendar

DAY = 86400


def iso_day(day: float) -> str:
    return datetime.fromtimestamp(day * DAY, UTC).date().isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .md")
    args = parser.parse_args()

    opts = DataOptions(path=args.data, name=args.name, truncate=11, train_samples="last")
    _, split, _, _ = prepare_data(opts)
    parts = {"train": split.train, "valid": split.valid, "test": split.test}
    rows = gaps_by_calendar(parts, args.bins)
    overall = {name: gap_summary(part) for name, part in parts.items()}
    lines = [
        f"{args.name or args.data}, LOO (last 11 interactions, one training sample per user): "
        "median gap in days from the history's last event to the target, and the share of "
        "same-day targets, within bins of that last event's calendar day (octiles of all "
        "parts together).",
        "",
        "| last event between | " + " | ".join(f"{n}: n / median / same-day %" for n in parts)
        + " |",
        "|---|" + "---|" * len(parts),
    ]
    for row in rows:
        cells = [f"{row[n]['count']} / {row[n]['median_days']:g} / {row[n]['same_day_pct']:.0f}"
                 if row[n]["count"] else "0 / - / -" for n in parts]  # fmt: skip
        lines.append(f"| {iso_day(row['from_day'])} – {iso_day(row['to_day'])} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    cells = [f"{len(parts[n])} / {overall[n]['median_days']:g} / {overall[n]['same_day_pct']:.0f}"
             for n in parts]  # fmt: skip
    lines.append("| all | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(table)
    stem.with_suffix(".json").write_text(
        json.dumps({"data": args.data, "overall": overall, "bins": rows}, indent=2)
    )
    print(table)


if __name__ == "__main__":
    main()
