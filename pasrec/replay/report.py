"""A replay's outputs: `replay.json`, `replay.md` (one table per window) and two PNGs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from pasrec.replay.scoring import PushRecord  # noqa: E402

DAY = 86400.0
COLUMNS = ("pushes", "judged", "timely", "timely_ci95", "spam", "hits", "HR@{k}",
           "HR@{k}_ci95", "HR@{k}_of_timely", "NDCG@{k}", "median_lead_days",
           "pushes_per_user_week", "spam_per_user_week")  # fmt: skip
# A user gets well under one push a week, so per user-week these print as 0.00 to two
# decimals: the table shows them per 100 user-weeks (replay.json keeps the plain rate).
PER_100 = {"pushes_per_user_week": "pushes_per_100_user_weeks",
           "spam_per_user_week": "spam_per_100_user_weeks"}  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)):  # an interval
        return "–".join(f"{v:.2f}" for v in value)
    return str(value)


def markdown(result: Mapping[str, Any]) -> str:
    k = result["k"]
    lines = [
        f"# Replay: {result['data']}",
        "",
        f"Cutoff {result['cutoff_iso']}{_as_given(result)}; {result['users']} users, "
        f"{result['later_events']} later events over {result['weeks']:.1f} weeks "
        f"({result['later_events_known_item']:.1f}% on items the checkpoint knows: no push can "
        "name the others); checkpoint "
        f"`{result['checkpoint']}` ({result['model']})"
        + (f", next times from `{result['toi_checkpoint']}`" if result.get("toi_checkpoint")
           else "")
        + ". Rates in %; a push is judged when its "
        f"whole window lies inside the data. Store: {result['store']}. Policy: "
        + result["policy"],
        "",
    ]
    columns = [c.format(k=k) for c in COLUMNS]
    header = [PER_100.get(c, c) for c in columns]
    timed_note = ["Without the pushes the fallback delay scheduled (too little history for "
                  "the strategy: the same rule under every strategy).", ""]  # fmt: skip
    sections = [("windows", "", []), ("timed_windows", ", strategy-timed pushes only", timed_note)]
    for key, caption, note in sections:
        for window, rows in result[key].items():
            lines += [f"## Window {window}{caption}", "", *note]
            lines += ["| strategy | " + " | ".join(header) + " |",
                      "|---" * (len(header) + 1) + "|"]  # fmt: skip
            for strategy, row in rows.items():
                cells = " | ".join(
                    _cell(100 * row[c] if c in PER_100 else row[c]) for c in columns
                )
                lines.append(f"| {strategy} | {cells} |")
            lines.append("")
    lines += ["## Delivery", "", "| strategy | receiver unique | deliveries | duplicates | "
              "rejected | push statuses | wall s |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for strategy, run in result["runs"].items():
        r = run["receiver"]
        lines.append(
            f"| {strategy} | {r['unique']} | {r['deliveries']} | {r['duplicates']} | "
            f"{r['rejected']} | {run['statuses']} | {run['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _as_given(result: Mapping[str, Any]) -> str:
    """The cutoff as the user wrote it (a share such as 0.9), when that is not the date."""
    return "" if result["cutoff"] == result["cutoff_iso"] else f" ({result['cutoff']})"


def plot_timeline(
    events: Sequence[tuple[str, str, float]],
    pushes: Mapping[str, Sequence[PushRecord]],
    users: Sequence[str],
    start: float,
    path: Path,
) -> None:
    """Interactions and each strategy's pushes of a few users on one time axis (days)."""
    fig, axes = plt.subplots(len(users), 1, figsize=(10, 1.3 * len(users) + 1), sharex=True)
    axes = [axes] if len(users) == 1 else list(axes)
    markers = "v^<>sPX*"
    for ax, user in zip(axes, users, strict=True):
        times = [(t - start) / DAY for u, _, t in events if u == user]
        ax.scatter(times, [0] * len(times), marker="o", color="black", label="interaction")
        for row, (name, records) in enumerate(pushes.items(), start=1):
            at = [(p.at - start) / DAY for p in records if p.user_id == user]
            ax.scatter(at, [row] * len(at), marker=markers[row % len(markers)], label=name)
        ax.set_yticks(range(len(pushes) + 1), ["events", *pushes])
        ax.set_ylabel(user, rotation=0, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    axes[-1].set_xlabel("days after the cutoff")
    axes[0].set_title("Interactions and pushes per strategy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tradeoff(
    panels: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]], k: int, path: Path
) -> None:
    """Timeliness (x) against relevance HR@K (y) with their 95% intervals, one panel per set
    of pushes (title -> window -> strategy -> row): a colour per strategy, a marker per
    window, the same colour for a strategy in every panel."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    colours: dict[str, Any] = {}
    for ax, (title, windows) in zip(axes[0], panels.items(), strict=True):
        for marker, (window, rows) in zip("os^D", windows.items(), strict=False):
            for strategy, row in rows.items():
                colour = colours.setdefault(strategy, f"C{len(colours)}")
                if row["timely"] is None:
                    continue
                x, y = row["timely"], row[f"HR@{k}"]
                ax.errorbar(x, y, xerr=_error_bar(x, row["timely_ci95"]),
                            yerr=_error_bar(y, row[f"HR@{k}_ci95"]), fmt=marker, markersize=7,
                            color=colour, capsize=3, label=f"{strategy}, {window}")  # fmt: skip
        ax.set_xlabel("timely pushes (%)")
        ax.set_ylabel(f"HR@{k} of pushes (%)")
        ax.set_title(f"Timeliness vs relevance: {title}")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        else:  # e.g. a gate that let none of a strategy's own pushes through
            ax.text(0.5, 0.5, "no pushes", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _error_bar(value: float, interval: Sequence[float]) -> list[list[float]]:
    """matplotlib's [[below], [above]] distances of an interval around its point (clipped at
    0: at a share of 100% the bound may fall an ulp below the point)."""
    return [[max(0.0, value - interval[0])], [max(0.0, interval[1] - value)]]


def write_outputs(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps(result, indent=2))
    (out / "replay.md").write_text(markdown(result))
