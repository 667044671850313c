"""Every benchmark's smoke mode runs end to end (seconds; no thresholds: benches measure, CI
only checks that they still work and write their JSON)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_helpers import free_port, service_process

from pasrec.service.settings import environment_without_settings

ROOT = Path(__file__).resolve().parents[2]
BENCH_KEY = "bench-smoke-key-0123456789"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(synthetic_users) -> Path:
    """120 synthetic users: the benches measure code paths, not a data set."""
    return synthetic_users(120)


def _run(cmd: list[str], cwd: Path = ROOT) -> str:
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=environment_without_settings(),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_model_speed_smoke(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "model_speed.json"
    table = _run([sys.executable, "bench/model_speed.py", "--smoke", "--device", "cpu",
                  "--data", str(data), "--out", str(out)])  # fmt: skip
    report = json.loads(out.read_text())
    assert [r["model"] for r in report["results"]] == ["preferdiff", "pasrec"]
    assert report["machine"]["cores"] and report["smoke"] is True
    assert "| pasrec |" in table and "machine:" in table


@pytest.fixture(scope="module")
def tiny_checkpoint(synthetic_users, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch PASRec on 60 synthetic users: the service benches need a model, not a good one."""
    work = tmp_path_factory.mktemp("bench-model")
    data = synthetic_users(60)
    _run([sys.executable, "-m", "pasrec.cli.main", "train", "--data", str(data), "--epochs", "1",
          "--hidden", "16", "--ddim-steps", "5", "--diffusion-steps", "50", "--truncate", "20",
          "--history-length", "10", "--quiet", "--out", str(work / "run")])  # fmt: skip
    return work / "run" / "checkpoint"


@pytest.fixture(scope="module")
def server(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m pasrec.service` on loopback, embedded storage, serving the tiny checkpoint."""
    work = tmp_path_factory.mktemp("bench-server")
    port = free_port()
    env = environment_without_settings() | {
        "PASREC_PORT": str(port),
        "PASREC_MODEL_PATH": str(tiny_checkpoint),
        "PASREC_SQLITE_PATH": str(work / "pasrec.db"),
        "PASREC_DEVICE": "cpu",
        "PASREC_API_KEYS": json.dumps(
            [{"name": "bench", "scopes": ["ingest", "read"], "key": BENCH_KEY}]
        ),
    }
    with service_process(env, work, work / "server.log"):
        yield f"http://127.0.0.1:{port}"


def test_load_service_smoke(server: str, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "service.json"
    table = _run([sys.executable, "bench/load_service.py", "--smoke", "--url", server,
                  "--key", BENCH_KEY, "--data", str(data), "--out", str(out)])  # fmt: skip
    report = json.loads(out.read_text())
    assert report["ingest"]["accepted"] == report["ingest"]["events"] == 200
    assert report["recommend"]["requests"] == 10
    assert "/recommend" in table and "machine:" in table


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_dispatcher_smoke(tiny_checkpoint: Path, tmp_path: Path) -> None:
    if not (_reachable(5432) and _reachable(6379)):
        # The same rule as the service tests: CI (PASREC_REQUIRE_SERVICES=1) must have them.
        if os.environ.get("PASREC_REQUIRE_SERVICES") == "1":
            pytest.fail("the dispatcher bench needs PostgreSQL and Redis on loopback")
        pytest.skip("PostgreSQL/Redis not running on loopback")
    out = tmp_path / "dispatcher.json"
    # The bench reads its back ends from PASREC_TEST_* (not PASREC_* settings): keep those.
    done = subprocess.run(
        [sys.executable, "bench/dispatcher.py", "--smoke", "--checkpoint", str(tiny_checkpoint),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [run["workers"] for run in report["runs"]] == [1, 2]
    assert all(run["losses"] == 0 for run in report["runs"])  # delivery, not speed
    assert "machine" in done.stdout


def test_time_encoding_resolution_smoke(data: Path, tmp_path: Path) -> None:
    table = _run([sys.executable, "bench/time_encoding_resolution.py", "--data", str(data),
                  "--hidden", "16", "--out", str(tmp_path / "resolution")])  # fmt: skip
    report = json.loads((tmp_path / "resolution.json").read_text())["results"]
    assert list(report)[:3] == ["sinusoidal", "gaussian sigma 0.05", "rff sigma 1"]
    # On a span of months one day barely turns RFF sigma 1 (~0.03 rad per unit frequency).
    assert report["rff sigma 1"]["by_gap"]["1.0"] > 0.99
    assert (tmp_path / "resolution.png").stat().st_size > 0 and "| rff sigma 100 |" in table


def test_final_gap_shift_smoke(data: Path, tmp_path: Path) -> None:
    table = _run([sys.executable, "bench/final_gap_shift.py", "--data", str(data),
                  "--bins", "4", "--out", str(tmp_path / "shift")])  # fmt: skip
    report = json.loads((tmp_path / "shift.json").read_text())
    assert len(report["bins"]) == 4 and set(report["overall"]) == {"train", "valid", "test"}
    # Every part's targets are counted once across the bins.
    users = sum(row["test"]["count"] for row in report["bins"])
    assert users == sum(row["train"]["count"] for row in report["bins"]) > 0
    assert table.count("\n| ") == 4 + 2 and "| all |" in table


def test_push_schedules_smoke(synthetic_users, tmp_path: Path) -> None:
    data = synthetic_users(40)
    _run([sys.executable, "-m", "pasrec.cli.main", "train", "--data", str(data), "--epochs", "1",
          "--hidden", "16", "--ddim-steps", "5", "--diffusion-steps", "50", "--toi-head", "tpp",
          "--tpp-inputs", "gaps", "--tpp-target", "later_day", "--history-length", "10",
          "--quiet", "--out", str(tmp_path / "clock")])  # fmt: skip
    table = _run([sys.executable, "bench/push_schedules.py", "--data", str(data),
                  "--checkpoint", str(tmp_path / "clock" / "checkpoint"),
                  "--out", str(tmp_path / "out")])  # fmt: skip
    report = json.loads((tmp_path / "out" / "push_schedules.json").read_text())
    assert report["decision_points"] > 0
    # A stricter gate never sends more; a looser median limit never sends fewer.
    gated = [row["pushes"] for row in report["tpp_window"].values()]
    assert gated == sorted(gated, reverse=True) and gated[0] > 0
    limited = [row["pushes"] for row in report["median_gate"].values()]
    assert limited == sorted(limited)
    assert (tmp_path / "out" / "push_schedules.png").stat().st_size > 0
    assert "| user_median |" in table


def test_condition_vs_sample_scores_the_product_sampler_as_training_did(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "condition_vs_sample.json"
    _run([sys.executable, "bench/condition_vs_sample.py", "--checkpoint", str(tiny_checkpoint),
          "--part", "test", "--floors", "0", "0.9", "--out", str(out)])  # fmt: skip
    report = json.loads(out.read_text())
    trained = json.loads((tiny_checkpoint.parent / "results.json").read_text())
    # The sampler's ranking is the one the trainer tested: same split, same scores.
    assert report["rankers"]["sample (preset's sampler)"] == pytest.approx(trained["test"])
    assert report["users"] == trained["data"]["test_samples_count"]
    assert set(report["rankers"]) == {
        "sample (preset's sampler)", "condition g'_u", "encoder state g_u",
        "sample, floor 0, 10 steps", "sample, floor 0.9, 10 steps",
    }  # fmt: skip
