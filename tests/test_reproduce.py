"""``pasrec reproduce``: the grid's cells, its Markdown table, and resuming a broken grid."""

import gzip
import json
import re
from pathlib import Path

import pytest
from data_sources import reference_data

from pasrec.cli.main import build_parser, main
from pasrec.cli.train_command import train_job
from pasrec.model.config import preset, product_objective
from pasrec.training.reproduce import (
    GridSpec,
    Row,
    cell_job,
    markdown_table,
    rows,
    validation_curves,
)

METRIC_CELL = re.compile(r"^\d+\.\d\d ± \d+\.\d\d( \[\d+\.\d\d\])?$")


def spec(tmp_path: Path, **kw) -> GridSpec:
    values = {"table": "3", "data": "data", "name": "Beauty", "methods": ["diffurec"],
              "seeds": 1, "out": tmp_path, "hidden": 512, "baseline_hidden": 64}
    return GridSpec(**{**values, **kw})


def model_values(grid: GridSpec, row: Row) -> dict:
    """The ``ModelConfig`` values a cell sets over its preset."""
    return cell_job(grid, row, 0).model_overrides


def test_new_baselines_get_the_baseline_size_and_no_preferdiff_tuning(tmp_path):
    for method in ("bert4rec", "tisasrec", "meantime", "diffurec"):
        job = cell_job(spec(tmp_path), Row(method, method), 0)
        assert job.model == method and job.model_overrides["hidden"] == 64
        assert "guidance" not in job.model_overrides and "lam" not in job.model_overrides
    assert cell_job(spec(tmp_path), Row("diffurec", "diffurec"), 0).train.valid_limit == 4096
    assert model_values(spec(tmp_path), Row("pasrec", "pasrec"))["hidden"] == 512


def test_diffusion_slots_reach_the_diffusion_cells_only(tmp_path):
    every = spec(tmp_path, diffusion_slots="every")
    assert model_values(every, Row("pasrec", "pasrec"))["diffusion_slots"] == "every"
    # Unset, each preset keeps its own (pasrec: every slot, the paper's presets: the last).
    assert "diffusion_slots" not in model_values(spec(tmp_path), Row("dreamrec", "dreamrec"))
    assert "diffusion_slots" not in model_values(every, Row("sasrec", "sasrec"))
    assert "every slot(s)" in markdown_table(every, {})
    assert "its own objective" in markdown_table(spec(tmp_path), {})


def test_the_full_objective_gives_every_diffusion_cell_the_product_presets_loss(tmp_path):
    product = preset("pasrec")
    full = spec(tmp_path, table="7", objective="full")
    seven = {r.label: model_values(full, r) for r in rows(full)}
    for values in seven.values():
        assert values["ce_weight"] == product.ce_weight > 0
        assert values["item_init_std"] == product.item_init_std
        assert values["state_ce_weight"] == product.state_ce_weight > 0
        assert values["ce_step_floor"] == product.ce_step_floor > 0
        assert values["encoder"] == product.encoder == "gru"
        assert values["diffusion_slots"] == product.diffusion_slots == "every"
        assert values["denoiser"] == product.denoiser
        assert values["guidance"] == product.guidance != 8.0  # over the tuned w
    assert "ce_weight" not in model_values(full, Row("sasrec", "sasrec"))
    paper = cell_job(spec(tmp_path, table="7"), rows(spec(tmp_path, table="7"))[2], 0)
    assert "ce_weight" not in paper.model_overrides and paper.model == "pasrec-paper"
    assert "product pasrec's objective" in markdown_table(full, {})
    # The product preset takes none of the paper's tuned values; the paper's PASRec all.
    product_cell = model_values(spec(tmp_path), Row("pasrec", "pasrec"))
    assert "guidance" not in product_cell and "eta" not in product_cell


@pytest.mark.parametrize("split, tuned", [("loo", "rff"), ("811", "sinusoidal")])
def test_time_encoding_and_ablation_tables_train_the_right_configurations(
    tmp_path, split, tuned
):
    six = {r.label: cell_job(spec(tmp_path, table="6", split=split), r, 0)
           for r in rows(spec(tmp_path, table="6", split=split))}  # fmt: skip
    assert list(six) == ["position", "sinusoidal", "gaussian", "rff"]
    assert six["position"].model == "preferdiff"
    assert "time_encoding" not in six["position"].model_overrides
    for encoding in ("sinusoidal", "gaussian", "rff"):
        assert six[encoding].model == "pasrec-te"
        # The row's encoding wins over the tuned one.
        assert six[encoding].model_overrides["time_encoding"] == encoding
        assert six[encoding].data.split == split
        assert six[encoding].out.endswith(f"{encoding}/seed0")

    seven = {r.label: cell_job(spec(tmp_path, table="7", split=split), r, 0)
             for r in rows(spec(tmp_path, table="7", split=split))}  # fmt: skip
    assert {k: v.model for k, v in seven.items()} == {
        "Base": "preferdiff", "+TE": "pasrec-te", "+TE+TP": "pasrec-paper"}  # fmt: skip
    assert seven["+TE"].model_overrides["time_encoding"] == tuned
    assert seven["+TE+TP"].model_overrides["time_encoding"] == tuned
    assert "eta" in seven["+TE+TP"].model_overrides and "eta" not in seven["+TE"].model_overrides


