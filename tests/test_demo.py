"""`pasrec demo` end to end on a small synthetic population: it trains, serves, prints the
pushes as they arrive and ends with the replay table."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main


@pytest.mark.slow
def test_demo_runs_and_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["demo", "--users", "80", "--epochs", "1", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "push   1 [" in printed  # the receiver printed a push as it arrived
    assert "| toi |" in printed and "| passive |" in printed
    for name in ("replay.md", "replay.json", "tradeoff.png", "timeline.png"):
        assert (tmp_path / name).is_file(), name
    # The checkpoint README.md's quick start serves (as runs/demo/train/checkpoint).
    assert (tmp_path / "train" / "checkpoint" / "config.json").is_file()
