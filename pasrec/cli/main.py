"""``pasrec``: one console script, one subcommand per job.

Each handler imports its part lazily so that ``pasrec serve`` never loads the training code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from pasrec.cli.errors import report_errors
from pasrec.cli.help_text import HelpFormatter, package_version
from pasrec.cli.options import add_options
from pasrec.cli.train_command import add_train_command, data_options
from pasrec.model.config import DIFFUSION_SLOTS, MODEL_NAMES


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pasrec.training.pipeline import run_evaluation

    inference = {
        "ddim_steps": args.ddim_steps, "guidance": args.guidance, "ddim_floor": args.ddim_floor
    }
    result = run_evaluation(
        args.checkpoint, data_options(args), args.device, inference, args.on
    )
    if args.toi:
        from pasrec.training.toi_eval import evaluate_toi_for_checkpoint

        result["toi"] = evaluate_toi_for_checkpoint(
            args.checkpoint, data_options(args), args.device, args.plot
        )
    print(json.dumps(result, indent=2))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pasrec.training.reproduce import SPLIT_OF_TABLE, GridSpec, reproduce

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
        train_overrides={name: getattr(args, name) for name in ("lr", "patience")
                         if getattr(args, name) is not None},
    )
    print(reproduce(spec))
    return 0


def add_reproduce_command(sub: argparse._SubParsersAction) -> None:
    from pasrec.training.job import SPLITS

    rep = sub.add_parser("reproduce", help="run the paper's comparison grid and write its table")
    rep.add_argument(
        "--table", choices=("3", "4", "6", "7"), default="3",
        help="3 = methods on LOO, 4 = methods on 8:1:1, 6 = time encodings, 7 = ablation",
    )  # fmt: skip
    rep.add_argument("--split", choices=SPLITS, help="tables 6 and 7: which half (loo)")
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
        choices=DIFFUSION_SLOTS,
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
    from pasrec.training.job import DataOptions

    parser = argparse.ArgumentParser(prog="pasrec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    add_train_command(sub)
    evaluate = sub.add_parser("evaluate", help="score a checkpoint on the test split (JSON)")
    add_options(evaluate, DataOptions)
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
    from pasrec.cli.service_commands import add_service_commands

    add_service_commands(sub)
    from pasrec.cli.replay_commands import add_replay_commands

    add_replay_commands(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return report_errors(args.command, lambda: handler(args))


if __name__ == "__main__":
    sys.exit(main())
