"""`pasrec demo` end to end on a small synthetic population: it trains, serves, prints the
pushes as they arrive and ends with the replay table, how to read it, and what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasrec.cli.main import main


@pytest.mark.slow
def test_demo_runs_and_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    code = main(["demo", "--users", "80", "--epochs", "1", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "push   1 [" in printed  # the receiver printed a push as it arrived
    for strategy in ("tpp_window", "toi", "user_median", "passive"):
        assert f"| {strategy} |" in printed, strategy
    # Rates a reader can see (per user-week they round to 0.00), and the lines under the table.
    assert "pushes_per_100_user_weeks" in printed and "pushes_per_user_week" not in printed
    assert "How to read it:" in printed and "timely in the 7d window, best first: " in printed
    # The cutoff once in the table's opening line, not as date and "as given" side by side.
    (opening,) = [line for line in printed.splitlines() if line.startswith("Cutoff ")]
    assert opening.count(opening.split()[1].rstrip(";")) == 1
    # The replay migrates each strategy's fresh store itself: no warning per strategy.
    assert not any("migrating automatically" in r.getMessage() for r in caplog.records)
    for name in ("replay.md", "replay.json", "tradeoff.png", "timeline.png", "pushes.json"):
        assert (tmp_path / name).is_file(), name
    closing = printed.strip().splitlines()[-1]
    assert closing.startswith("demo finished in ")
    for entry in tmp_path.iterdir():  # the closing line names everything the demo wrote
        assert entry.name in closing, entry.name
    # The checkpoint README.md's quick start serves (as runs/demo/train/checkpoint).
    assert (tmp_path / "train" / "checkpoint" / "config.json").is_file()