def option_flags(values: dict) -> list[str]:
    return [text for name, value in values.items()
            for text in ("--" + name.replace("_", "-"), str(value))]  # fmt: skip


def test_a_cell_is_the_run_pasrec_train_makes_of_the_same_options(tmp_path):
    """What a cell runs equals what `pasrec train` builds from the command line a cell used to
    be: the grid's settings, the tuned values, the product objective, the row's own."""
    grid = spec(tmp_path, table="7", split="811", objective="full", max_minutes=2.5,
                train_overrides={"lr": 1e-3, "patience": 4})  # fmt: skip
    row = rows(grid)[1]  # +TE: the tuned encoding and w, then the product objective's
    argv = ["train", "--data", "data", "--name", "Beauty", "--split", "811", "--truncate", "11",
            "--train-samples", "last", "--model", "pasrec-te", "--hidden", "512",
            "--epochs", "200", "--seed", "3", "--device", "cpu", "--quiet",
            "--out", str(tmp_path / "+TE" / "seed3"), "--lam", "0.4", "--guidance", "8.0",
            "--time-encoding", "sinusoidal", "--valid-limit", "4096", "--valid-ddim-steps", "20",
            *option_flags(product_objective()), "--max-minutes", "2.5",
            "--lr", "0.001", "--patience", "4"]  # fmt: skip
    assert cell_job(grid, row, 3) == train_job(build_parser().parse_args(argv))
    baseline = Row("sasrec", "sasrec")
    argv = ["train", "--data", "data", "--name", "Beauty", "--split", "loo", "--truncate", "11",
            "--train-samples", "last", "--model", "sasrec", "--hidden", "64", "--epochs", "200",
            "--seed", "0", "--device", "cpu", "--quiet", "--out", str(tmp_path / "sasrec/seed0")]
    assert cell_job(spec(tmp_path), baseline, 0) == train_job(build_parser().parse_args(argv))


def test_a_cell_survives_its_trip_to_the_child_process(tmp_path):
    grid = spec(tmp_path, table="6", objective="full", train_overrides={"lr": 1e-3})
    for row in rows(grid):
        job = cell_job(grid, row, 1)
        assert type(job).from_json(job.to_json()) == job


def test_ablation_table_shows_the_papers_split_numbers(tmp_path):
    row = {"method": "pasrec", "seeds": 1, "hidden": 512, "epochs_run": [3], "best_epoch": [2],
           "seconds_per_epoch": 1.5, "wall_seconds": 9.0,
           "mean": {"HR@5": 1.0, "HR@10": 2.0, "NDCG@5": 0.5, "NDCG@10": 0.75},
           "std": {"HR@5": 0.0, "HR@10": 0.0, "NDCG@5": 0.0, "NDCG@10": 0.0}}  # fmt: skip
    loo = markdown_table(spec(tmp_path, table="7"), {"+TE+TP": row}).splitlines()
    assert loo[4].startswith("| +TE+TP | 512 | 1 | 1.00 ± 0.00 [3.43] | 2.00 ± 0.00 [4.31] |")
    temporal = markdown_table(spec(tmp_path, table="7", split="811"), {"+TE+TP": row})
    assert "| 1.00 ± 0.00 [4.74] | 2.00 ± 0.00 [5.63] |" in temporal
    assert "+TE+TP = with the ToI module" in loo[0]


