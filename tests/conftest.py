"""Fixtures shared by every test folder: slices of the reference MovieLens-100K file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "ml-100k.inter"


@pytest.fixture(scope="session")
def ml100k_users(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """``slice(n)``: the MovieLens-100K users with id <= n, RecBole layout, written once per
    n (slices keep the tests fast); skips the test when the reference data are missing."""
    written: dict[int, Path] = {}

    def users_up_to(n: int) -> Path:
        if not ML100K.is_file():
            pytest.skip(f"reference data missing: {ML100K}")
        if n not in written:
            lines = ML100K.read_text().splitlines()
            kept = [lines[0]] + [row for row in lines[1:] if int(row.split("\t")[0]) <= n]
            path = tmp_path_factory.mktemp("ml100k") / f"ml-users-{n}.inter"
            path.write_text("\n".join(kept) + "\n")
            written[n] = path
        return written[n]

    return users_up_to
