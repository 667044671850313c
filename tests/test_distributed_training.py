"""Data-parallel training: 2 CPU ranks with gloo under torchrun, as on a multi-GPU machine.

Run as a script (``python -m torch.distributed.run --nproc_per_node=2 <this file> OUT``) this
module is the gradient-synchronisation probe the test launches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pasrec.training.distributed import World, shard

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
# Small enough for seconds on 2 shared cores; lr 1e-2 so that 2 epochs give non-zero metrics
# (an all-zero evaluation would make "evaluate reproduces results.json" vacuous).
TINY = [
    "--hidden", "32", "--ddim-steps", "10", "--diffusion-steps", "100", "--history-length", "10",
    "--lr", "1e-2", "--epochs", "2", "--seed", "3", "--quiet",
]  # fmt: skip


def _env() -> dict[str, str]:
    # Spawned ranks must not inherit a parent's process-group variables.
    skip = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    return {k: v for k, v in os.environ.items() if k not in skip}


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(), cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_shards_are_disjoint_cover_and_repeat_with_the_seed() -> None:
    order = np.random.default_rng(7).permutation(11)
    parts = [shard(order, World(rank, 3, rank)) for rank in range(3)]
    assert {len(p) for p in parts} == {4}  # padded by wrap-around: same steps on every rank
    assert set(np.concatenate(parts)) == set(range(11))
    assert not set(parts[0]) & set(parts[1])
    again = shard(np.random.default_rng(7).permutation(11), World(1, 3, 1))
    assert np.array_equal(again, parts[1])
    single = shard(order, World())
    assert np.array_equal(single, order)


@pytest.fixture(scope="module")
def data_slice(synthetic_users) -> Path:
    """150 synthetic users."""
    return synthetic_users(150)


@pytest.mark.slow
def test_torchrun_two_ranks_train_and_the_checkpoint_evaluates(
    data_slice: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    data = ["--data", str(data_slice)]
    train = [*TORCHRUN, "-m", "pasrec.cli.main", "train", "--distributed"]
    _run([*train, *data, *TINY, "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2
    assert results["epochs_run"] == 2
    assert results["test"]["HR@10"] > 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1.0, 2.0]  # rank 0 alone logs
    assert all("valid_NDCG@10" in row for row in log)

    evaluated = _run(
        [sys.executable, "-m", "pasrec.cli.main", "evaluate", "--checkpoint", results["checkpoint"],
         *data, "--history-length", "10"]
    )  # fmt: skip
    assert json.loads(evaluated.stdout)["test"] == results["test"]


def test_gradients_are_synchronised_across_ranks(tmp_path: Path) -> None:
    report = tmp_path / "probe.json"
    _run([*TORCHRUN, __file__, str(report)])
    probe = json.loads(report.read_text())
    assert probe["shards_overlap"] == 0
    assert probe["moved_from_init"] > 0
    assert probe["max_diff_after_training"] == 0.0
    # The control: one more step outside DDP on each rank's own data does make them differ,
    # so the probe can see a missing all-reduce.
    assert probe["max_diff_after_unsynced_step"] > 0


def _probe(report: Path) -> None:
    """One rank of the probe: train 1 epoch of a tiny PASRec with the real trainer under
    DDP on synthetic histories, then compare every parameter across ranks."""
    import torch.distributed as dist

    from pasrec.model.batching import make_batch
    from pasrec.model.config import preset
    from pasrec.model.registry import build_model
    from pasrec.model.time_norm import TimeNormalizer
    from pasrec.training.distributed import end_rank, init_from_env, shutdown
    from pasrec.training.splits import Samples
    from pasrec.training.trainer import TrainConfig, seed_everything, train

    world, device = init_from_env("cpu")
    seed_everything(0)
    rng = np.random.default_rng(0)
    n, length, n_items = 64, 5, 40
    days = np.sort(rng.integers(0, 100, (n, length + 1)), axis=1)
    samples = Samples(
        items=rng.integers(1, n_items + 1, (n, length)),
        days=days[:, :length],
        target=rng.integers(1, n_items + 1, n),
        target_day=days[:, length],
        user=np.arange(n),
    )
    normalizer = TimeNormalizer.from_day_range(0, 100)
    config = preset("pasrec", n_items=n_items, history_length=length, hidden=16,
                    diffusion_steps=50, ddim_steps=5, span_days=100.0)  # fmt: skip
    model = build_model(config)
    initial = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    cfg = TrainConfig(epochs=1, batch_size=8, progress=False, device=device)
    train(model, samples, samples.subset(np.arange(8)), normalizer, cfg)

    def spread() -> float:
        flat = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        gathered = [torch.empty_like(flat) for _ in range(world.size)]
        dist.all_gather(gathered, flat)
        return max(float((g - gathered[0]).abs().max()) for g in gathered)

    after_training = spread()
    flat = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    moved = float((flat - initial).abs().max())
    order = np.random.default_rng(0).permutation(n)
    overlap = set(shard(order, World(0, 2, 0))) & set(shard(order, World(1, 2, 1)))

    own = samples.subset(shard(order, world)[:8])
    batch = make_batch(own.items, own.days, normalizer, device, own.target, own.target_day)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    model.loss(batch)[0].backward()
    optimizer.step()
    unsynced = spread()
    if world.is_main:
        report.write_text(json.dumps({
            "shards_overlap": len(overlap),
            "moved_from_init": moved,
            "max_diff_after_training": after_training,
            "max_diff_after_unsynced_step": unsynced,
        }))  # fmt: skip
    shutdown(collective=True)
    end_rank(0)


if __name__ == "__main__":
    _probe(Path(sys.argv[1]))
