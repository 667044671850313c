"""``pasrec``: one console script, one subcommand per job.

Each handler imports its part lazily so that ``pasrec serve`` never loads the training code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from cli.help_text import HelpFormatter, package_version
from model.config import (
    ENCODER_INPUTS,
    ENCODER_LOSSES,
    ENCODERS,
    MODEL_NAMES,
    TIME_ENCODINGS,
    TPP_INPUTS,
    TPP_TARGETS,
)


class UsageError(Exception):
    """A problem with the user's input, printed without a traceback."""


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    from training.loaders import FORMATS

    parser.add_argument("--data", required=True, help="data file or directory")
    parser.add_argument("--format", choices=FORMATS, help="override format detection")
    parser.add_argument("--name", help="data set name (selects <name>_item.txt in Amazon dirs)")
    parser.add_argument(
        "--split",
        choices=("loo", "811"),
        default="loo",
        help="leave-one-out per user, or users split 8:1:1",
    )
    parser.add_argument(
        "--k-core", type=int, default=5, help="iteratively drop users and items with fewer events"
    )
    parser.add_argument(
        "--truncate",
        type=int,
        help="keep each user's last N interactions (the paper: history length + 1)",
    )
    parser.add_argument(
        "--train-samples",
        choices=("prefixes", "last"),
        default="prefixes",
        help="train on every prefix of a history, or on its last one (the paper's code)",
    )
    parser.add_argument("--history-length", type=int, help="L (default 50 MovieLens, 10 else)")
    parser.add_argument("--split-seed", type=int, default=0, help="user shuffle of the 811 split")


def data_options(args: argparse.Namespace):
    from training.pipeline import DataOptions

    return DataOptions(
        path=args.data,
        format=args.format,
        name=args.name,
        split=args.split,
        k_core=args.k_core,
        truncate=args.truncate,
        train_samples=args.train_samples,
        history_length=args.history_length,
        split_seed=args.split_seed,
    )


# Model options: (type, help). Unset, each takes the --model preset's value (model/config.py),
# which is ModelConfig's default unless the preset names it; the help shows that default.
MODEL_FLAGS: dict[str, tuple[type, str]] = {
    "hidden": (int, "hidden size d of item embeddings and the encoder"),
    "heads": (int, "attention heads per encoder block"),
    "blocks": (int, "encoder blocks"),
    "dropout": (float, "dropout rate of the encoder"),
    "gamma": (float, "ToI fusion: weight of the user state against the predicted ToI embedding"),
    "eta": (float, "weight of the item loss against the ToI loss (1: the ToI module is untrained)"),
    "lam": (float, "PreferDiff lambda: reconstruction loss against the in-batch BPR loss"),
    "guidance": (float, "classifier-free guidance weight w of the DDIM sampler"),
    "ddim_steps": (int, "DDIM sampling steps at test time"),
    "ddim_floor": (float, "DDIM stops at this share of T and returns its estimate there"),
    "p_uncond": (float, "share of training samples with the condition dropped (guidance)"),
    "ce_weight": (float, "weight of the full-item cross-entropy on the denoised estimate"),
    "ce_temperature": (float, "the cross-entropy's logits are x0_hat . E / this"),
    "ce_step_floor": (
        float, "the cross-entropy on the denoised estimate counts from this share of T on"
    ),
    "state_ce_weight": (float, "weight of the full-item cross-entropy on the condition g'_u"),
    "item_init_std": (float, "std of the item table at initialisation (0: the model's own)"),
    "gaussian_sigma": (float, "width of the gaussian time encoding"),
    "rff_sigma": (float, "scale of the random Fourier features time encoding"),
    "diffusion_steps": (int, "forward diffusion steps T"),
}

# Model options with a closed set of values: (choices, help), the same way.
MODEL_CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "time_encoding": (TIME_ENCODINGS, "how timestamps enter the encoder"),
    "encoder": (ENCODERS, "diffusion models' sequence encoder: SASRec-style blocks or a GRU"),
    "encoder_inputs": (
        ENCODER_INPUTS, "diffusion models: the encoder reads each item with its time, or alone"
    ),
    "encoder_losses": (
        ENCODER_LOSSES,
        "diffusion models: all losses train the encoder, those on g'_u, or a CE on g_u",
    ),
    "toi_head": (("none", "tpp"), "tpp: add the point-process head over the next gap"),
    "tpp_target": (
        TPP_TARGETS, "the gaps the tpp head learns: to the next event, or to the next later day"
    ),
    "tpp_inputs": (
        TPP_INPUTS, "what the tpp head reads: the user state, last time and gaps, or the gaps alone"
    ),
    "recon_loss": (("cosine", "l2"), "diffusion reconstruction loss"),
    "denoiser": (
        ("linear", "mlp"), "diffusion models: one linear layer (PreferDiff) or c + a two-layer MLP"
    ),
    "sasrec_loss": (
        ("ce", "bce"), "SASRec: full-softmax cross-entropy or one sampled negative"
    ),
    "diffusion_slots": (
        ("last", "every"),
        "diffusion models: train the last slot only (PreferDiff) or every slot (as SASRec)",
    ),
}


