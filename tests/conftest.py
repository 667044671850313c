"""Fixtures shared by every test folder: synthetic interaction logs the tests write themselves
(the reference data sets are for the tests about them: `data_sources.reference_data`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from data_sources import synthetic_config, write_numbered_synthetic


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

