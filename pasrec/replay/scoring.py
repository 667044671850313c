"""Scores of delivered pushes against what the users really did afterwards.

A push at time `p` to user `u` with items `r_1..r_K`, judged over a window `w`:

* **timely**: `u`'s next real interaction at or after `p` comes no later than `p + w`
  (an interaction at exactly `p` counts: the passive reference pushes at that instant);
* **spam**: the opposite, no interaction of `u` in `[p, p + w]`;
* **relevant**: HR@K, whether some `r_i` is among the items `u` interacts with in
  `[p, p + w]`; NDCG@K with those items as the relevant set (binary gains, ideal DCG over
  `min(K, number of relevant items)`);
* **HR@K of timely pushes**: hits / timely pushes. A push that is not timely cannot hit, so
  HR@K = timely share x this; it is the item side alone, the number to set beside the
  passive reference (whose every push is timely), while HR@K also pays for the clock;
* **95% intervals** (Wilson score) of the timely share and of HR@K: with a few thousand
  pushes and hit rates under 1%, two strategies' rates often differ by less than the noise;
* **pushes per user per week**: delivered pushes / users / weeks of the replay, and the same
  rate for spam pushes (a push that is not timely), which a spam rate in % alone hides.

A push whose window reaches past the end of the data cannot be judged (the user may still
come back) and is counted as `censored`, not scored.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WEEK_SECONDS = 7 * 86400.0


@dataclass(frozen=True)
class PushRecord:
    user_id: str
    at: float  # unix seconds when the push reached the user
    items: tuple[str, ...]  # ranked
    # Scheduled by the policy's fallback delay (too little history for the strategy): the
    # same rule under every strategy, so these pushes blur the comparison of schedules.
    fallback: bool = False


@dataclass(frozen=True)
class Interaction:
    at: float
    item_id: str


class Timelines:
    """Each user's later interactions, sorted by time, for window look-ups."""

    def __init__(self, events: Iterable[tuple[str, str, float]]) -> None:
        by_user: dict[str, list[Interaction]] = {}
        for user_id, item_id, at in events:
            by_user.setdefault(user_id, []).append(Interaction(float(at), item_id))
        self._events = {u: sorted(evs, key=lambda e: e.at) for u, evs in by_user.items()}
        self._times = {u: [e.at for e in evs] for u, evs in self._events.items()}

    def window(self, user_id: str, start: float, length: float) -> list[Interaction]:
        times = self._times.get(user_id)
        if not times:
            return []
        lo = bisect.bisect_left(times, start)
        hi = bisect.bisect_right(times, start + length)
        return self._events[user_id][lo:hi]


@dataclass(frozen=True)
class PushScore:
    timely: bool
    hit: bool
    ndcg: float
    lead_s: float | None  # push to next interaction, when timely


def score_push(push: PushRecord, timelines: Timelines, window_s: float, k: int) -> PushScore:
    taken = timelines.window(push.user_id, push.at, window_s)
    if not taken:
        return PushScore(False, False, 0.0, None)
    relevant = {e.item_id for e in taken}
    ranked = push.items[:k]
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return PushScore(True, dcg > 0, dcg / ideal, taken[0].at - push.at)


def wilson_interval(count: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a share count / n, in %; it stays inside [0, 100] and is
    not empty at zero hits, where the normal approximation fails."""
    if n == 0:
        return None
    share = count / n
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def score_pushes(
    pushes: Sequence[PushRecord],
    timelines: Timelines,
    window_s: float,
    k: int,
    data_end: float,
    users: int,
    weeks: float,
) -> dict[str, float | int | None]:
    """Aggregate scores (rates in %, as the offline metrics)."""
    judged = [p for p in pushes if p.at + window_s <= data_end]
    scores = [score_push(p, timelines, window_s, k) for p in judged]
    n = len(scores)
    leads = sorted(s.lead_s for s in scores if s.lead_s is not None)

    def rate(count: int) -> float:
        # Per user per week of the replay; spam counts only judged pushes, so it is a floor.
        return count / users / weeks if users and weeks > 0 else 0.0

    def pct(count: float, of: int = n) -> float | None:
        return None if of == 0 else 100.0 * count / of

    timely = sum(s.timely for s in scores)
    hits = sum(s.hit for s in scores)
    return {
        "pushes": len(pushes),
        "judged": n,
        "censored": len(pushes) - n,
        "timely": pct(timely),
        "timely_ci95": wilson_interval(timely, n),
        "spam": pct(n - timely),
        "hits": hits,
        f"HR@{k}": pct(hits),
        f"HR@{k}_ci95": wilson_interval(hits, n),
        f"HR@{k}_of_timely": pct(hits, timely),
        f"HR@{k}_of_timely_ci95": wilson_interval(hits, timely),
        f"NDCG@{k}": pct(sum(s.ndcg for s in scores)),
        "median_lead_days": None if not leads else _median(leads) / 86400.0,
        "pushes_per_user_week": rate(len(pushes)),
        "spam_per_user_week": rate(n - timely),
    }


def _median(values: Sequence[float]) -> float:
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
