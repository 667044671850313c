"""End to end through the console script: train, results.json, checkpoint, evaluate."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from data_sources import reference_data


@pytest.fixture(scope="module")
def data_300(synthetic_users) -> Path:
    """300 synthetic users (the MovieLens test below is about that data set)."""
    return synthetic_users(300)

def pasrec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pasrec.cli.main", *args], capture_output=True,
                          text=True, timeout=600)


def train(data: Path, out: Path, model: str, *extra: str) -> dict:
    done = pasrec("train", "--data", str(data), "--model", model, "--out", str(out),
                  "--quiet", *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


# The slice the paper's protocol takes: each user's last L + 1 = 51 interactions.
SLICE = ["--truncate", "51", "--train-samples", "last"]


@pytest.fixture(scope="module")
def movielens_popularity(tmp_path_factory) -> dict:
    """Popularity's results on the MovieLens slice: the floor every trained model must clear."""
    return train(reference_data("ml-100k"), tmp_path_factory.mktemp("pop"), "popularity", *SLICE)


@pytest.mark.timeout(1800)  # ~2 minutes alone; generous for a loaded machine
def test_trained_model_beats_popularity_and_evaluate_reproduces_it(tmp_path, movielens_popularity):
    data = reference_data("ml-100k")
    popular = movielens_popularity
    # One sample per user; GRU4Rec still learns from every position of each history.
    trained = train(data, tmp_path / "gru", "gru4rec", "--hidden", "64", "--epochs", "12",
                    "--lr", "3e-3", *SLICE)
    assert trained["test"]["HR@10"] > popular["test"]["HR@10"]
    assert trained["epochs_run"] >= 1 and 1 <= trained["best_epoch"] <= trained["epochs_run"]
    assert trained["seconds_per_epoch"] > 0
    assert (tmp_path / "gru" / "training_curves.png").stat().st_size > 0
    done = pasrec("evaluate", "--checkpoint", str(tmp_path / "gru" / "checkpoint"),
                  "--data", str(data), *SLICE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["test"] == pytest.approx(trained["test"])


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 1-2 minutes alone
def test_the_product_pasrec_beats_popularity_on_movielens(tmp_path, movielens_popularity):
    data = reference_data("ml-100k")
    popular = movielens_popularity
    # The default preset as the service trains it, denoiser dropout and DDIM sampling included;
    # 20 epochs is where it leaves popularity clearly behind on this small slice.
    trained = train(data, tmp_path / "pasrec", "pasrec", "--hidden", "64", "--epochs", "20",
                    "--lr", "3e-3", *SLICE)
    assert trained["model_config"]["denoiser_dropout"] > 0
    # At least 1.2 points (11 of the 943 test users) above popularity.
    assert trained["test"]["HR@10"] >= popular["test"]["HR@10"] + 1.2, (trained, popular)


def test_pasrec_trains_end_to_end_with_its_toi_report(data_300, tmp_path):
    result = train(data_300, tmp_path / "pasrec", "pasrec", "--hidden", "32", "--epochs", "1",
                   "--ddim-steps", "5", "--toi-head", "tpp", "--train-samples", "last")
    assert result["model_config"]["toi"] and result["model_config"]["toi_head"] == "tpp"
    assert set(result["test"]) == {"HR@5", "HR@10", "NDCG@5", "NDCG@10", "tpp_nll"}
    # Recalibrated on the validation targets after training, and saved with the checkpoint.
    calibration = result["fitted"]["tpp_calibration"]
    assert calibration[0] == 0.0 and calibration[-1] == 1.0 and calibration == sorted(calibration)
    plot = tmp_path / "toi.png"
    done = pasrec("evaluate", "--checkpoint", str(tmp_path / "pasrec" / "checkpoint"),
                  "--data", str(data_300), "--train-samples", "last", "--toi", "--plot", str(plot))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["test"] == pytest.approx(result["test"])
    predictors = report["toi"]["predictors"]
    assert {"pasrec: decoded ToI", "pasrec: tpp median", "pasrec: tpp best ±7-day window",
            "naive: last gap",
            "naive: user median gap", "naive: global median gap"} == set(predictors)
    levels = {str(q / 10) for q in range(1, 10)}
    for key in ("tpp_calibration_pct", "tpp_calibration_raw_pct", "tpp_calibration_raw_valid_pct"):
        assert set(report["toi"][key]) == levels, key
    assert report["toi"]["tpp_recalibrated"] is True
    gaps = report["toi"]["target_gaps"]
    assert set(gaps) == {"train", "valid", "test"}
    assert all(0 <= g["same_day_pct"] <= 100 and g["median_days"] >= 0 for g in gaps.values())
    assert plot.stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/nonexistent/path"], "/nonexistent/path"),
        (["--data", "{data}", "--split", "811", "--truncate", "1"], "error"),
    ],
)
def test_bad_input_is_a_clear_error_without_traceback(data_300, tmp_path, args, message):
    args = [a.replace("{data}", str(data_300)) for a in args]
    done = pasrec("train", *args, "--model", "popularity", "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_train_options_make_the_job_pasrec_train_runs(tmp_path):
    from pasrec.cli.main import build_parser
    from pasrec.cli.train_command import train_job
    from pasrec.training.job import DataOptions, TrainConfig

    base = ["train", "--data", "d", "--out", str(tmp_path)]
    plain = train_job(build_parser().parse_args(base))
    # Unset model options are no overrides: the --model preset's values apply.
    assert plain.model == "pasrec" and plain.model_overrides == {}
    assert plain.train == TrainConfig() and plain.data == DataOptions("d")
    job = train_job(build_parser().parse_args(
        [*base, "--model", "sasrec", "--hidden", "64", "--guidance", "2", "--encoder", "gru",
         "--quiet", "--no-amp", "--lr", "1e-3", "--max-minutes", "1.5", "--split", "811"]))
    assert job.model_overrides == {"hidden": 64, "guidance": 2.0, "encoder": "gru"}
    assert isinstance(job.model_overrides["guidance"], float)
    assert (job.train.progress, job.train.amp, job.train.lr) == (False, False, 1e-3)
    assert job.train.max_minutes == 1.5 and job.data.split == "811"


@pytest.mark.parametrize(("spec", "message"), [
    ('{"model": "popularity", "data": {"path": "/nonexistent"}, "out": "x"}',
     "no such file or directory: /nonexistent"),
    ('{"model": "popularity", "data": {"path": "d"}}', "not a training job"),
    ('{"model": "popularity", "data": {"path": "d", "splits": "loo"}, "out": "x"}',
     "not a training job"),
])  # fmt: skip
def test_a_bad_job_for_the_cell_entry_is_a_clear_error(tmp_path, spec, message):
    done = subprocess.run([sys.executable, "-m", "pasrec.cli.train_command"], input=spec, text=True,
                          capture_output=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("pasrec train: error: ") and message in done.stderr
    assert "Traceback" not in done.stderr
