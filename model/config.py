"""The one configuration object every network in ``model/`` is built from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

TIME_ENCODINGS = ("position", "sinusoidal", "gaussian", "rff")
ARCHITECTURES = ("diffusion", "sasrec", "gru4rec", "popularity")


@dataclass
class ModelConfig:
    """Hyper-parameters; PASRec, "+TE", PreferDiff and DreamRec differ only here."""

    architecture: str = "diffusion"
    n_items: int = 0
    history_length: int = 10
    hidden: int = 256
    heads: int = 2
    blocks: int = 1
    dropout: float = 0.1
    time_encoding: str = "position"
    gaussian_sigma: float = 0.05
    rff_sigma: float = 1.0
    sinusoid_base: float = 10000.0
    toi: bool = False
    toi_head: str = "none"  # "none" or "tpp" (log-normal mixture over the gap)
    tpp_components: int = 8
    span_days: float = 1.0  # training day span: turns normalised times back into days
    gamma: float = 0.8
    eta: float = 0.2
    lam: float = 0.4
    guidance: float = 8.0
    bpr_scale: float = 5.0
    recon_loss: str = "cosine"
    p_uncond: float = 0.1
    diffusion_steps: int = 2000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    ddim_steps: int = 100
    sasrec_loss: str = "ce"  # "ce" (full softmax) or "bce" (one sampled negative)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        if self.time_encoding not in TIME_ENCODINGS:
            raise ValueError(
                f"time_encoding must be one of {TIME_ENCODINGS}, got {self.time_encoding!r}"
            )
        if self.toi and self.time_encoding == "position":
            raise ValueError("the ToI module needs a real-time encoding, not 'position'")
        if self.toi_head not in ("none", "tpp"):
            raise ValueError(f"toi_head must be 'none' or 'tpp', got {self.toi_head!r}")
        if self.toi_head == "tpp" and not self.toi:
            raise ValueError("toi_head='tpp' needs the ToI module (toi=True)")
        if self.recon_loss not in ("cosine", "l2"):
            raise ValueError(f"recon_loss must be 'cosine' or 'l2', got {self.recon_loss!r}")
        if self.sasrec_loss not in ("ce", "bce"):
            raise ValueError(f"sasrec_loss must be 'ce' or 'bce', got {self.sasrec_loss!r}")
        if self.hidden % 2 or self.hidden % self.heads:
            raise ValueError("hidden must be even and divisible by heads")
        for name in ("gamma", "eta", "lam", "p_uncond"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The named methods of the paper as configurations of the shared parts."""
    presets: dict[str, dict[str, Any]] = {
        "pasrec": {"time_encoding": "rff", "toi": True},
        "pasrec-te": {"time_encoding": "rff", "toi": False},
        "preferdiff": {"time_encoding": "position", "toi": False},
        "dreamrec": {"time_encoding": "position", "toi": False, "lam": 1.0, "recon_loss": "l2"},
        "sasrec": {"architecture": "sasrec", "time_encoding": "position"},
        "gru4rec": {"architecture": "gru4rec", "time_encoding": "position"},
        "popularity": {"architecture": "popularity", "time_encoding": "position"},
    }
    if name not in presets:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(presets)}")
    values = {**presets[name], **{k: v for k, v in overrides.items() if v is not None}}
    return ModelConfig(**values)


MODEL_NAMES = ("pasrec", "pasrec-te", "preferdiff", "dreamrec", "sasrec", "gru4rec", "popularity")
