"""A short replay of real data through the real HTTP path: every push the service marks
delivered reaches the receiver exactly once, signed, and the outputs are written — on the
embedded store and on PostgreSQL + Redis, which must give the same pushes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from service_helpers import PG_URL

from pasrec.model.checkpoint import load_checkpoint
from pasrec.replay.data import load_replay_data
from pasrec.replay.harness import ReplayOptions, run_replay
from pasrec.service.settings import environment_without_settings


@pytest.fixture(scope="module")
def data_30(synthetic_users, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 synthetic users, and 3 more first seen after the 0.9 cutoff (the synthetic users all
    start within weeks of each other), with 3 events each."""
    source = synthetic_users(30)
    lines = source.read_text().splitlines()
    times = [float(line.split("\t")[-1]) for line in lines[1:]]
    start, end = min(times), max(times)
    late = [f"{user}\t{item}\t1\t{start + 0.95 * (end - start) + hour * 3600:.0f}"
            for user in (31, 32, 33) for hour, item in enumerate((1, 2, 3))]  # fmt: skip
    path = tmp_path_factory.mktemp("replay-data") / "synthetic-users-30-late-3.inter"
    path.write_text("\n".join(lines + late) + "\n")
    return path


def _options(data: Path, out: Path, **extra: Any) -> ReplayOptions:
    values: dict[str, Any] = dict(
        data=str(data), cutoff="0.9", out=out, windows_days=[7.0],
        strategies=["toi", "fixed", "passive"], epochs=1, hidden=32, history_length=10,
        model_overrides={"ddim_steps": 10, "diffusion_steps": 100}, progress=False,
        fixed_interval_days=1.0,
    )  # fmt: skip
    return ReplayOptions(**(values | extra))


