"""Leave-one-out and 8:1:1 user splits into fixed-length (history -> target) samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pasrec.training.preprocess import SequenceData

TRAIN_SAMPLES = ("prefixes", "last")


@dataclass
class Samples:
    """Row i: the last L items (and their days) before `target[i]`, left-padded with 0."""

    items: np.ndarray
    days: np.ndarray
    target: np.ndarray
    target_day: np.ndarray
    user: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, idx: np.ndarray | slice | list[int]) -> Samples:
        return Samples(
            items=self.items[idx],
            days=self.days[idx],
            target=self.target[idx],
            target_day=self.target_day[idx],
            user=self.user[idx],
        )


@dataclass
class Split:
    train: Samples
    valid: Samples
    test: Samples
    protocol: str
    train_samples: str
    train_day_range: tuple[int, int]


@dataclass
class _Flat:
    """All sequences end to end, so samples can be cut out with array indexing."""

    items: np.ndarray
    days: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray


def _flatten(data: SequenceData, history_length: int, train_samples: str) -> _Flat:
    if history_length < 1:
        raise ValueError(f"history_length must be >= 1, got {history_length}")
    if train_samples not in TRAIN_SAMPLES:
        raise ValueError(f"train_samples must be one of {TRAIN_SAMPLES}, got {train_samples!r}")
    lengths = np.array([len(sequence) for sequence in data.sequences], dtype=np.int64)
    return _Flat(
        items=np.concatenate(data.sequences).astype(np.int64, copy=False),
        days=np.concatenate(data.days).astype(np.int64, copy=False),
        starts=np.cumsum(lengths) - lengths,
        lengths=lengths,
    )


def _samples(flat: _Flat, users: np.ndarray, targets: np.ndarray, history_length: int) -> Samples:
    """Samples whose targets sit at flat positions `targets`, each of user `users[i]`."""
    positions = targets[:, None] + np.arange(-history_length, 0)[None, :]
    visible = positions >= flat.starts[users][:, None]
    positions = np.where(visible, positions, 0)
    return Samples(
        items=np.where(visible, flat.items[positions], 0),
        days=np.where(visible, flat.days[positions], 0),
        target=flat.items[targets],
        target_day=flat.days[targets],
        user=users,
    )


def _training_targets(
    flat: _Flat, users: np.ndarray, ends: np.ndarray, train_samples: str
) -> tuple[np.ndarray, np.ndarray]:
    """(user, flat position) of training targets from each user's first `ends` items.

    Position 0 is never a target: it has no history.
    """
    if train_samples == "last":
        has_target = ends >= 2
        users = users[has_target]
        return users, flat.starts[users] + ends[has_target] - 1
    counts = np.maximum(ends - 1, 0)
    repeated = np.repeat(users, counts)
    offset_in_user = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return repeated, flat.starts[repeated] + 1 + offset_in_user


def _last_targets(flat: _Flat, users: np.ndarray, back: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, flat position) of the item `back` places from the end, for users long enough to
    keep at least one history item before it."""
    users = users[flat.lengths[users] >= back + 1]
    return users, flat.starts[users] + flat.lengths[users] - back


def _day_range(train: Samples) -> tuple[int, int]:
    if len(train) == 0:
        raise ValueError("the split has no training samples")
    visible = np.concatenate([train.days[train.items != 0], train.target_day])
    return int(visible.min()), int(visible.max())


def split_loo(data: SequenceData, history_length: int, train_samples: str = "prefixes") -> Split:
    """Leave-one-out: per user the last item tests, the second last validates, the rest trains.

    Users with fewer than 3 interactions have no validation or test sample; their whole
    sequence trains.
    """
    flat = _flatten(data, history_length, train_samples)
    everyone = np.arange(len(flat.lengths))
    ends = np.where(flat.lengths >= 3, flat.lengths - 2, flat.lengths)
    long_enough = everyone[flat.lengths >= 3]
    train = _samples(flat, *_training_targets(flat, everyone, ends, train_samples), history_length)
    return Split(
        train=train,
        valid=_samples(flat, *_last_targets(flat, long_enough, 2), history_length),
        test=_samples(flat, *_last_targets(flat, long_enough, 1), history_length),
        protocol="loo",
        train_samples=train_samples,
        train_day_range=_day_range(train),
    )


def split_ratio(
    data: SequenceData,
    history_length: int,
    seed: int,
    train_samples: str = "prefixes",
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Split:
    """Users shuffled by `seed` into train/valid/test groups of the given shares.

    Group sizes are floor(n * ratio) for train and validation, the rest for test. Validation
    and test users predict their last item from the rest of their sequence.
    """
    if len(ratios) != 3 or min(ratios) < 0 or not math.isclose(sum(ratios), 1.0):
        raise ValueError(f"ratios must be three non-negative shares summing to 1, got {ratios}")
    flat = _flatten(data, history_length, train_samples)
    n_users = len(flat.lengths)
    # The epsilon keeps e.g. 0.29 * 100 = 28.999999999999996 from losing a user.
    n_train = math.floor(n_users * ratios[0] + 1e-9)
    n_valid = math.floor(n_users * ratios[1] + 1e-9)
    order = np.random.default_rng(seed).permutation(n_users)
    train_users = np.sort(order[:n_train])
    valid_users = np.sort(order[n_train : n_train + n_valid])
    test_users = np.sort(order[n_train + n_valid :])
    train = _samples(
        flat,
        *_training_targets(flat, train_users, flat.lengths[train_users], train_samples),
        history_length,
    )
    return Split(
        train=train,
        valid=_samples(flat, *_last_targets(flat, valid_users, 1), history_length),
        test=_samples(flat, *_last_targets(flat, test_users, 1), history_length),
        protocol="811",
        train_samples=train_samples,
        train_day_range=_day_range(train),
    )
