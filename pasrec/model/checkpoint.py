"""One versioned checkpoint directory: safetensors weights plus JSON for everything else.

Layout: ``config.json`` (format version, model config, what was fitted after training beside
the weights, name, weights digest), ``vocab.json``
(raw item ids and training counts), ``time.json`` (the time normaliser), ``weights.safetensors``
and ``manifest.json`` (the SHA-256 of each of those four). Loading checks every file against
the manifest, and the version is derived from all four digests, so no file can change
without the version changing too. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pasrec.model.config import ModelConfig
from pasrec.model.interfaces import Recommender
from pasrec.model.registry import build_model
from pasrec.model.time_norm import TimeNormalizer

# 2: the model config may carry `tpp_calibration` (version-1 checkpoints load without one).
# 3: manifest.json holds the digest of every file (older checkpoints: of the weights only).
# 4: fitted state (the tpp calibration) sits in "fitted", beside the model config, not in it.
FORMAT_VERSION = 4
WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"
FILES = ("config.json", "vocab.json", "time.json", WEIGHTS)


class CheckpointError(ValueError):
    """A checkpoint that cannot be served: missing, tampered, or from a newer format."""


@dataclass
class Checkpoint:
    model: Recommender
    config: ModelConfig
    name: str
    item_vocab: list[str]
    item_counts: list[int]
    time: TimeNormalizer
    extra: dict[str, Any]
    digest: str
    """SHA-256 over the digests of every file (`files_digest`), not of the weights alone."""

    @property
    def version(self) -> str:
        return f"{self.name}-{self.digest[:12]}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_digest(digests: dict[str, str]) -> str:
    """One digest standing for every file: an edit to any of them changes it."""
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()


def save_checkpoint(
    directory: str | Path,
    model: Recommender,
    config: ModelConfig,
    name: str,
    item_vocab: list[str],
    item_counts: list[int],
    time: TimeNormalizer,
    extra: dict[str, Any] | None = None,
) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Tied or expanded tensors must be materialised contiguous for safetensors.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, directory / WEIGHTS)
    meta = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "model": config.to_dict(),
        "fitted": model.fitted_state(),
        "weights_sha256": _digest(directory / WEIGHTS),
        "extra": extra or {},
    }
    (directory / "config.json").write_text(json.dumps(meta, indent=2))
    (directory / "vocab.json").write_text(json.dumps({"items": item_vocab, "counts": item_counts}))
    (directory / "time.json").write_text(json.dumps(time.to_dict()))
    digests = {name: _digest(directory / name) for name in FILES}
    (directory / MANIFEST).write_text(json.dumps({"sha256": digests}, indent=2))
    return directory


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    meta = _read_json(directory / "config.json")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{directory}/config.json has no integer format_version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {directory} has format version {version}, newer than this release "
            f"reads ({FORMAT_VERSION}); upgrade pasrec-push to load it"
        )
    weights = directory / WEIGHTS
    digests = _verified_digests(directory, meta, version)
    try:
        model_meta = dict(meta["model"])
        # Before format 4 the tpp calibration was kept in the model config.
        fitted = meta.get("fitted") or {"tpp_calibration": model_meta.pop("tpp_calibration", [])}
        if not isinstance(fitted, dict):
            raise TypeError(f"fitted state must be an object, got {type(fitted).__name__}")
        config = ModelConfig.from_dict(model_meta)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{directory}/config.json has an invalid model config: {err}"
        ) from err
    vocab = _read_json(directory / "vocab.json")
    time_meta = _read_json(directory / "time.json")
    items, counts = vocab.get("items"), vocab.get("counts")
    if not isinstance(items, list) or len(items) != config.n_items or len(counts) != len(items):
        raise CheckpointError(f"{directory}/vocab.json does not list {config.n_items} items")
    model = build_model(config)
    try:
        model.load_state_dict(load_file(weights))
    except RuntimeError as err:
        raise CheckpointError(f"{weights} does not fit the model config: {err}") from err
    try:
        model.load_fitted_state({k: v for k, v in fitted.items() if v})
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{directory}/config.json has invalid fitted state: {err}") from err
    model.to(device).eval()
    return Checkpoint(
        model=model,
        config=config,
        name=str(meta.get("name", config.architecture)),
        item_vocab=[str(i) for i in items],
        item_counts=[int(c) for c in counts],
        time=TimeNormalizer(int(time_meta["origin_day"]), int(time_meta["span_days"])),
        extra=meta.get("extra", {}),
        digest=files_digest(digests),
    )


def _verified_digests(directory: Path, meta: dict[str, Any], version: int) -> dict[str, str]:
    """Every file's SHA-256, checked against manifest.json; a checkpoint older than format 3
    without one has only its weights checked, against config.json."""
    for name in FILES:
        if not (directory / name).is_file():
            raise CheckpointError(f"checkpoint file missing: {directory / name}")
    digests = {name: _digest(directory / name) for name in FILES}
    manifest = directory / MANIFEST
    if version >= 3 or manifest.exists():
        source, expected = MANIFEST, _read_json(manifest).get("sha256")
        if not isinstance(expected, dict) or set(expected) != set(FILES):
            raise CheckpointError(f"{manifest} must list the digest of {', '.join(FILES)}")
    else:
        source, expected = "config.json", {WEIGHTS: meta.get("weights_sha256")}
    for name, wanted in expected.items():
        if digests[name] != wanted:
            raise CheckpointError(
                f"{directory / name} does not match its digest in {source}: "
                "the checkpoint was modified"
            )
    return digests
