"""The training loop: AdamW, clipping, early stopping with best-epoch restore, seeded."""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from pasrec.model.batching import make_batch
from pasrec.model.interfaces import time_of_interest
from pasrec.model.time_norm import TimeNormalizer
from pasrec.training.distributed import broadcast_flag, current_world, shard, sum_across, wrap
from pasrec.training.job import TrainConfig
from pasrec.training.metrics import MetricAccumulator
from pasrec.training.splits import Samples


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0
    seconds_per_epoch: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # Deterministic kernels on CPU; on CUDA only where they exist (warn instead of failing).
    torch.use_deterministic_algorithms(True, warn_only=True)


def autocast(device: torch.device, enabled: bool):
    return torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda"
    )


@contextmanager
def ddim_steps(model: nn.Module, steps: int | None):
    """Temporarily sample with ``steps`` DDIM steps (diffusion models only)."""
    config = getattr(model, "config", None)
    if steps is None or config is None:
        yield
        return
    saved = config.ddim_steps
    config.ddim_steps = steps
    try:
        yield
    finally:
        config.ddim_steps = saved


class LossModule(nn.Module):
    """The model's training loss as ``forward``, so DistributedDataParallel can wrap it:
    DDP synchronises gradients only for computations that run through its own forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(batch)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    samples: Samples,
    normalizer: TimeNormalizer,
    device: torch.device,
    batch_size: int = 1024,
    progress: bool = False,
    desc: str = "eval",
) -> dict[str, float]:
    """Full-ranking HR/NDCG@{5,10} (%) of ``samples``' targets; with a tpp head also the
    mean negative log-likelihood of the next gap (``tpp_nll``, lower is better)."""
    model.eval()
    acc = MetricAccumulator()
    toi = time_of_interest(model)
    has_tpp = toi is not None and toi.has_gap_head
    nll_sum = 0.0
    starts = range(0, len(samples), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        part = samples.subset(np.arange(start, min(start + batch_size, len(samples))))
        batch = make_batch(part.items, part.days, normalizer, device, part.target, part.target_day)
        # Scores stay in full precision: bf16 would create ties among the ranked items.
        acc.add(model.score(batch).float(), torch.as_tensor(part.target, device=device))
        if has_tpp:
            # The NLL dequantises days with uniform noise: seed it so a score is repeatable.
            cuda = [device] if device.type == "cuda" else []
            with torch.no_grad(), torch.random.fork_rng(devices=cuda):
                torch.manual_seed(start)
                nll_sum += float(toi.gap_nll(batch)) * len(part)
    result = acc.result()
    if has_tpp:
        result["tpp_nll"] = nll_sum / max(len(samples), 1)
    return result


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, embedding_lr_scale: float = 1.0
) -> torch.optim.Optimizer:
    """AdamW; the item table learns at ``lr * embedding_lr_scale``. Adam moves each weight by
    about ``lr`` per step whatever its scale, so a table drawn from N(0, 1) (the diffusion
    models') changes 0.1 % per step at lr 1e-3, a table at d^-0.5 twenty times faster."""
    table = getattr(model, "items", None)
    special = [table.weight] if isinstance(table, nn.Embedding) else []
    rest = [p for p in model.parameters() if all(p is not q for q in special)]
    groups = [{"params": rest}]
    if special:
        groups.append({"params": special, "lr": lr * embedding_lr_scale})
    # The fused kernel updates each parameter in one pass: on CPU the unfused update of the
    # item table alone cost about a sixth of a diffusion training step at d=512.
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=True)


def improvement(metric: str, value: float) -> float:
    """Validation metrics where lower is better are negated so that higher always wins."""
    return -value if metric == "tpp_nll" else value


def train(
    model: nn.Module,
    train_samples: Samples,
    valid_samples: Samples,
    normalizer: TimeNormalizer,
    cfg: TrainConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place; under an initialised process group (torchrun), data-parallel.

    Each rank trains on its shard of every epoch's permutation; validation, early stopping and
    ``on_epoch`` happen on rank 0, whose stop decision is broadcast. Only rank 0's result
    carries the validation history and restores the best epoch's weights.
    """
    world = current_world()
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    model.to(device)
    result = TrainResult()
    if not any(p.requires_grad for p in model.parameters()):
        return result  # popularity: nothing to optimise
    net = wrap(LossModule(model), world, device)
    if world.rank:
        # Other ranks draw their own diffusion noise and condition dropout; rank 0 keeps the
        # single-process stream. The initial weights stay rank 0's (DDP broadcasts them).
        torch.manual_seed(cfg.seed + 104_729 * world.rank)
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.embedding_lr_scale)
    # The same seed on every rank: the same permutation, cut into disjoint shards.
    generator = np.random.default_rng(cfg.seed)
    if cfg.valid_limit is not None and cfg.valid_limit < len(valid_samples):
        valid_samples = valid_samples.subset(
            np.sort(generator.choice(len(valid_samples), cfg.valid_limit, replace=False))
        )
    deadline = None if cfg.max_minutes is None else time.perf_counter() + 60 * cfg.max_minutes
    best_score, best_state, stale = -math.inf, None, 0
    seconds = 0.0
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        started = time.perf_counter()
        order = shard(generator.permutation(len(train_samples)), world)
        totals: dict[str, float] = {}
        batches = range(0, len(order), cfg.batch_size)
        show = cfg.progress and world.is_main
        bar = tqdm(batches, desc=f"epoch {epoch}", disable=not show, leave=False)
        for start in bar:
            part = train_samples.subset(order[start : start + cfg.batch_size])
            batch = make_batch(
                part.items, part.days, normalizer, device, part.target, part.target_day
            )
            with autocast(device, cfg.amp):
                loss, parts = net(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            optimizer.step()
            parts["loss"] = float(loss.detach())
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + value * len(part)
            totals["samples"] = totals.get("samples", 0.0) + len(part)
            bar.set_postfix(loss=f"{parts['loss']:.4f}")
        seconds += time.perf_counter() - started
        # Epoch means over all ranks' samples (the wrap-around padding counted as seen).
        totals = sum_across(totals, world, device)
        seen = totals.pop("samples", 0.0)
        record = {"epoch": float(epoch)}
        record.update({f"train_{k}": v / seen for k, v in totals.items()})
        if world.is_main and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            with ddim_steps(model, cfg.valid_ddim_steps):
                valid = evaluate(model, valid_samples, normalizer, device, cfg.eval_batch_size)
            record.update({f"valid_{k}": v for k, v in valid.items()})
            score = improvement(cfg.val_metric, valid[cfg.val_metric])
            if score > best_score:
                best_score, stale = score, 0
                best_state = copy.deepcopy(model.state_dict())
                result.best_epoch, result.best_valid = epoch, valid
            else:
                stale += cfg.eval_every
        result.epochs_run = epoch
        if world.is_main:
            result.history.append(record)
            if on_epoch is not None:
                on_epoch(record)
        stop = stale >= cfg.patience or (deadline is not None and time.perf_counter() > deadline)
        if broadcast_flag(stop, world, device):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds_per_epoch = seconds / max(result.epochs_run, 1)
    return result
