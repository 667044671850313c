"""What the diffusion step adds: a trained diffusion checkpoint's targets ranked by its DDIM
sample (the product's scores), by the condition the sampler starts from, and by the encoder's
state alone, on the split it was trained on. A sampler that ranks below its own condition
costs quality instead of adding it (docs/results/beauty_cpu_default/probes.md).

    python bench/condition_vs_sample.py --checkpoint RUN/checkpoint --part test --out OUT.json

The data options are read from the checkpoint, so the split is the one it trained on.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from pasrec.model.batching import make_batch
from pasrec.model.checkpoint import load_checkpoint
from pasrec.model.recommenders import DiffusionRecommender, mask_padding_column
from pasrec.training.job import DataOptions
from pasrec.training.metrics import MetricAccumulator
from pasrec.training.pipeline import machine_description, prepare_data

Embed = Callable[[DiffusionRecommender, dict[str, torch.Tensor]], torch.Tensor]


def _condition(model: DiffusionRecommender, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model.condition(model.user_state(batch), batch["times"][:, -1], None)[0]


def _mean_of_draws(draws: int) -> Embed:
    """The preset's sampler from ``draws`` noise seeds, its estimates averaged."""

    def embed(model: DiffusionRecommender, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([model.generate(batch, seed=seed) for seed in range(draws)]).mean(0)

    return embed


def rankers(floors: list[float], steps: int, draws: list[int]) -> dict[str, Embed]:
    """Each way of turning a history into the vector its items are scored against."""
    out: dict[str, Embed] = {
        "sample (preset's sampler)": lambda model, batch: model.generate(batch),
        "condition g'_u": _condition,
        "encoder state g_u": lambda model, batch: model.user_state(batch),
    }
    for count in draws:
        out[f"sample, mean of {count} draws"] = _mean_of_draws(count)
    for floor in floors:
        out[f"sample, floor {floor:g}, {steps} steps"] = (
            lambda model, batch, floor=floor: model.diffusion.ddim(
                model.denoiser, _condition(model, batch), model.config.guidance, steps, 0, floor
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    # "train": the training samples, where the denoiser learned: a sample that beats its
    # condition there and loses to it on new users has learned corrections that do not carry.
    parser.add_argument("--part", choices=("train", "valid", "test"), default="valid")
    parser.add_argument("--floors", type=float, nargs="*", default=[0.0],
                        help="other DDIM floors to score beside the preset's")  # fmt: skip
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps of those floors")
    # The sampler's noise is one vector shared by every user, so its trace on the estimate is
    # a shift common to all users' scores; averaging draws shows how much of the loss it is.
    parser.add_argument("--draws", type=int, nargs="*", default=[],
                        help="also score the mean of this many draws of the sampler")  # fmt: skip
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    if not isinstance(ckpt.model, DiffusionRecommender):
        raise SystemExit(f"{args.checkpoint} is a {ckpt.name} checkpoint, not a diffusion model")
    opts = DataOptions(**ckpt.extra["data"])
    opts.history_length = ckpt.config.history_length
    _, split, _, _ = prepare_data(opts)
    samples = getattr(split, args.part)
    results = {}
    with torch.no_grad():
        for name, embed in rankers(args.floors, args.steps, args.draws).items():
            acc = MetricAccumulator()
            for start in tqdm(range(0, len(samples), 1024), desc=name, leave=False):
                part = samples.subset(np.arange(start, min(start + 1024, len(samples))))
                batch = make_batch(part.items, part.days, ckpt.time, torch.device("cpu"),
                                   part.target, part.target_day)  # fmt: skip
                scores = mask_padding_column(embed(ckpt.model, batch) @ ckpt.model.items.weight.T)
                acc.add(scores.float(), torch.as_tensor(part.target))
            results[name] = acc.result()
            shown = ", ".join(f"{k} {v:.2f}" for k, v in results[name].items())
            print(f"{name:34s} {shown}", flush=True)
    report = {"checkpoint": args.checkpoint, "version": ckpt.version, "part": args.part,
              "users": len(samples), "rankers": results, "machine": machine_description()}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
