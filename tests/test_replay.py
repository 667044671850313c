"""A short replay of real data through the real HTTP path: every push the service marks
delivered reaches the receiver exactly once, signed, and the outputs are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.replay import ReplayOptions, run_replay

ROOT = Path(__file__).resolve().parents[1]
ML100K = ROOT.parent / "shared" / "data" / "ml-100k" / "ml-100k.inter"


@pytest.fixture(scope="module")
def ml_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MovieLens-100K users 1-30, RecBole layout."""
    if not ML100K.exists():
        pytest.skip(f"reference data missing: {ML100K}")
    lines = ML100K.read_text().splitlines()
    keep = [lines[0]] + [row for row in lines[1:] if int(row.split("\t")[0]) <= 30]
    path = tmp_path_factory.mktemp("data") / "ml-slice.inter"
    path.write_text("\n".join(keep) + "\n")
    return path


def test_replay_delivers_every_push_exactly_once(ml_slice: Path, tmp_path: Path) -> None:
    opts = ReplayOptions(
        data=str(ml_slice), cutoff="0.9", out=tmp_path, windows_days=[7.0],
        strategies=["toi", "fixed", "passive"], epochs=1, hidden=32, history_length=10,
        model_overrides={"ddim_steps": 10, "diffusion_steps": 100}, progress=False,
        fixed_interval_days=1.0,
    )  # fmt: skip
    result = run_replay(opts)

    for strategy, run in result["runs"].items():
        received, statuses = run["receiver"], run["statuses"]
        assert received["duplicates"] == 0 and received["rejected"] == 0, strategy
        # Counted at the receiver: one valid POST per push, and exactly the delivered ones.
        assert received["deliveries"] == received["unique"], strategy
        assert received["unique"] == statuses.get("delivered", 0), (strategy, statuses)
    assert result["runs"]["fixed"]["receiver"]["unique"] > 0

    table = result["windows"]["7d"]
    assert set(table) == {"toi", "fixed", "passive"}
    assert table["passive"]["timely"] == pytest.approx(100.0)  # it pushes at the visit itself
    for name in ("replay.json", "replay.md", "tradeoff.png", "timeline.png", "pushes.json"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "replay.json").read_text())
    assert saved["windows"]["7d"]["fixed"]["pushes"] == table["fixed"]["pushes"]
