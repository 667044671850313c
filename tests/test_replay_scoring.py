"""Push scores against hand-built timelines, each number counted by hand in the comments."""

from __future__ import annotations

import math

import pytest

from pasrec.replay.scoring import (
    PushRecord,
    Timelines,
    score_push,
    score_pushes,
    wilson_interval,
)

DAY = 86400.0
WEEK = 7 * DAY

# Alice: a at day 1, b at day 3, c at day 20. Bob: x at day 10. Carol: nothing later.
TIMELINES = Timelines(
    [("alice", "a", 1 * DAY), ("alice", "b", 3 * DAY), ("alice", "c", 20 * DAY),
     ("bob", "x", 10 * DAY)]
)  # fmt: skip


def test_timely_push_hit_at_rank_two() -> None:
    # Day 0, 7-day window: alice takes a (day 1) and b (day 3); items ranked [z, b, y].
    score = score_push(PushRecord("alice", 0.0, ("z", "b", "y")), TIMELINES, WEEK, 10)
    assert score.timely and score.hit
    # DCG = 1/log2(3); ideal over 2 relevant items = 1 + 1/log2(3).
    assert score.ndcg == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert score.lead_s == 1 * DAY


def test_timely_but_irrelevant_and_spam() -> None:
    # Day 4: alice's next is c at day 20 -> outside 7 days: spam.
    spam = score_push(PushRecord("alice", 4 * DAY, ("c",)), TIMELINES, WEEK, 10)
    assert not spam.timely and not spam.hit and spam.ndcg == 0.0
    # Day 4 with 30 days: c at day 20 is timely and relevant at rank 1 (ideal = 1).
    late = score_push(PushRecord("alice", 4 * DAY, ("c",)), TIMELINES, 30 * DAY, 10)
    assert late.timely and late.hit and late.ndcg == pytest.approx(1.0)
    # Bob, day 5, window 7 days: x at day 10 is timely; pushed [y] misses.
    miss = score_push(PushRecord("bob", 5 * DAY, ("y",)), TIMELINES, WEEK, 10)
    assert miss.timely and not miss.hit


def test_interaction_at_the_push_instant_counts() -> None:
    # The passive reference pushes exactly when the user comes back.
    score = score_push(PushRecord("bob", 10 * DAY, ("x",)), TIMELINES, WEEK, 10)
    assert score.timely and score.hit and score.lead_s == 0.0


def test_k_cuts_the_ranking() -> None:
    score = score_push(PushRecord("alice", 0.0, ("z", "y", "a")), TIMELINES, WEEK, 2)
    assert score.timely and not score.hit


def test_aggregate_counts_and_censoring() -> None:
    pushes = [
        PushRecord("alice", 0.0, ("a",)),  # timely, hit
        PushRecord("alice", 4 * DAY, ("c",)),  # spam (next at day 20)
        PushRecord("bob", 5 * DAY, ("y",)),  # timely, miss
        PushRecord("carol", 2 * DAY, ("a",)),  # spam: carol never returns
        PushRecord("bob", 25 * DAY, ("x",)),  # window ends day 32 > data end 28: censored
    ]
    out = score_pushes(pushes, TIMELINES, WEEK, 10, data_end=28 * DAY, users=3, weeks=4.0)
    assert out["pushes"] == 5 and out["judged"] == 4 and out["censored"] == 1
    assert out["timely"] == pytest.approx(50.0)  # 2 of 4
    assert out["spam"] == pytest.approx(50.0)
    assert out["HR@10"] == pytest.approx(25.0)  # 1 of 4
    assert out["hits"] == 1
    assert out["HR@10_of_timely"] == pytest.approx(50.0)  # 1 hit of 2 timely pushes
    # Wilson 95% intervals: 2 of 4 -> 0.5 +- 1.96 sqrt(1/16 + 1.96^2/64) / (1 + 1.96^2/4)
    half = 1.96 * math.sqrt(1 / 16 + 1.96**2 / 64) / (1 + 1.96**2 / 4)
    assert out["timely_ci95"] == pytest.approx((100 * (0.5 - half), 100 * (0.5 + half)))
    assert out["timely_ci95"] == pytest.approx((15.00, 85.00), abs=0.01)
    low, high = out["HR@10_ci95"]
    assert 0 < low < 25.0 < high < 100
    # Only alice's first push has gain: 1 hit of 2 relevant (a, b) at rank 1 ->
    # 1 / (1 + 1/log2(3)); the mean over 4 pushes, in %.
    assert out["NDCG@10"] == pytest.approx(100 * (1 / (1 + 1 / math.log2(3))) / 4)
    assert out["median_lead_days"] == pytest.approx(3.0)  # leads 1 and 5 days
    assert out["pushes_per_user_week"] == pytest.approx(5 / 3 / 4)
    assert out["spam_per_user_week"] == pytest.approx(2 / 3 / 4)  # 2 judged spam pushes


def test_no_pushes() -> None:
    out = score_pushes([], TIMELINES, WEEK, 10, data_end=28 * DAY, users=3, weeks=4.0)
    assert out["judged"] == 0 and out["timely"] is None and out["pushes_per_user_week"] == 0.0
    assert out["timely_ci95"] is None and out["HR@10_ci95"] is None
    assert out["HR@10_of_timely"] is None and out["HR@10_of_timely_ci95"] is None


def test_wilson_interval_at_the_edges() -> None:
    # No hits in 1,478 pushes still leaves a non-empty interval: up to 0.26 %.
    low, high = wilson_interval(0, 1478)
    assert low == pytest.approx(0.0, abs=1e-9) and high == pytest.approx(0.2593, abs=1e-3)
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(100.0) and low == pytest.approx(72.25, abs=0.01)
    assert wilson_interval(0, 0) is None
