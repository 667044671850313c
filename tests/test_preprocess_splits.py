"""k-core, sequence building, truncation, leave-one-out and 8:1:1 splits."""

from __future__ import annotations

import numpy as np
import pytest
from data_sources import reference_data

from pasrec.training.loaders import Interactions, load_interactions
from pasrec.training.preprocess import DAY, SequenceData, build_sequences, k_core
from pasrec.training.splits import Samples, split_loo, split_ratio


def _inter(rows: list[tuple[str, str, int]]) -> Interactions:
    return Interactions(
        users=np.array([u for u, _, _ in rows], dtype=object),
        items=np.array([i for _, i, _ in rows], dtype=object),
        timestamps=np.array([t for _, _, t in rows], dtype=np.int64),
    )


def _rows(inter: Interactions) -> list[tuple[str, str, int]]:
    return list(
        zip(inter.users.tolist(), inter.items.tolist(), inter.timestamps.tolist(), strict=True)
    )


@pytest.fixture(scope="module")
def beauty() -> Interactions:
    return load_interactions(reference_data("beauty"))


@pytest.fixture(scope="module")
def beauty11(beauty: Interactions) -> SequenceData:
    return build_sequences(beauty, truncate=11)


def test_k_core_repeats_until_nothing_changes() -> None:
    # Dropping u4 (1 row) leaves item c with 1 row; dropping it leaves u3 with 1 row.
    rows = [
        ("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "b", 4),
        ("u3", "b", 5), ("u3", "c", 6), ("u4", "c", 7),
    ]  # fmt: skip
    assert _rows(k_core(_inter(rows), k=2)) == rows[:4]


def test_k_core_threshold_zero_or_one_keeps_everything() -> None:
    rows = [("u1", "a", 1), ("u2", "b", 2)]
    assert _rows(k_core(_inter(rows), k=0)) == rows
    assert _rows(k_core(_inter(rows), k=1)) == rows
    with pytest.raises(ValueError):
        k_core(_inter(rows), k=-1)


def test_sequences_are_stably_chronological_with_first_appearance_ids() -> None:
    rows = [
        ("u2", "x", 5 * DAY + 10), ("u1", "y", 3 * DAY), ("u2", "y", 2 * DAY),
        ("u1", "z", 3 * DAY), ("u2", "z", 5 * DAY + 10),
    ]  # fmt: skip
    data = build_sequences(_inter(rows), k_core=0)
    assert data.user_ids == ["u2", "u1"]
    # u2 reads y, x, z (x before z: same time, input order), so y=1, x=2, z=3.
    assert data.item_vocab == ["y", "x", "z"]
    assert [s.tolist() for s in data.sequences] == [[1, 2, 3], [1, 3]]
    assert [d.tolist() for d in data.days] == [[2, 5, 5], [3, 3]]
    assert all(s.dtype == np.int64 for s in data.sequences + data.days)
    assert data.n_items == 3 and data.n_interactions == 5


def test_user_order_is_first_appearance_after_filtering() -> None:
    # A's first row (a rare item) is filtered out, so B now appears first.
    rows = [("A", "rare", 1), ("B", "p", 2), ("B", "q", 3), ("A", "p", 4), ("A", "q", 5)]
    data = build_sequences(_inter(rows), k_core=2)
    assert data.user_ids == ["B", "A"]
    assert data.item_vocab == ["p", "q"]
    assert [s.tolist() for s in data.sequences] == [[1, 2], [1, 2]]


def test_truncate_keeps_the_last_items_after_filtering() -> None:
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("v", "d", 4), ("v", "c", 5)]
    data = build_sequences(_inter(rows), k_core=0, truncate=2)
    assert data.item_vocab == ["b", "c", "d"]
    assert [s.tolist() for s in data.sequences] == [[1, 2], [3, 2]]
    with pytest.raises(ValueError):
        build_sequences(_inter(rows), k_core=0, truncate=0)


def test_no_survivors_is_an_error() -> None:
    with pytest.raises(ValueError, match="5-core"):
        build_sequences(_inter([("u", "a", 1)]), k_core=5)


def test_beauty_five_core_keeps_the_published_counts(beauty: Interactions) -> None:
    data = build_sequences(beauty)
    assert len(data.user_ids) == 22_363
    assert data.n_items == 12_101
    assert data.n_interactions == 198_502
    # The file's lines are chronological already; the rebuilt sequences must agree.
    assert all(np.all(np.diff(d) >= 0) for d in data.days)


def test_beauty_truncated_to_11_matches_paper_table_2(beauty11: SequenceData) -> None:
    assert beauty11.n_interactions == 162_150
    assert len(beauty11.user_ids) == 22_363
    assert beauty11.n_items == 12_101
    assert max(len(s) for s in beauty11.sequences) == 11
    assert round(beauty11.n_interactions / len(beauty11.user_ids), 2) == 7.25


def _hand_data() -> SequenceData:
    return SequenceData(
        user_ids=["a", "b", "c"],
        item_vocab=[str(i) for i in range(1, 8)],
        sequences=[np.array([1, 2, 3, 4, 5]), np.array([6, 7]), np.array([3, 6, 2])],
        days=[np.array([10, 11, 12, 13, 14]), np.array([20, 21]), np.array([30, 31, 32])],
    )


def _as_rows(samples: Samples) -> list[tuple[int, list[int], list[int], int, int]]:
    return [
        (int(u), i.tolist(), d.tolist(), int(t), int(td))
        for u, i, d, t, td in zip(
            samples.user,
            samples.items,
            samples.days,
            samples.target,
            samples.target_day,
            strict=True,
        )
    ]


