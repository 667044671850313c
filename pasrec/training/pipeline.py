"""From a data path and options to a trained checkpoint and ``results.json``."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pasrec.model.checkpoint import load_checkpoint, save_checkpoint
from pasrec.model.config import ModelConfig, preset
from pasrec.model.registry import build_model
from pasrec.model.time_norm import TimeNormalizer
from pasrec.training.distributed import World, init_from_env, shutdown
from pasrec.training.job import DataOptions, TrainConfig, TrainJob
from pasrec.training.loaders import load_interactions
from pasrec.training.machine import cpu_model
from pasrec.training.plots import TRAIN_LOG, plot_training_curves
from pasrec.training.preprocess import SequenceData, build_sequences
from pasrec.training.splits import Split, split_loo, split_ratio
from pasrec.training.toi_eval import calibrate_tpp
from pasrec.training.trainer import evaluate, seed_everything, train


def default_history_length(path: str) -> int:
    lowered = path.lower()
    return 50 if ("ml-" in lowered or "movielens" in lowered) else 10


def prepare_data(opts: DataOptions) -> tuple[SequenceData, Split, TimeNormalizer, int]:
    inter = load_interactions(opts.path, opts.format, opts.name)
    data = build_sequences(inter, k_core=opts.k_core, truncate=opts.truncate)
    length = opts.history_length or default_history_length(opts.path)
    if opts.split == "loo":
        split = split_loo(data, length, opts.train_samples)
    elif opts.split == "811":
        split = split_ratio(data, length, opts.split_seed, opts.train_samples)
    else:
        raise ValueError(f"--split must be 'loo' or '811', got {opts.split!r}")
    normalizer = TimeNormalizer.from_day_range(*split.train_day_range)
    return data, split, normalizer, length


def model_config(
    name: str, data: SequenceData, normalizer: TimeNormalizer, length: int, **overrides: Any
) -> ModelConfig:
    """The named preset sized to the prepared data (items, history length, time span)."""
    return preset(name, n_items=data.n_items, history_length=length,
                  span_days=float(normalizer.span_days), **overrides)  # fmt: skip


def machine_description() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        # On a shared machine the load at the start says how far timings can be trusted.
        "load_avg_1m": os.getloadavg()[0],
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def item_counts(data: SequenceData, split: Split) -> list[int]:
    counts = np.bincount(split.train.target, minlength=data.n_items + 1)
    return counts[1:].astype(int).tolist()


def run_training(
    data_opts: DataOptions,
    model_name: str,
    model_overrides: dict[str, Any],
    train_cfg: TrainConfig,
    out_dir: str | Path,
    dataset_name: str | None = None,
    distributed: bool = False,
) -> dict[str, Any]:
    """Train, test and save; ``distributed``: one rank of a torchrun job (DDP).

    Every rank prepares the same data and model; rank 0 alone tests, writes the checkpoint
    and ``results.json`` and returns the results (other ranks return ``{}``).
    """
    world = World()
    if distributed:
        world, device = init_from_env(train_cfg.device)
        train_cfg = replace(train_cfg, device=device)
    try:
        if world.is_main:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        result = _train_and_save(data_opts, model_name, model_overrides, train_cfg, out_dir,
                                 dataset_name, world)  # fmt: skip
    except BaseException:
        if distributed:
            shutdown(collective=False)
        raise
    if distributed:
        shutdown(collective=True)
    return result


def run_job(job: TrainJob) -> dict[str, Any]:
    """``run_training`` for a run given as data: what ``pasrec train`` and every ``pasrec
    reproduce`` cell run; the data set is named by ``--name`` (else the path's last part)."""
    return run_training(job.data, job.model, job.model_overrides, job.train, job.out,
                        job.data.name, job.distributed)  # fmt: skip


def _train_and_save(
    data_opts: DataOptions,
    model_name: str,
    model_overrides: dict[str, Any],
    train_cfg: TrainConfig,
    out_dir: str | Path,
    dataset_name: str | None,
    world: World,
) -> dict[str, Any]:
    out = Path(out_dir)
    seed_everything(train_cfg.seed)
    started = time.perf_counter()
    data, split, normalizer, length = prepare_data(data_opts)
    config = model_config(model_name, data, normalizer, length, seed=train_cfg.seed,
                          **model_overrides)  # fmt: skip
    model = build_model(config)
    model.fit_statistics(torch.as_tensor(split.train.target))
    log_path = out / TRAIN_LOG
    if world.is_main:
        log_path.write_text("")

    def log_epoch(record: dict[str, float]) -> None:
        with log_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    result = train(model, split.train, split.valid, normalizer, train_cfg, on_epoch=log_epoch)
    if not world.is_main:
        return {}
    device = torch.device(train_cfg.device)
    if config.toi_head == "tpp":
        calibrate_tpp(model, split.valid, normalizer, device)
    test = evaluate(
        model,
        split.test,
        normalizer,
        device,
        train_cfg.eval_batch_size,
        progress=train_cfg.progress,
        desc="test",
    )
    checkpoint_dir = save_checkpoint(
        out / "checkpoint",
        model,
        config,
        model_name,
        data.item_vocab,
        item_counts(data, split),
        normalizer,
        extra={"dataset": dataset_name or Path(data_opts.path).name, "data": asdict(data_opts)},
    )
    if result.history:
        plot_training_curves(
            result.history,
            out / "training_curves.png",
            f"{model_name} on {dataset_name or Path(data_opts.path).name}",
        )
    results = {
        "model": model_name,
        "dataset": dataset_name or Path(data_opts.path).name,
        "test": test,
        "best_valid": result.best_valid,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "seconds_per_epoch": result.seconds_per_epoch,
        "wall_seconds": time.perf_counter() - started,
        "data": {
            **asdict(data_opts),
            "history_length": length,
            "users": len(data.user_ids),
            "items": data.n_items,
            "interactions": data.n_interactions,
            "train_samples_count": len(split.train),
            "test_samples_count": len(split.test),
        },
        "model_config": config.to_dict(),
        "fitted": model.fitted_state(),
        "train_config": asdict(train_cfg),
        "world_size": world.size,
        "machine": machine_description(),
        "checkpoint": str(checkpoint_dir),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def run_evaluation(
    checkpoint: str | Path,
    data_opts: DataOptions,
    device: str,
    inference: dict[str, Any] | None = None,
    part: str = "test",
) -> dict[str, Any]:
    """Re-split the data exactly as in training and score the checkpoint's ``part`` targets
    (``test``, or ``valid`` to choose sampling settings without looking at the test).

    ``inference`` overrides sampling settings of the stored config (``ddim_steps``,
    ``guidance``, ``ddim_floor``) for this evaluation only, so one checkpoint can be scored
    several ways."""
    if part not in ("test", "valid"):
        raise ValueError(f"part must be 'test' or 'valid', got {part!r}")
    ckpt = load_checkpoint(checkpoint, device)
    for key, value in (inference or {}).items():
        if value is not None:
            setattr(ckpt.config, key, value)
    data_opts.history_length = ckpt.config.history_length
    data, split, _, _ = prepare_data(data_opts)
    if data.item_vocab != ckpt.item_vocab:
        raise ValueError(
            "the data's item vocabulary differs from the checkpoint's: evaluate with the same "
            "data, format, k-core and truncation options that trained it"
        )
    samples = getattr(split, part)
    metrics = evaluate(ckpt.model, samples, ckpt.time, torch.device(device), progress=True,
                       desc=part)  # fmt: skip
    return {
        "model": ckpt.name,
        "version": ckpt.version,
        part: metrics,
        "inference": {
            k: getattr(ckpt.config, k) for k in ("ddim_steps", "guidance", "ddim_floor")
        },
        "data": asdict(data_opts),
        f"{part}_samples_count": len(samples),
    }
