"""Training and inference speed of PASRec vs the PreferDiff configuration, in one run.

Training: samples/s and seconds per epoch over real Beauty batches (LOO, last L+1, one
sample per user, as the paper). Inference: DDIM top-K latency at batch 1 and throughput at
batch 256, by number of DDIM steps. Prints a Markdown table and writes JSON with the machine.

    python bench/model_speed.py --data ../shared/data/beauty --hidden 512 --device cpu
    python bench/model_speed.py --smoke          # seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from pasrec.model.batching import make_batch
from pasrec.model.registry import build_model
from pasrec.training.pipeline import DataOptions, machine_description, model_config, prepare_data
from pasrec.training.trainer import make_optimizer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_speed(model, split, normalizer, device, steps: int, batch_size: int) -> dict:
    optimizer = make_optimizer(model, lr=3e-4, weight_decay=0.0)
    model.train()
    rng = np.random.default_rng(0)
    timings = []
    for step in range(steps + 2):
        # A smoke run's small data may hold fewer samples than a batch: draw some twice.
        small = len(split.train) < batch_size
        part = split.train.subset(rng.choice(len(split.train), batch_size, replace=small))
        batch = make_batch(part.items, part.days, normalizer, device, part.target, part.target_day)
        sync(device)
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync(device)
        if step >= 2:  # the first steps pay for allocation and kernel selection
            timings.append(time.perf_counter() - started)
    per_step = statistics.mean(timings)
    return {
        "samples_per_s": batch_size / per_step,
        "seconds_per_epoch": per_step * len(split.train) / batch_size,
    }


@torch.no_grad()
def inference_speed(model, split, normalizer, device, steps_list, repeats: int) -> list[dict]:
    model.eval()
    rows = []
    for ddim in steps_list:
        model.config.ddim_steps = ddim
        for batch_size in (1, 256):
            part = split.test.subset(np.arange(batch_size) % len(split.test))
            batch = make_batch(part.items, part.days, normalizer, device)
            model.score(batch).topk(10)
            sync(device)
            timings = []
            for _ in range(repeats):
                started = time.perf_counter()
                model.score(batch).topk(10)
                sync(device)
                timings.append(time.perf_counter() - started)
            seconds = statistics.median(timings)
            rows.append(
                {
                    "ddim_steps": ddim,
                    "batch": batch_size,
                    "seconds_per_batch": seconds,
                    "seconds_per_sample": seconds / batch_size,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/beauty")
    )
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    parser.add_argument("--ddim", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--out", default="docs/results/bench_model_speed.json")
    args = parser.parse_args()
    if args.smoke:
        args.hidden, args.steps, args.ddim, args.repeats = 32, 2, [5], 1
    machine = machine_description()  # before the run: the load of a shared machine
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    data, split, normalizer, length = prepare_data(
        DataOptions(path=args.data, split="loo", truncate=11, train_samples="last")
    )
    rows = []
    for name in ("preferdiff", "pasrec"):
        torch.manual_seed(0)
        config = model_config(name, data, normalizer, length, hidden=args.hidden)
        model = build_model(config).to(device)
        speed = train_speed(model, split, normalizer, device, args.steps, 256)
        infer = inference_speed(model, split, normalizer, device, args.ddim, args.repeats)
        rows.append({"model": name, "train": speed, "inference": infer})
    report = {
        "hidden": args.hidden,
        "device": str(device),
        "machine": machine,
        "data": args.data,
        "train_samples": len(split.train),
        "smoke": args.smoke,
        "results": rows,
    }
    print(
        f"machine: {machine['cpu']} ({machine['cores']} cores, load {machine['load_avg_1m']:.1f}),"
        f" {machine.get('gpu', 'no GPU')}, torch {machine['torch']}; data {args.data}\n"
    )
    print(
        "| model | hidden | device | train samples/s | s/epoch | "
        + " | ".join(f"infer s/sample b1 ddim{d}" for d in args.ddim)
        + f" | b256 s/sample ddim{args.ddim[-1]} |"
    )
    print("|" + "---|" * (6 + len(args.ddim)))
    for row in rows:
        b1 = [r["seconds_per_sample"] for r in row["inference"] if r["batch"] == 1]
        b256 = [r["seconds_per_sample"] for r in row["inference"] if r["batch"] == 256][-1]
        print(
            f"| {row['model']} | {args.hidden} | {device} | {row['train']['samples_per_s']:.0f} | "
            f"{row['train']['seconds_per_epoch']:.2f} | "
            + " | ".join(f"{v:.5f}" for v in b1)
            + f" | {b256:.6f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