def test_loo_prefix_histories_on_a_hand_built_case() -> None:
    split = split_loo(_hand_data(), history_length=3)
    assert split.protocol == "loo" and split.train_samples == "prefixes"
    assert _as_rows(split.train) == [
        (0, [0, 0, 1], [0, 0, 10], 2, 11),
        (0, [0, 1, 2], [0, 10, 11], 3, 12),
        (1, [0, 0, 6], [0, 0, 20], 7, 21),  # under 3 interactions: all of it trains
    ]
    assert _as_rows(split.valid) == [
        (0, [1, 2, 3], [10, 11, 12], 4, 13),
        (2, [0, 0, 3], [0, 0, 30], 6, 31),
    ]
    assert _as_rows(split.test) == [
        (0, [2, 3, 4], [11, 12, 13], 5, 14),
        (2, [0, 3, 6], [0, 30, 31], 2, 32),
    ]
    assert split.train_day_range == (10, 21)
    assert split.train.items.dtype == np.int64 and split.train.days.dtype == np.int64


def test_loo_last_keeps_one_training_sample_per_user() -> None:
    split = split_loo(_hand_data(), history_length=3, train_samples="last")
    assert split.train_samples == "last"
    assert _as_rows(split.train) == [
        (0, [0, 1, 2], [0, 10, 11], 3, 12),
        (1, [0, 0, 6], [0, 0, 20], 7, 21),
    ]
    assert len(split.test) == 2


def test_bad_split_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="train_samples"):
        split_loo(_hand_data(), 3, train_samples="all")
    with pytest.raises(ValueError, match="history_length"):
        split_loo(_hand_data(), 0)
    with pytest.raises(ValueError, match="ratios"):
        split_ratio(_hand_data(), 3, seed=0, ratios=(0.8, 0.1, 0.2))


def test_samples_subset_selects_rows_of_every_field() -> None:
    train = split_loo(_hand_data(), history_length=3).train
    picked = train.subset(np.array([2, 0]))
    assert len(picked) == 2
    assert _as_rows(picked) == [_as_rows(train)[2], _as_rows(train)[0]]


def _positions(samples: Samples) -> set[tuple[int, int]]:
    # Valid only when histories are never cut, i.e. every sequence is at most L + 1 long.
    return set(zip(samples.user.tolist(), (samples.items != 0).sum(axis=1).tolist(), strict=True))


def test_loo_on_beauty_never_trains_on_evaluation_targets(beauty11: SequenceData) -> None:
    split = split_loo(beauty11, history_length=10)
    lengths = np.array([len(s) for s in beauty11.sequences])
    train, valid, test = (_positions(s) for s in (split.train, split.valid, split.test))
    assert len(train) == len(split.train) == int((lengths - 3).sum())
    assert valid == {(u, int(n) - 2) for u, n in enumerate(lengths)}
    assert test == {(u, int(n) - 1) for u, n in enumerate(lengths)}
    assert not train & valid and not train & test
    for samples in (split.train, split.valid, split.test):
        position = (samples.items != 0).sum(axis=1)
        expected = [beauty11.sequences[u][p] for u, p in zip(samples.user, position, strict=True)]
        assert np.array_equal(samples.target, expected)
    days = np.concatenate([d[:-2] for d in beauty11.days])
    assert split.train_day_range == (int(days.min()), int(days.max()))


def test_loo_last_on_beauty_gives_one_sample_per_user(beauty11: SequenceData) -> None:
    split = split_loo(beauty11, history_length=10, train_samples="last")
    assert len(split.train) == len(beauty11.user_ids)
    assert np.array_equal(split.train.user, np.arange(len(beauty11.user_ids)))
    lengths = np.array([len(s) for s in beauty11.sequences])
    assert np.array_equal((split.train.items != 0).sum(axis=1), lengths - 3)


def test_ratio_split_users_are_disjoint_and_sized(beauty11: SequenceData) -> None:
    n = len(beauty11.user_ids)
    split = split_ratio(beauty11, history_length=10, seed=7)
    assert split.protocol == "811"
    train, valid, test = (set(s.user.tolist()) for s in (split.train, split.valid, split.test))
    assert (len(train), len(valid), len(test)) == (17_890, 2_236, 2_237)
    assert not train & valid and not train & test and not valid & test
    assert train | valid | test == set(range(n))
    lengths = np.array([len(s) for s in beauty11.sequences])
    assert len(split.train) == int((lengths[sorted(train)] - 1).sum())
    assert len(split.valid) == len(valid) and len(split.test) == len(test)
    last_items = np.array([s[-1] for s in beauty11.sequences])
    assert np.array_equal(split.test.target, last_items[split.test.user])
    assert np.array_equal((split.test.items != 0).sum(axis=1), lengths[split.test.user] - 1)


def test_ratio_split_is_reproducible_per_seed(beauty11: SequenceData) -> None:
    first = split_ratio(beauty11, history_length=10, seed=7)
    again = split_ratio(beauty11, history_length=10, seed=7)
    other = split_ratio(beauty11, history_length=10, seed=8)
    assert np.array_equal(first.test.user, again.test.user)
    assert np.array_equal(first.train.items, again.train.items)
    assert not np.array_equal(first.test.user, other.test.user)


def test_ratio_split_last_gives_one_sample_per_training_user(beauty11: SequenceData) -> None:
    split = split_ratio(beauty11, history_length=10, seed=0, train_samples="last")
    assert len(split.train) == 17_890
    assert len(np.unique(split.train.user)) == 17_890
    lengths = np.array([len(s) for s in beauty11.sequences])
    assert np.array_equal((split.train.items != 0).sum(axis=1), lengths[split.train.user] - 1)
