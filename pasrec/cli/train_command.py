"""``pasrec train``: its options, generated from the dataclasses of ``pasrec/training/job.py`` and
``ModelConfig``, the ``TrainJob`` they make, and running one.

``python -m pasrec.cli.train_command`` runs a ``TrainJob`` given as JSON on stdin exactly as
``pasrec train`` runs the one its options make (same output, same errors): how
``pasrec reproduce`` runs a grid cell in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from pasrec.cli.errors import report_errors
from pasrec.cli.options import add_options, option_values
from pasrec.model.config import MODEL_NAMES, ModelConfig

if TYPE_CHECKING:
    from pasrec.training.job import DataOptions, TrainJob


def add_train_command(sub: argparse._SubParsersAction) -> None:
    from pasrec.training.job import DataOptions, TrainConfig

    train = sub.add_parser(
        "train",
        help="train a model and write a checkpoint + results.json",
        description="Train a model; writes OUT/checkpoint (what `pasrec serve` loads through "
        "PASREC_MODEL_PATH),\nOUT/results.json, OUT/train_log.jsonl and "
        "OUT/training_curves.png.",
    )
    add_options(train, DataOptions)
    train.add_argument("--model", choices=MODEL_NAMES, default="pasrec", help="the method")
    add_options(train, ModelConfig, preset_defaults=True)
    add_options(train, TrainConfig)
    train.add_argument(
        "--distributed",
        action="store_true",
        help="one rank of a torchrun job (DistributedDataParallel; nccl on CUDA, gloo on CPU); "
        "--batch-size is per rank",
    )
    train.add_argument("--out", required=True, help="output directory")
    train.set_defaults(handler=cmd_train)


def data_options(args: argparse.Namespace) -> DataOptions:
    from pasrec.training.job import DataOptions

    return DataOptions(**option_values(args, DataOptions))


def train_job(args: argparse.Namespace) -> TrainJob:
    """The run ``pasrec train``'s options ask for; model options left unset are not
    overrides (the preset's value applies)."""
    from pasrec.training.job import TrainConfig, TrainJob

    overrides = option_values(args, ModelConfig)
    return TrainJob(
        model=args.model,
        data=data_options(args),
        out=args.out,
        train=TrainConfig(**option_values(args, TrainConfig)),
        model_overrides={k: v for k, v in overrides.items() if v is not None},
        distributed=args.distributed,
    )


def cmd_train(args: argparse.Namespace) -> int:
    return run_and_print(train_job(args))


def run_and_print(job: TrainJob) -> int:
    from pasrec.training.pipeline import run_job

    results = run_job(job)
    if results:  # a torchrun rank other than 0 returns nothing: rank 0 reports
        shown = ("model", "test", "epochs_run", "best_epoch", "seconds_per_epoch")
        print(json.dumps({k: results[k] for k in shown}, indent=2))
    if job.distributed:
        from pasrec.training.distributed import end_rank

        end_rank(0)
    return 0


def main() -> int:
    from pasrec.training.job import TrainJob

    return report_errors("train", lambda: run_and_print(TrainJob.from_json(sys.stdin.read())))


if __name__ == "__main__":
    sys.exit(main())