def model_default(name: str) -> str:
    """The help suffix of a model option: its default when neither it nor the preset sets it."""
    from model.config import ModelConfig

    return f" (default: the --model preset's; else {getattr(ModelConfig(), name)})"


def cmd_train(args: argparse.Namespace) -> int:
    from training.pipeline import run_training
    from training.trainer import TrainConfig

    overrides: dict[str, object] = {
        name: getattr(args, name) for name in (*MODEL_FLAGS, *MODEL_CHOICES)
    }
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        embedding_lr_scale=args.embedding_lr_scale,
        weight_decay=args.weight_decay,
        patience=args.patience,
        val_metric=args.val_metric,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        eval_batch_size=args.eval_batch_size,
        eval_every=args.eval_every,
        progress=not args.quiet,
        max_minutes=args.max_minutes,
        valid_limit=args.valid_limit,
        valid_ddim_steps=args.valid_ddim_steps,
    )
    results = run_training(
        data_options(args), args.model, overrides, cfg, args.out, args.name, args.distributed
    )
    if not results:  # a torchrun rank other than 0: rank 0 reports
        return 0
    print(
        json.dumps(
            {
                k: results[k]
                for k in ("model", "test", "epochs_run", "best_epoch", "seconds_per_epoch")
            },
            indent=2,
        )
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.pipeline import run_evaluation

    inference = {
        "ddim_steps": args.ddim_steps, "guidance": args.guidance, "ddim_floor": args.ddim_floor
    }
    result = run_evaluation(
        args.checkpoint, data_options(args), args.device, inference, args.on
    )
    if args.toi:
        from training.toi_eval import evaluate_toi_for_checkpoint

        result["toi"] = evaluate_toi_for_checkpoint(
            args.checkpoint, data_options(args), args.device, args.plot
        )
    print(json.dumps(result, indent=2))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.reproduce import SPLIT_OF_TABLE, GridSpec, reproduce

    split = SPLIT_OF_TABLE.get(args.table, args.split or "loo")
    if args.split and args.split != split:
        raise ValueError(f"table {args.table} is the {split} split, not {args.split}")
    spec = GridSpec(
        table=args.table, data=args.data, name=args.name, methods=args.methods,
        seeds=args.seeds, out=Path(args.out), split=split,
        jobs=args.jobs, device=args.device, hidden=args.hidden,
        baseline_hidden=args.baseline_hidden, epochs=args.epochs, max_minutes=args.max_minutes,
        diffusion_slots=args.diffusion_slots,
        objective=args.objective,
        extra=[flag for name in ("lr", "patience") if getattr(args, name) is not None
               for flag in ("--" + name, str(getattr(args, name)))],
    )
    print(reproduce(spec))
    return 0


def add_reproduce_command(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("reproduce", help="run the paper's comparison grid and write its table")
    rep.add_argument(
        "--table", choices=("3", "4", "6", "7"), default="3",
        help="3 = methods on LOO, 4 = methods on 8:1:1, 6 = time encodings, 7 = ablation",
    )  # fmt: skip
    rep.add_argument("--split", choices=("loo", "811"), help="tables 6 and 7: which half (loo)")
    rep.add_argument("--data", required=True, help="data file or directory")
    rep.add_argument("--name", default="Beauty", help="data set name (selects tuned settings)")
    rep.add_argument("--methods", nargs="+", choices=MODEL_NAMES, help="tables 3 and 4",
                     default=["pasrec-paper", "preferdiff", "dreamrec", "sasrec", "gru4rec",
                              "bert4rec", "tisasrec", "meantime", "diffurec", "popularity"])
    rep.add_argument("--seeds", type=int, default=3, help="seeds per row")
    rep.add_argument("--jobs", type=int, default=1, help="cells run at the same time")
    rep.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    rep.add_argument("--hidden", type=int, default=512, help="hidden size of diffusion models")
    rep.add_argument("--baseline-hidden", type=int, default=256, help="size of the other methods")
    rep.add_argument("--epochs", type=int, default=200, help="most epochs per cell")
    rep.add_argument("--max-minutes", type=float, help="wall-time budget per cell")
    rep.add_argument("--lr", type=float, help="learning rate of every cell (default: train's)")
    rep.add_argument("--patience", type=int, help="early-stopping patience (default: train's)")
    rep.add_argument(
        "--diffusion-slots",
        choices=("last", "every"),
        help="slots every diffusion model trains on (default: each preset's own)",
    )
    rep.add_argument(
        "--objective", choices=("paper", "full"), default="paper",
        help="paper: each diffusion preset's own objective; full: every diffusion cell also "
        "gets the pasrec preset's objective (Table 7 = its ablation)",
    )  # fmt: skip
    rep.add_argument("--out", required=True, help="output directory (resumes a grid there)")
    rep.set_defaults(handler=cmd_reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pasrec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train a model and write a checkpoint + results.json",
        description="Train a model; writes OUT/checkpoint (what `pasrec serve` loads through "
        "PASREC_MODEL_PATH),\nOUT/results.json, OUT/train_log.jsonl and "
        "OUT/training_curves.png.",
    )
    add_data_arguments(train)
    train.add_argument("--model", choices=MODEL_NAMES, default="pasrec", help="the method")
    for name, (choices, text) in MODEL_CHOICES.items():
        flag = "--" + name.replace("_", "-")
        train.add_argument(flag, choices=choices, help=text + model_default(name))
    for name, (kind, text) in MODEL_FLAGS.items():
        flag = "--" + name.replace("_", "-")
        train.add_argument(flag, type=kind, help=text + model_default(name))
    train.add_argument("--epochs", type=int, default=100, help="most training epochs")
    train.add_argument("--batch-size", type=int, default=256, help="training samples per step")
    train.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate")
    train.add_argument(
        "--embedding-lr-scale",
        type=float,
        default=1.0,
        help="the item table learns at lr x this (its N(0, 1) rows barely move at lr 1e-3)",
    )
    train.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    train.add_argument(
        "--patience",
        type=int,
        default=10,
        help="stop after this many validations without improvement",
    )
    train.add_argument(
        "--val-metric",
        default="NDCG@10",
        choices=("HR@5", "HR@10", "NDCG@5", "NDCG@10", "tpp_nll"),
        help="early-stopping metric (tpp_nll: the tpp head's validation NLL, lower wins)",
    )
    train.add_argument(
        "--eval-batch-size", type=int, default=1024, help="users scored per evaluation batch"
    )
    train.add_argument("--eval-every", type=int, default=1, help="validate every N epochs")
    train.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this wall time (the best epoch so far is kept)",
    )
    train.add_argument("--valid-limit", type=int, help="validate on a fixed random subset")
    train.add_argument("--valid-ddim-steps", type=int, help="DDIM steps during validation")
    train.add_argument("--seed", type=int, default=0, help="seed of weights, batches and sampling")
    train.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    train.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    train.add_argument(
        "--distributed",
        action="store_true",
        help="one rank of a torchrun job (DistributedDataParallel; nccl on CUDA, gloo on CPU); "
        "--batch-size is per rank",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.add_argument("--out", required=True, help="output directory")
    train.set_defaults(handler=cmd_train)

    evaluate = sub.add_parser("evaluate", help="score a checkpoint on the test split (JSON)")
    add_data_arguments(evaluate)
    evaluate.add_argument("--checkpoint", required=True, help="OUT/checkpoint of `pasrec train`")
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    evaluate.add_argument(
        "--ddim-steps", type=int, help="diffusion models: sample with this many DDIM steps"
    )
    evaluate.add_argument(
        "--guidance", type=float, help="diffusion models: classifier-free guidance weight w"
    )
    evaluate.add_argument(
        "--ddim-floor",
        type=float,
        help="diffusion models: stop DDIM at this share of T and return its estimate there",
    )
    evaluate.add_argument(
        "--on", choices=("test", "valid"), default="test",
        help="the split part to score: valid chooses sampling settings without the test",
    )  # fmt: skip
    evaluate.add_argument("--toi", action="store_true", help="add ToI metrics in days")
    evaluate.add_argument("--plot", help="with --toi: PNG of the error distributions")
    evaluate.set_defaults(handler=cmd_evaluate)

    add_reproduce_command(sub)
    from cli.service_commands import add_service_commands

    add_service_commands(sub)
    from cli.replay_commands import add_replay_commands

    add_replay_commands(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"pasrec {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