@pytest.fixture(scope="module")
def embedded(data_30: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(output directory, result) of a replay on the embedded store, training its model."""
    out = tmp_path_factory.mktemp("replay-embedded")
    return out, run_replay(_options(data_30, out))


def _assert_exactly_once(result: dict) -> None:
    for strategy, run in result["runs"].items():
        received, statuses = run["receiver"], run["statuses"]
        assert received["duplicates"] == 0 and received["rejected"] == 0, strategy
        # Counted at the receiver: one valid POST per push, and exactly the delivered ones.
        assert received["deliveries"] == received["unique"], strategy
        assert received["unique"] == statuses.get("delivered", 0), (strategy, statuses)
    assert result["runs"]["fixed"]["receiver"]["unique"] > 0


def test_replay_delivers_every_push_exactly_once(embedded: tuple[Path, dict]) -> None:
    out, result = embedded
    _assert_exactly_once(result)
    assert result["store"].startswith("embedded")
    table = result["windows"]["7d"]
    assert set(table) == {"toi", "fixed", "passive"}
    assert table["passive"]["timely"] == pytest.approx(100.0)  # it pushes at the visit itself
    for name in ("replay.json", "replay.md", "tradeoff.png", "timeline.png", "pushes.json"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "replay.json").read_text())
    assert saved["windows"]["7d"]["fixed"]["pushes"] == table["fixed"]["pushes"]
    # The strategy-timed table leaves out exactly the pushes the fallback delay scheduled
    # (the webhook's `predicted_at` is null for them); the passive reference has none.
    records = json.loads((out / "pushes.json").read_text())
    timed = result["timed_windows"]["7d"]
    for strategy, pushed in records.items():
        assert timed[strategy]["pushes"] == sum(not p["fallback"] for p in pushed), strategy
    assert not any(p["fallback"] for p in records["passive"])
    # Users first seen after the cutoff have too little history for a schedule of their own.
    assert 0 < timed["fixed"]["pushes"] < table["fixed"]["pushes"]
    assert "## Window 7d, strategy-timed pushes only" in (out / "replay.md").read_text()
    vocab = set(load_checkpoint(result["checkpoint"], "cpu").item_vocab)
    later = load_replay_data(result["data"], result["cutoff"]).later_events()
    known = sum(item in vocab for _, item, _ in later)
    assert result["later_events"] == len(later)
    # Items first seen after the cutoff exist in this slice, so the ceiling is below 100 %.
    assert 0 < known < len(later)
    assert result["later_events_known_item"] == pytest.approx(100.0 * known / len(later))
    assert f"{100.0 * known / len(later):.1f}% on items the checkpoint knows" in (
        out / "replay.md"
    ).read_text()


def _schemas(names: list[str]) -> list[str]:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT schema_name FROM information_schema.schemata "
                            "WHERE schema_name = ANY(:names)")  # fmt: skip
            return list(conn.execute(query, {"names": names}).scalars())
    finally:
        engine.dispose()


def test_replay_on_postgres_and_redis_matches_embedded_and_cleans_up(
    embedded: tuple[Path, dict], data_30: Path, tmp_path: Path,
    pg_schema_url: str, redis_available: str,
) -> None:  # fmt: skip
    embedded_out, embedded_result = embedded
    opts = _options(
        data_30, tmp_path, checkpoint=Path(embedded_result["checkpoint"]),
        database_url=PG_URL, redis_url=redis_available,
    )  # fmt: skip
    result = run_replay(opts)

    _assert_exactly_once(result)
    assert result["store"] == "PostgreSQL + Redis"
    # Same checkpoint, same events, same policy: the store must not change a single push.
    pushes = json.loads((tmp_path / "pushes.json").read_text())
    assert pushes == json.loads((embedded_out / "pushes.json").read_text())
    assert result["windows"] == embedded_result["windows"]
    # Nothing left behind: each run names its schema and key prefix; both are gone.
    places = [run["store"] for run in result["runs"].values()]
    schemas = [p.split(",")[0].removeprefix("schema ") for p in places]
    prefixes = [p.split("redis prefix ")[1] for p in places]
    assert len(set(schemas)) == len(places) and all(s.startswith("replay_") for s in schemas)
    assert _schemas(schemas) == []
    client = redis.Redis.from_url(redis_available)
    try:
        for prefix in prefixes:
            assert not list(client.scan_iter(match=f"{prefix}*", count=1000)), prefix
    finally:
        client.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/none"],
         "PostgreSQL at postgresql+psycopg://nobody@127.0.0.1:1/none is not reachable"),
        (["--database-url", PG_URL, "--redis-url", "redis://127.0.0.1:1/0"],
         "Redis at redis://127.0.0.1:1/0 is not reachable"),
        (["--redis-url", "redis://127.0.0.1:6379/0"], "a Redis URL needs a Postgres URL"),
    ],
)  # fmt: skip
def test_unreachable_or_inconsistent_stores_are_clear_errors_before_training(
    data_30: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    env = environment_without_settings()
    done = subprocess.run(
        [sys.executable, "-m", "pasrec.cli.main", "replay", "--data", str(data_30),
         "--cutoff", "0.9", "--out", str(tmp_path / "out"), *flags],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "train").exists()  # failed before training anything


def test_replay_pairs_one_checkpoints_items_with_anothers_clock(
    embedded: tuple[Path, dict], data_30: Path, tmp_path: Path
) -> None:
    """A PreferDiff checkpoint has no clock of its own; with `toi_checkpoint` the ToI
    strategy pushes at the PASRec checkpoint's times and carries PreferDiff's items."""
    out, first = embedded
    pasrec = Path(first["checkpoint"])
    done = subprocess.run(
        [sys.executable, "-m", "pasrec.cli.main", "train", "--data",
         str(out / "train" / "before_cutoff.inter"), "--model", "preferdiff", "--epochs", "1",
         "--hidden", "32", "--ddim-steps", "10", "--diffusion-steps", "100",
         "--history-length", "10", "--quiet", "--out", str(tmp_path / "preferdiff")],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    ranker = tmp_path / "preferdiff" / "checkpoint"
    seen: list[dict] = []
    result = run_replay(
        _options(data_30, tmp_path / "paired", checkpoint=ranker, toi_checkpoint=pasrec,
                 strategies=["toi"]),
        on_push=seen.append,
    )  # fmt: skip
    assert result["toi_checkpoint"] == str(pasrec) and result["model"] == "preferdiff"
    # The ToI strategy runs first: its pushes are the ones the callback saw.
    assert len(seen) == result["runs"]["toi"]["receiver"]["unique"] > 0
    versions = {push["model_version"] for push in seen if push["fallback"] is None}
    ranker_version = load_checkpoint(ranker, "cpu").version
    assert versions == {f"{ranker_version}+toi.{load_checkpoint(pasrec, 'cpu').version}"}
    assert f"next times from `{pasrec}`" in (tmp_path / "paired" / "replay.md").read_text()

    # A clock without a ToI module is refused before anything runs.
    with pytest.raises(ValueError, match="has no time-of-interest module"):
        run_replay(_options(data_30, tmp_path / "bad", checkpoint=pasrec, toi_checkpoint=ranker))
    assert not (tmp_path / "bad" / "runs").exists()


def test_the_timely_probability_gate_drops_only_the_pushes_the_head_doubts(
    embedded: tuple[Path, dict], data_30: Path, tmp_path: Path
) -> None:
    """`tpp_window` with the gate at 1 sends none of its own pushes (each is recorded as
    skipped for its low chance of being timely) and the same fallback pushes as without it."""
    checkpoint = Path(embedded[1]["checkpoint"])
    results = {
        gate: run_replay(_options(data_30, tmp_path / f"gate{gate}", checkpoint=checkpoint,
                                  strategies=["tpp_window"], min_timely_probability=gate))
        for gate in (0.0, 1.0)
    }  # fmt: skip
    timed = {g: r["timed_windows"]["7d"]["tpp_window"]["pushes"] for g, r in results.items()}
    assert timed[0.0] > 0 and timed[1.0] == 0
    everything = {g: r["windows"]["7d"]["tpp_window"]["pushes"] for g, r in results.items()}
    assert everything[0.0] - timed[0.0] == everything[1.0]  # the fallback pushes
    statuses = results[1.0]["runs"]["tpp_window"]["statuses"]
    assert statuses.get("skipped:low_timely_probability", 0) >= timed[0.0]
    assert "skips pushes with P(timely) < 1" in results[1.0]["policy"]
    assert "skipped:low_timely_probability" not in results[0.0]["runs"]["tpp_window"]["statuses"]
