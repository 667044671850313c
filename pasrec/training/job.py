"""One training run as data: the options of ``pasrec train``, written once as dataclass fields.

``pasrec train`` builds a ``TrainJob`` from its options (generated from these fields,
``pasrec/cli/options.py``), ``pasrec reproduce`` builds one per grid cell, and both run it through
``pasrec.training.pipeline.run_job``. Nothing here imports torch, so the CLI is built without it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pasrec.model.options import check_choices, option
from pasrec.training.loaders import FORMATS

SPLITS = ("loo", "811")
TRAIN_SAMPLES = ("prefixes", "last")


@dataclass
class DataOptions:
    """What data a run reads and how it is prepared; every field is an option of ``pasrec
    train`` and ``pasrec evaluate``."""

    path: str = option(help="data file or directory", flag="data")
    format: str | None = option(None, help="override format detection", choices=FORMATS)
    name: str | None = option(None, help="data set name (selects <name>_item.txt in Amazon dirs)")
    split: str = option("loo", help="leave-one-out per user, or users split 8:1:1", choices=SPLITS)
    k_core: int = option(5, help="iteratively drop users and items with fewer events")
    truncate: int | None = option(
        None, help="keep each user's last N interactions (the paper: history length + 1)"
    )
    train_samples: str = option(
        "prefixes",
        help="train on every prefix of a history, or on its last one (the paper's code)",
        choices=TRAIN_SAMPLES,
    )
    # None: default_history_length.
    history_length: int | None = option(None, help="L (default 50 MovieLens, 10 else)")
    split_seed: int = option(0, help="user shuffle of the 811 split")


VAL_METRICS = ("HR@5", "HR@10", "NDCG@5", "NDCG@10", "tpp_nll")


@dataclass
class TrainConfig:
    """How a model is trained; the fields made with ``option`` are ``pasrec train`` options."""

    epochs: int = option(100, help="most training epochs")
    batch_size: int = option(256, help="training samples per step")
    lr: float = option(3e-4, help="AdamW learning rate")
    embedding_lr_scale: float = option(
        1.0, help="the item table learns at lr x this (its N(0, 1) rows barely move at lr 1e-3)"
    )
    weight_decay: float = option(0.0, help="AdamW weight decay")
    clip: float = 1.0
    patience: int = option(10, help="stop after this many validations without improvement")
    val_metric: str = option(
        "NDCG@10",
        help="early-stopping metric (tpp_nll: the tpp head's validation NLL, lower wins)",
        choices=VAL_METRICS,
    )
    eval_batch_size: int = option(1024, help="users scored per evaluation batch")
    eval_every: int = option(1, help="validate every N epochs")
    seed: int = option(0, help="seed of weights, batches and sampling")
    device: str = option("cpu", help="cpu, cuda or cuda:N")
    # bf16 mixed precision for the training steps, used only on CUDA.
    amp: bool = option(True, help="no mixed precision on CUDA", flag="no-amp")
    progress: bool = option(True, help="no progress bars", flag="quiet")
    max_minutes: float | None = option(
        None, help="stop after this wall time (the best epoch so far is kept)"
    )
    valid_limit: int | None = option(None, help="validate on a fixed random subset")
    valid_ddim_steps: int | None = option(None, help="DDIM steps during validation")

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass
class TrainJob:
    """A ``pasrec train`` run: the ``--model`` preset and the ``ModelConfig`` fields that
    differ from it, the data and training options, and the output directory."""

    model: str
    data: DataOptions
    out: str
    train: TrainConfig = field(default_factory=TrainConfig)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    distributed: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainJob:
        raw = json.loads(text)
        try:
            return cls(**{**raw, "data": DataOptions(**raw["data"]),
                          "train": TrainConfig(**raw.get("train", {}))})  # fmt: skip
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a training job ({type(err).__name__}: {err})") from err
