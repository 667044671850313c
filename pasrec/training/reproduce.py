"""``pasrec reproduce``: run a grid of rows x seeds and print the paper-style table.

Rows are methods (Tables 3 and 4), the time encodings of "+TE" (Table 6, with the PreferDiff
base as "position") or the ablation settings Base / +TE / +TP (Table 7).

Each cell is a ``pasrec train`` run, built as data (``cell_job``: a ``TrainJob``) and run in
a process of its own through the same function as ``pasrec train`` (``--jobs`` at a time, so
one GPU or several cores are shared). A cell writes its ``results.json`` last, and a cell
whose ``results.json`` exists is not run again, so an interrupted grid resumes where it
stopped.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pasrec.model.config import product_objective
from pasrec.training.job import DataOptions, TrainConfig, TrainJob
from pasrec.training.paper_tables import HYPER_PARAMETERS, METRICS
from pasrec.training.paper_tables import TABLES as PAPER
from pasrec.training.plots import plot_validation_curves, read_train_log

# The PreferDiff family gets ``hidden``; every other method (SASRec, GRU4Rec, BERT4Rec,
# TiSASRec, MEANTIME, DiffuRec, popularity) ``baseline_hidden``.
DIFFUSION = ("pasrec", "pasrec-paper", "pasrec-te", "preferdiff", "dreamrec")
REPO_ROOT = Path(__file__).resolve().parents[2]
# Which of the paper's tuned values each method uses (appendix B): lambda belongs to PreferDiff
# and PASRec, w to every guided model, gamma/eta to the ToI module, the encoding to "+TE" too.
# The product's ``pasrec`` is one configuration on every data set: it takes none of them.
TUNED_KEYS: dict[str, tuple[str, ...]] = {
    "pasrec": (),
    "pasrec-paper": ("lam", "guidance", "gamma", "eta", "time_encoding"),
    "pasrec-te": ("lam", "guidance", "time_encoding"),
    "preferdiff": ("lam", "guidance"),
    "dreamrec": ("guidance",),
}


@dataclass(frozen=True)
class Row:
    """One line of a table: its label, the method it trains and ``ModelConfig`` values of its
    own (applied last, so they win over the tuned values)."""

    label: str
    method: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


TABLE_ROWS: dict[str, tuple[Row, ...]] = {
    "6": (Row("position", "preferdiff"),) + tuple(
        Row(encoding, "pasrec-te", {"time_encoding": encoding})
        for encoding in ("sinusoidal", "gaussian", "rff")
    ),
    # "+TE" takes the data set's tuned (best) encoding, as the paper's ablation does.
    "7": (Row("Base", "preferdiff"), Row("+TE", "pasrec-te"), Row("+TE+TP", "pasrec-paper")),
}
ROW_NOTES = {
    "6": " Rows: the time encoding of \"+TE\" (PASRec without the ToI module); position is "
    "the PreferDiff base.",
    "7": " Rows: Base = PreferDiff (positions), +TE = the tuned real-time encoding, +TE+TP = "
    "with the ToI module (PASRec).",
}
# The curves show what the cells early-stop on.
CURVE_METRIC = TrainConfig().val_metric
SPLIT_OF_TABLE = {"3": "loo", "4": "811"}


@dataclass
class GridSpec:
    table: str
    data: str
    name: str
    methods: list[str]
    seeds: int
    out: Path
    split: str = "loo"
    jobs: int = 1
    device: str = "cpu"
    hidden: int = 512
    baseline_hidden: int = 256
    epochs: int = 200
    max_minutes: float | None = None
    diffusion_slots: str | None = None  # None: each preset's own
    # "paper": each diffusion preset's own objective; "full": every diffusion cell also gets
    # the objective of the product's ``pasrec`` preset (its encoder, full-item
    # cross-entropies, every slot, item-table scale, denoiser and guidance weight: the
    # guidance suited to a denoiser trained this way differs from the paper's), which makes
    # Table 7 that objective's ablation.
    objective: str = "paper"
    # TrainConfig values every cell takes (over the grid's own).
    train_overrides: dict[str, Any] = field(default_factory=dict)


def rows(spec: GridSpec) -> list[Row]:
    if spec.table in TABLE_ROWS:
        return list(TABLE_ROWS[spec.table])
    return [Row(method, method) for method in spec.methods]


def cell_dir(spec: GridSpec, row: Row, seed: int) -> Path:
    return spec.out / row.label / f"seed{seed}"


def cell_job(spec: GridSpec, row: Row, seed: int) -> TrainJob:
    """The ``pasrec train`` run of one cell."""
    method = row.method
    model: dict[str, Any] = {"hidden": spec.hidden if method in DIFFUSION else spec.baseline_hidden}
    train: dict[str, Any] = {"epochs": spec.epochs, "seed": seed, "device": spec.device,
                             "progress": False, "max_minutes": spec.max_minutes}  # fmt: skip
    if method in DIFFUSION:
        tuned = HYPER_PARAMETERS.get((spec.name, spec.split), {})
        model |= {key: tuned[key] for key in TUNED_KEYS[method] if key in tuned}
        # Validation with fewer DDIM steps on a fixed subset; the test uses the full sampler.
        train |= {"valid_limit": 4096, "valid_ddim_steps": 20}
        if spec.objective == "full":
            model |= product_objective()
        if spec.diffusion_slots is not None:
            model["diffusion_slots"] = spec.diffusion_slots
    elif method == "diffurec":
        # Its sampler walks all 32 steps, a Transformer pass each: validate on a fixed subset.
        train["valid_limit"] = 4096
    data = DataOptions(spec.data, name=spec.name, split=spec.split, truncate=11,
                       train_samples="last")  # fmt: skip
    return TrainJob(model=method, data=data, out=str(cell_dir(spec, row, seed)),
                    train=TrainConfig(**(train | spec.train_overrides)),
                    model_overrides=model | dict(row.overrides))  # fmt: skip


def run_cell(spec: GridSpec, row: Row, seed: int) -> str:
    target = cell_dir(spec, row, seed)
    if (target / "results.json").is_file():
        return "skipped"
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1" if spec.jobs > 1 else "")}
    if not env["OMP_NUM_THREADS"]:
        env.pop("OMP_NUM_THREADS")
    with (target / "train.log").open("w") as log:
        code = subprocess.run([sys.executable, "-m", "pasrec.cli.train_command"],
                              input=cell_job(spec, row, seed).to_json(), text=True, stdout=log,
                              stderr=subprocess.STDOUT, env=env).returncode  # fmt: skip
    return "done" if code == 0 else f"failed ({code}), see {target / 'train.log'}"


def run_grid(spec: GridSpec) -> dict[str, str]:
    cells = [(r, s) for r in rows(spec) for s in range(spec.seeds)]
    outcomes: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=spec.jobs) as pool, tqdm(total=len(cells),
                                                                  desc="grid") as bar:
        futures = {pool.submit(run_cell, spec, r, s): (r, s) for r, s in cells}
        for future in futures:
            row, seed = futures[future]
            outcomes[f"{row.label}/seed{seed}"] = future.result()
            bar.update()
    return outcomes


def collect(spec: GridSpec) -> dict[str, dict]:
    summary: dict[str, dict] = {}
    for row in rows(spec):
        runs = [json.loads((cell_dir(spec, row, s) / "results.json").read_text())
                for s in range(spec.seeds)
                if (cell_dir(spec, row, s) / "results.json").is_file()]
        if not runs:
            continue
        summary[row.label] = {
            "method": row.method,
            "seeds": len(runs),
            "mean": {m: statistics.mean(r["test"][m] for r in runs) for m in METRICS},
            "std": {m: statistics.pstdev(r["test"][m] for r in runs) for m in METRICS},
            "hidden": runs[0]["model_config"]["hidden"],
            "epochs_run": [r["epochs_run"] for r in runs],
            "best_epoch": [r["best_epoch"] for r in runs],
            "seconds_per_epoch": statistics.mean(r["seconds_per_epoch"] for r in runs),
            "wall_seconds": statistics.mean(r["wall_seconds"] for r in runs),
            "machine": runs[0]["machine"],
        }
    return summary


def markdown_table(spec: GridSpec, summary: dict[str, dict]) -> str:
    paper = PAPER.get((spec.table, spec.name, spec.split), {})
    lines = [
        f"Table {spec.table}, {spec.name}, split {spec.split} (last 11 interactions per user, "
        "one training sample per user), full ranking, metrics in %: this project's mean ± std "
        "over seeds, the paper's number in brackets. " + objective_note(spec)
        + ROW_NOTES.get(spec.table, ""),
        "",
        "| method | hidden | seeds | " + " | ".join(METRICS) + " | epochs (best) | s/epoch | "
        "wall s/run |",
        "|---|---|---|" + "---|" * len(METRICS) + "---|---|---|",
    ]
    for method, row in summary.items():
        cells = []
        for i, metric in enumerate(METRICS):
            ref = f" [{paper[method][i]:.2f}]" if method in paper else ""
            cells.append(f"{row['mean'][metric]:.2f} ± {row['std'][metric]:.2f}{ref}")
        epochs = ", ".join(f"{e} ({b})" for e, b in zip(row["epochs_run"], row["best_epoch"],
                                                         strict=True))
        hidden = "-" if row.get("method") == "popularity" else row["hidden"]
        lines.append(f"| {method} | {hidden} | {row['seeds']} | " + " | ".join(cells)
                     + f" | {epochs} | {row['seconds_per_epoch']:.1f} | "
                       f"{row['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def objective_note(spec: GridSpec) -> str:
    if spec.objective == "full":
        return ("Every diffusion row trained with the product pasrec's objective (GRU "
                "encoder, full-item cross-entropies, every slot).")
    if spec.diffusion_slots is not None:
        return f"Diffusion models trained on {spec.diffusion_slots} slot(s) of the sample."
    return ("Each diffusion preset trained with its own objective (pasrec: GRU encoder, "
            "full-item cross-entropies, every slot; the paper's presets: PreferDiff's, last "
            "slot).")


def validation_curves(spec: GridSpec, metric: str) -> dict[str, list[tuple[float, float]]]:
    """Each trained cell's validation ``metric`` per epoch, from its (maybe gzipped) log."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in rows(spec):
        for seed in range(spec.seeds):
            records = read_train_log(cell_dir(spec, row, seed))
            if records is None:
                continue  # the cell has not run yet
            points = [(r["epoch"], r[f"valid_{metric}"]) for r in records
                      if f"valid_{metric}" in r]  # fmt: skip
            if points:  # popularity's log is empty: it trains nothing
                curves[f"{row.label}/seed{seed}"] = points
    return curves


def reproduce(spec: GridSpec) -> str:
    spec.out.mkdir(parents=True, exist_ok=True)
    outcomes = run_grid(spec)
    summary = collect(spec)
    table = markdown_table(spec, summary)
    stem = f"table{spec.table}_{spec.name}"
    (spec.out / f"{stem}.md").write_text(table)
    curves = validation_curves(spec, CURVE_METRIC)
    if curves:
        plot_validation_curves(curves, spec.out / f"{stem}_curves.png", CURVE_METRIC,
                               f"Table {spec.table}, {spec.name}: validation per epoch")
    (spec.out / f"{stem}.json").write_text(json.dumps(
        {"outcomes": outcomes, "summary": summary,
         "curves": {"file": f"{stem}_curves.png" if curves else None, "cells": list(curves)}},
        indent=2))  # fmt: skip
    return table
