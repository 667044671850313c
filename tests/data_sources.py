"""The data the tests run on: synthetic logs they write themselves, and the reference data
sets (`../shared/data`) for the tests about those data sets.

Only tests about a reference data set use it (published counts, the paper's preprocessing, a
trained model beating popularity on MovieLens); everything else runs on synthetic data
(`pasrec/training/synthetic.py`, written by the `synthetic_users` fixture in conftest.py). A test
whose reference data are missing skips, or fails under `PASREC_REQUIRE_DATA=1` (set by
`.ci/run`), so that a CI machine without the data cannot pass by skipping.
`PASREC_TEST_DATA` points at another copy of the data, or at a missing folder to see what
runs without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pasrec.training.synthetic import (
    Catalogue,
    SyntheticConfig,
    UserTimeline,
    generate,
    write_inter,
)

DATA_ROOT = Path(
    os.environ.get("PASREC_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


def reference_data(relative: str) -> Path:
    """`DATA_ROOT / relative`; skips the test when it is missing, or fails it where
    `PASREC_REQUIRE_DATA=1` demands the data."""
    path = DATA_ROOT / relative
    if not path.exists():
        reason = f"reference data missing: {path}"
        if os.environ.get("PASREC_REQUIRE_DATA") == "1":
            pytest.fail(f"{reason} (PASREC_REQUIRE_DATA=1)")
        pytest.skip(reason)
    return path


def synthetic_config(users: int) -> SyntheticConfig:
    """Histories long enough for the service tests (they replay 20-30 events of a user) over
    a catalogue of 200 items; gaps of hours to weeks, so a history spans a year or two."""
    return SyntheticConfig(
        users=users, families=10, tiers=2, items_per_group=10, events_per_user=(30, 40),
        slow_median_days=(7.0, 21.0), start_spread_days=60.0, seed=users,
    )  # fmt: skip


def write_numbered_synthetic(cfg: SyntheticConfig, path: Path) -> Path:
    """The generator's log with users `1..users` and items `1..catalogue size`: numeric ids, as
    in MovieLens, so a test can name a user or a catalogue item ("50") by a short literal."""
    number = {item: str(i + 1) for i, item in enumerate(Catalogue(cfg).all_items())}
    timelines = [
        UserTimeline(str(u + 1), [number[item] for item in line.items], line.times, line.bursts)
        for u, line in enumerate(generate(cfg))
    ]
    return write_inter(timelines, path)
