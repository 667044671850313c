"""Full-ranking metrics against hand-computed ranks, ties and the padding column."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pasrec.training.metrics import MetricAccumulator, ranking_metrics, target_ranks


def test_padding_column_never_ranks_ahead() -> None:
    scores = torch.tensor([[9.0, 0.5, 0.9, 0.1, 0.7]] * 4)
    ranks = target_ranks(scores, torch.tensor([4, 1, 2, 3]))
    assert ranks.tolist() == [1, 2, 0, 3]


def test_ties_rank_smaller_ids_first() -> None:
    scores = torch.tensor([[5.0, 1.0, 1.0, 1.0, 0.0]] * 4)
    assert target_ranks(scores, torch.tensor([1, 2, 3, 4])).tolist() == [0, 1, 2, 3]
    constant = torch.zeros(3, 6)
    assert target_ranks(constant, torch.tensor([5, 1, 3])).tolist() == [4, 0, 2]


def test_nan_scores_rank_last() -> None:
    scores = torch.tensor([[0.0, float("nan"), -1.0, float("nan")]])
    assert target_ranks(scores, torch.tensor([1])).tolist() == [1]
    assert target_ranks(scores, torch.tensor([3])).tolist() == [2]
    assert target_ranks(scores, torch.tensor([2])).tolist() == [0]


def test_ranks_match_a_sort_by_score_then_id() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (50, 21), generator=generator).float()
    targets = torch.randint(1, 21, (50,), generator=generator)
    expected = []
    for row, target in zip(scores.tolist(), targets.tolist(), strict=True):
        order = sorted(range(1, 21), key=lambda item, row=row: (-row[item], item))
        expected.append(order.index(target))
    assert target_ranks(scores, targets).tolist() == expected


@pytest.mark.parametrize("bad", [0, 5])
def test_targets_outside_the_items_are_rejected(bad: int) -> None:
    with pytest.raises(ValueError, match="1..4"):
        target_ranks(torch.zeros(1, 5), torch.tensor([bad]))


def test_ranking_metrics_by_hand() -> None:
    ranks = [0, 1, 4, 5, 9, 10]
    expected_ndcg5 = (1 + 1 / math.log2(3) + 1 / math.log2(6)) / 6 * 100
    expected_ndcg10 = expected_ndcg5 + (1 / math.log2(7) + 1 / math.log2(11)) / 6 * 100
    for given in (torch.tensor(ranks), np.array(ranks)):
        result = ranking_metrics(given)
        assert list(result) == ["HR@5", "NDCG@5", "HR@10", "NDCG@10"]
        assert result["HR@5"] == pytest.approx(50.0)
        assert result["HR@10"] == pytest.approx(500 / 6)
        assert result["NDCG@5"] == pytest.approx(expected_ndcg5)
        assert result["NDCG@10"] == pytest.approx(expected_ndcg10)
    with pytest.raises(ValueError):
        ranking_metrics(np.array([], dtype=np.int64))


def test_accumulator_equals_one_pass_over_all_batches() -> None:
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(30, 12, generator=generator)
    targets = torch.randint(1, 12, (30,), generator=generator)
    accumulator = MetricAccumulator(ks=(1, 5))
    for start in range(0, 30, 8):
        accumulator.add(scores[start : start + 8], targets[start : start + 8])
    assert len(accumulator) == 30
    expected = ranking_metrics(target_ranks(scores, targets), ks=(1, 5))
    assert accumulator.result() == pytest.approx(expected)
    assert set(expected) == {"HR@1", "NDCG@1", "HR@5", "NDCG@5"}
    with pytest.raises(ValueError):
        MetricAccumulator().result()
