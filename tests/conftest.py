"""Fixtures shared by every test folder: synthetic interaction logs written by the tests, and
slices of the reference MovieLens-100K file for the tests about that data set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from data_sources import reference_data, synthetic_config, write_numbered_synthetic


@pytest.fixture(scope="session")
def synthetic_users(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """`users(n)`: a synthetic RecBole log of users `1..n` (`synthetic_config`), written
    once per n; needs no data beyond the repository."""
    written: dict[int, Path] = {}

    def users_up_to(n: int) -> Path:
        if n not in written:
            path = tmp_path_factory.mktemp("synthetic") / f"synthetic-users-{n}.inter"
            written[n] = write_numbered_synthetic(synthetic_config(n), path)
        return written[n]

    return users_up_to


@pytest.fixture(scope="session")
def ml100k_users(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """`slice(n)`: the MovieLens-100K users with id <= n, RecBole layout, written once per
    n (slices keep the tests fast); skips (or fails, `PASREC_REQUIRE_DATA=1`) when the
    reference data are missing."""
    written: dict[int, Path] = {}

    def users_up_to(n: int) -> Path:
        if n not in written:
            lines = reference_data("ml-100k/ml-100k.inter").read_text().splitlines()
            kept = [lines[0]] + [row for row in lines[1:] if int(row.split("\t")[0]) <= n]
            path = tmp_path_factory.mktemp("ml100k") / f"ml-users-{n}.inter"
            path.write_text("\n".join(kept) + "\n")
            written[n] = path
        return written[n]

    return users_up_to
