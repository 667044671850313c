"""From raw interactions to per-user chronological item sequences (SPEC section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pasrec.training.loaders import Interactions

DAY = 86400


@dataclass
class SequenceData:
    """One chronological sequence per user, items as model ids (0 is padding)."""

    user_ids: list[str]
    item_vocab: list[str]
    sequences: list[np.ndarray]
    days: list[np.ndarray]

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    @property
    def n_interactions(self) -> int:
        return sum(len(sequence) for sequence in self.sequences)


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer code per raw id, numbered in order of first appearance, and the code count."""
    # A dict pass is linear; np.unique on object arrays would sort Python strings.
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(value, len(index)) for value in values),
        dtype=np.int64,
        count=len(values),
    )
    return codes, len(index)


def _renumber(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered 0.. in order of first appearance, and each new code's first position."""
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]


def _k_core_mask(
    user_codes: np.ndarray, n_users: int, item_codes: np.ndarray, n_items: int, k: int
) -> np.ndarray:
    if k < 0:
        raise ValueError(f"k-core threshold must be >= 0, got {k}")
    keep = np.ones(len(user_codes), dtype=bool)
    if k <= 1:
        return keep
    # Dropping a sparse item can push a user under k and vice versa, so repeat to a fixpoint.
    while True:
        user_count = np.bincount(user_codes[keep], minlength=n_users)
        item_count = np.bincount(item_codes[keep], minlength=n_items)
        narrowed = keep & (user_count[user_codes] >= k) & (item_count[item_codes] >= k)
        if np.array_equal(narrowed, keep):
            return keep
        keep = narrowed


def k_core(inter: Interactions, k: int = 5) -> Interactions:
    """The interactions left once every user and every item has at least `k` of them."""
    user_codes, n_users = _codes(inter.users)
    item_codes, n_items = _codes(inter.items)
    keep = _k_core_mask(user_codes, n_users, item_codes, n_items, k)
    return Interactions(inter.users[keep], inter.items[keep], inter.timestamps[keep])


def build_sequences(
    inter: Interactions, k_core: int = 5, truncate: int | None = None
) -> SequenceData:
    """k-core filter, then per-user chronological sequences, optionally cut to their last items.

    Users and items are numbered in order of first appearance (users in the filtered input,
    items when reading the final sequences user by user), so the same input always gives the
    same ids. The item vocabulary holds exactly the items left after truncation, which is
    how the paper's Table 2 counts them.
    """
    if truncate is not None and truncate < 1:
        raise ValueError(f"truncate must be >= 1, got {truncate}")
    user_codes, n_users = _codes(inter.users)
    item_codes, n_items = _codes(inter.items)
    keep = np.flatnonzero(_k_core_mask(user_codes, n_users, item_codes, n_items, k_core))
    if len(keep) == 0:
        raise ValueError(f"no interactions survive the {k_core}-core filter")
    users, _ = _renumber(user_codes[keep])

    # Two stable sorts: by time, then by user, so equal timestamps keep their input order.
    order = np.argsort(inter.timestamps[keep], kind="stable")
    order = order[np.argsort(users[order], kind="stable")]
    rows, row_users = keep[order], users[order]
    lengths = np.bincount(row_users)
    if truncate is not None:
        position = np.arange(len(rows)) - (np.cumsum(lengths) - lengths)[row_users]
        tail = position >= lengths[row_users] - truncate
        rows, row_users = rows[tail], row_users[tail]
        lengths = np.minimum(lengths, truncate)
    starts = np.cumsum(lengths) - lengths

    items, first_rows = _renumber(item_codes[rows])
    bounds = np.cumsum(lengths)[:-1]
    return SequenceData(
        user_ids=inter.users[rows[starts]].tolist(),
        item_vocab=inter.items[rows[first_rows]].tolist(),
        sequences=np.split(items + 1, bounds),
        days=np.split(inter.timestamps[rows] // DAY, bounds),
    )
