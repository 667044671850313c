"""A replay's data: the interaction log cut at a point in time into what the model may learn
from (before) and what the simulation feeds to the service (from the cutoff on)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pasrec.training.loaders import load_interactions
from pasrec.training.synthetic import HEADER


@dataclass
class ReplayData:
    users: np.ndarray  # raw ids, str
    items: np.ndarray
    times: np.ndarray  # unix seconds, int
    cutoff: float

    @property
    def before(self) -> np.ndarray:
        return self.times < self.cutoff

    @property
    def end(self) -> float:
        return float(self.times.max())

    def later_events(self) -> list[tuple[str, str, float]]:
        mask = ~self.before
        return list(
            zip(self.users[mask].tolist(), self.items[mask].tolist(), self.times[mask].tolist(),
                strict=True)
        )  # fmt: skip

    def write_before(self, path: Path) -> Path:
        """The pre-cutoff events as RecBole `.inter`, what the model is trained on."""
        path.parent.mkdir(parents=True, exist_ok=True)
        mask = self.before
        rows = [HEADER] + [
            f"{u}\t{i}\t1\t{t}"
            for u, i, t in zip(self.users[mask], self.items[mask], self.times[mask], strict=True)
        ]
        path.write_text("\n".join(rows) + "\n")
        return path


def parse_cutoff(text: str, times: np.ndarray) -> float:
    """`0.9` = 90% of the way through the data's time span; else an ISO date or datetime
    (UTC when it carries no offset)."""
    try:
        fraction = float(text)
    except ValueError:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--cutoff as a fraction must lie strictly between 0 and 1, got {text}")
    start, end = float(times.min()), float(times.max())
    return start + fraction * (end - start)


def load_replay_data(
    path: str,
    cutoff: str,
    format: str | None = None,
    name: str | None = None,
    max_users: int | None = None,
    seed: int = 0,
) -> ReplayData:
    """The log in chronological order (stable within a timestamp), optionally a seeded
    sample of `max_users` users (all their events); a fractional cutoff is placed on the
    whole log's time span."""
    inter = load_interactions(path, format, name)
    users = np.asarray(inter.users).astype(str)
    items = np.asarray(inter.items).astype(str)
    times = np.asarray(inter.timestamps).astype(np.int64)
    # The cutoff comes from the whole log, so a user sample replays the same stretch of time.
    cut = parse_cutoff(cutoff, times)
    if max_users is not None:
        distinct = np.unique(users)
        if max_users < len(distinct):
            chosen = np.random.default_rng(seed).choice(distinct, max_users, replace=False)
            keep = np.isin(users, chosen)
            users, items, times = users[keep], items[keep], times[keep]
    order = np.argsort(times, kind="stable")
    users, items, times = users[order], items[order], times[order]
    if not (times < cut).any() or not (times >= cut).any():
        raise ValueError(f"cutoff {cutoff} leaves no events on one side")
    return ReplayData(users, items, times, cut)