def test_reproduce_refuses_a_split_its_table_does_not_have(tmp_path, capsys):
    code = main(["reproduce", "--table", "3", "--split", "811", "--data", "x", "--out",
                 str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "pasrec reproduce: error: table 3 is the loo split, not 811" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing started


def test_table_puts_the_papers_numbers_next_to_ours(tmp_path):
    row = {"method": "tisasrec", "seeds": 1, "hidden": 64, "epochs_run": [3], "best_epoch": [2],
           "seconds_per_epoch": 1.5, "wall_seconds": 9.0,
           "mean": {"HR@5": 1.0, "HR@10": 2.0, "NDCG@5": 0.5, "NDCG@10": 0.75},
           "std": {"HR@5": 0.0, "HR@10": 0.0, "NDCG@5": 0.0, "NDCG@10": 0.0}}
    table = markdown_table(spec(tmp_path), {"tisasrec": row, "meantime": row})
    lines = table.splitlines()
    assert lines[4].startswith("| tisasrec | 64 | 1 | 1.00 ± 0.00 [2.24] | 2.00 ± 0.00 [3.52] |")
    assert "| 0.50 ± 0.00 [1.21] | 0.75 ± 0.00 [1.61] | 3 (2) | 1.5 | 9 |" in lines[5]


def table_rows(path: Path) -> dict[str, list[str]]:
    lines = path.read_text().splitlines()
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    assert header[:7] == ["method", "hidden", "seeds", "HR@5", "HR@10", "NDCG@5", "NDCG@10"]
    assert set(lines[3].replace("|", "")) == {"-"}
    rows = {}
    for line in lines[4:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(header)
        assert all(METRIC_CELL.match(c) for c in cells[3:7]), cells
        rows[cells[0]] = cells
    return rows


@pytest.mark.slow
def test_tiny_grid_writes_a_table_and_resumes_only_the_missing_cell(tmp_path, monkeypatch):
    ml100k = reference_data("ml-100k")
    # The cells inherit it: on a shared 2-core machine extra OpenMP threads only spin.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    argv = ["reproduce", "--table", "3", "--data", str(ml100k), "--name", "ml-100k",
            "--methods", "popularity", "tisasrec", "--seeds", "1", "--epochs", "1",
            "--baseline-hidden", "16", "--out", str(tmp_path)]
    assert main(argv) == 0
    table = tmp_path / "table3_ml-100k.md"
    assert list(table_rows(table)) == ["popularity", "tisasrec"]
    summary = json.loads((tmp_path / "table3_ml-100k.json").read_text())
    assert summary["outcomes"] == {"popularity/seed0": "done", "tisasrec/seed0": "done"}
    assert summary["summary"]["tisasrec"]["epochs_run"] == [1]
    # Popularity trains nothing, so only TiSASRec has a validation curve.
    assert summary["curves"] == {"file": "table3_ml-100k_curves.png",
                                 "cells": ["tisasrec/seed0"]}  # fmt: skip
    assert (tmp_path / "table3_ml-100k_curves.png").stat().st_size > 1000

    # Interrupted grid: one cell lost its result. Only that cell runs again.
    kept = tmp_path / "tisasrec" / "seed0" / "results.json"
    lost = tmp_path / "popularity" / "seed0" / "results.json"
    kept_mtime, kept_log = kept.stat().st_mtime_ns, kept.with_name("train.log").stat().st_mtime_ns
    lost.unlink()
    assert main(argv) == 0
    assert lost.is_file()
    assert kept.stat().st_mtime_ns == kept_mtime
    assert kept.with_name("train.log").stat().st_mtime_ns == kept_log
    again = json.loads((tmp_path / "table3_ml-100k.json").read_text())
    assert again["outcomes"] == {"popularity/seed0": "done", "tisasrec/seed0": "skipped"}
    assert list(table_rows(table)) == ["popularity", "tisasrec"]


def test_curves_read_plain_and_gzipped_logs(tmp_path):
    """docs/results keeps raw logs gzipped: a cell's curve reads either form."""
    grid = spec(tmp_path, methods=["sasrec", "gru4rec", "popularity", "bert4rec"])
    records = [{"epoch": 1, "valid_ndcg@10": 1.5}, {"epoch": 2, "valid_ndcg@10": 2.5}]
    text = "".join(json.dumps(r) + "\n" for r in records)
    for method in ("sasrec", "gru4rec", "popularity"):
        (tmp_path / method / "seed0").mkdir(parents=True)
    (tmp_path / "sasrec" / "seed0" / "train_log.jsonl").write_text(text)
    (tmp_path / "gru4rec" / "seed0" / "train_log.jsonl.gz").write_bytes(
        gzip.compress(text.encode())
    )
    (tmp_path / "popularity" / "seed0" / "train_log.jsonl.gz").write_bytes(gzip.compress(b""))
    # popularity trains nothing (an empty log); bert4rec has not run yet (no log)
    expected = [(1, 1.5), (2, 2.5)]
    curves = validation_curves(grid, "ndcg@10")
    assert curves == {"sasrec/seed0": expected, "gru4rec/seed0": expected}
