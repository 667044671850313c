"""The test data themselves: a missing reference data set skips a test, or fails it under
`PASREC_REQUIRE_DATA=1` (what `.ci/run` sets), and the synthetic log the service tests run on
is the generator's log under numeric ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_sources import synthetic_config, write_numbered_synthetic

from pasrec.training.loaders import load_interactions
from pasrec.training.synthetic import generate, write_inter

TESTS = Path(__file__).resolve().parent
NEEDS_DATA = """
from data_sources import reference_data

def test_needs_movielens():
    reference_data("ml-100k")
"""


def _pytest_without_data(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest on a one-test file that needs MovieLens, with the data path pointing nowhere."""
    (tmp_path / "test_needs_data.py").write_text(NEEDS_DATA)
    clean = {k: v for k, v in os.environ.items() if k != "PASREC_REQUIRE_DATA"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         str(tmp_path / "test_needs_data.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**clean, "PYTHONPATH": str(TESTS), "PASREC_TEST_DATA": str(tmp_path / "missing"),
             **env},
    )  # fmt: skip


def test_missing_reference_data_skips_the_test(tmp_path: Path) -> None:
    done = _pytest_without_data(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout and "reference data missing" in done.stdout


def test_missing_reference_data_fails_where_it_is_required(tmp_path: Path) -> None:
    done = _pytest_without_data(tmp_path, PASREC_REQUIRE_DATA="1")
    assert done.returncode == 1, done.stdout
    assert "1 failed" in done.stdout and "(PASREC_REQUIRE_DATA=1)" in done.stdout


def test_ci_requires_the_data() -> None:
    run = (TESTS.parent / ".ci" / "run").read_text()
    assert "export PASREC_REQUIRE_DATA=1" in run


def test_numbered_synthetic_log_is_the_generators_log_renamed(tmp_path: Path) -> None:
    cfg = synthetic_config(12)
    numbered = load_interactions(write_numbered_synthetic(cfg, tmp_path / "numbered.inter"))
    named = load_interactions(write_inter(generate(cfg), tmp_path / "named.inter"))
    assert np.array_equal(numbered.timestamps, named.timestamps)
    assert set(numbered.users) == {str(u) for u in range(1, 13)}
    assert all(1 <= int(item) <= 200 for item in numbered.items)
    # The renaming is one-to-one: the same items are the same ids.
    pairs = set(zip(named.items.tolist(), numbered.items.tolist(), strict=True))
    assert len(pairs) == len(set(named.items)) == len(set(numbered.items))


@pytest.mark.parametrize("users", [30, 120])
def test_synthetic_histories_are_long_enough_for_the_service_tests(users: int) -> None:
    lengths = [len(line.items) for line in generate(synthetic_config(users))]
    assert len(lengths) == users and min(lengths) >= 30
