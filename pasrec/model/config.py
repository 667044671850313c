"""The one configuration object every network in ``pasrec/model/`` is built from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from pasrec.model.options import check_choices, option

ENCODERS = ("transformer", "gru")
ENCODER_INPUTS = ("item+time", "item")
ENCODER_LOSSES = ("all", "state", "user")
TIME_ENCODINGS = ("position", "sinusoidal", "gaussian", "rff")
TPP_INPUTS = ("state", "gaps")
TPP_TARGETS = ("next", "later_day")
TOI_HEADS = ("none", "tpp")
RECON_LOSSES = ("cosine", "l2")
DENOISERS = ("linear", "mlp")
SASREC_LOSSES = ("ce", "bce")
DIFFUSION_SLOTS = ("last", "every")
ARCHITECTURES = (
    "diffusion", "sasrec", "gru4rec", "popularity", "bert4rec", "tisasrec", "meantime", "diffurec"
)
# MEANTIME's temporal embeddings, one per attention head: absolute (position, day, constant)
# and relative (sinusoid, exponential and log1p kernels of the interval in days).
MEANTIME_KERNELS = ("pos", "day", "con", "sin", "exp", "log")


@dataclass
class ModelConfig:
    """Hyper-parameters; PASRec, "+TE", PreferDiff and DreamRec differ only here.

    The fields made with ``option`` are ``pasrec train`` options (their help is the option's);
    left unset there, each takes the ``--model`` preset's value.
    """

    architecture: str = "diffusion"
    n_items: int = 0
    history_length: int = 10
    hidden: int = option(256, help="hidden size d of item embeddings and the encoder")
    heads: int = option(2, help="attention heads per encoder block")
    blocks: int = option(1, help="encoder blocks")
    dropout: float = option(0.1, help="dropout rate of the encoder")
    time_encoding: str = option(
        "position", help="how timestamps enter the encoder", choices=TIME_ENCODINGS
    )
    gaussian_sigma: float = option(0.05, help="width of the gaussian time encoding")
    rff_sigma: float = option(1.0, help="scale of the random Fourier features time encoding")
    sinusoid_base: float = 10000.0
    toi: bool = False
    toi_head: str = option(
        "none",
        help="tpp: add the point-process head over the next gap (a log-normal mixture)",
        choices=TOI_HEADS,
    )
    tpp_components: int = 8
    # What the tpp head reads: "state" (the user state, the last time's encoding and the
    # history's gaps) or "gaps" (the gaps alone). Absolute-time features lie outside their
    # training range for every time after the training span (a deployed model's whole life),
    # where the gaps, being relative, keep their meaning.
    tpp_inputs: str = option(
        "state",
        help="what the tpp head reads: the user state, last time and gaps, or the gaps alone",
        choices=TPP_INPUTS,
    )
    # Which gaps the tpp head learns: "next" (to the next event, same day included) or
    # "later_day" (only targets after the last event's day: once a day's visit is over, the
    # gap a push is timed against; same-day returns are about half of Beauty's targets and
    # would otherwise spend the head on mass that no push can act on).
    tpp_target: str = option(
        "next",
        help="the gaps the tpp head learns: to the next event, or to the next later day",
        choices=TPP_TARGETS,
    )
    span_days: float = 1.0  # training day span: turns normalised times back into days
    gamma: float = option(
        0.8, help="ToI fusion: weight of the user state against the predicted ToI embedding"
    )
    eta: float = option(
        0.2, help="weight of the item loss against the ToI loss (1: the ToI module is untrained)"
    )
    lam: float = option(
        0.4, help="PreferDiff lambda: reconstruction loss against the in-batch BPR loss"
    )
    guidance: float = option(8.0, help="classifier-free guidance weight w of the DDIM sampler")
    bpr_scale: float = 5.0
    recon_loss: str = option("cosine", help="diffusion reconstruction loss", choices=RECON_LOSSES)
    # PreferDiff's loss (lam-weighted reconstruction + in-batch BPR) pulls the estimate towards
    # the target's direction, which is not what ranks by dot product; with a full-item
    # cross-entropy beside it (ce_weight) it may be weighed down or off (0).
    ioi_weight: float = option(
        1.0, help="weight of PreferDiff's loss on the denoiser (0: cross-entropy alone)"
    )
    # Weight of a softmax cross-entropy over every item on the denoised estimate (logits =
    # x0_hat . item table), added to the IoI loss. PreferDiff's objective sees one in-batch
    # centroid as its only negative; the full softmax ranks the target against all items, the
    # supervision the causal baselines get (0 = the paper's objective).
    ce_weight: float = option(
        0.0, help="weight of the full-item cross-entropy on the denoised estimate"
    )
    ce_temperature: float = option(1.0, help="the cross-entropy's logits are x0_hat . E / this")
    # Label smoothing of every full-item cross-entropy a model trains (the baselines' loss;
    # the diffusion models' terms on the state and on the estimate): the target keeps
    # 1 - this, the rest spread evenly over the items.
    label_smoothing: float = option(
        0.0, help="label smoothing of the full-item cross-entropies"
    )
    # The cross-entropy on the denoised estimate counts only at diffusion steps >= this share
    # of T. At low noise the estimate can copy the visible target out of x_t, and a softmax
    # over the items then rewards a table that is easy to copy (memorisation); from T/2 on
    # (alpha_bar < 0.01 with the default schedule) x_t no longer shows it.
    ce_step_floor: float = option(
        0.0, help="the cross-entropy on the denoised estimate counts from this share of T on"
    )
    # Weight of the same cross-entropy on the condition g'_u itself (logits = g'_u . item
    # table): the encoder learns as a classifier's does, whatever the denoiser still has to
    # learn, and the residual MLP denoiser starts every sample from that state.
    state_ce_weight: float = option(
        0.0, help="weight of the full-item cross-entropy on the condition g'_u"
    )
    # The diffusion models' sequence encoder: "transformer" (the paper's SASRec-style blocks)
    # or "gru" (GRU4Rec's recurrent layer, the stronger baseline on Beauty in this harness).
    encoder: str = option(
        "transformer",
        help="diffusion models' sequence encoder: SASRec-style blocks or a GRU",
        choices=ENCODERS,
    )
    # What the diffusion models' encoder reads at each slot: the item plus its time's
    # encoding (the paper), or the item alone, time then entering through the ToI module only.
    encoder_inputs: str = option(
        "item+time",
        help="diffusion models: the encoder reads each item with its time, or alone",
        choices=ENCODER_INPUTS,
    )
    # Which losses train the diffusion models' encoder: "all" (the paper: the denoiser's
    # losses reach it through the condition), "state" (only the condition's cross-entropy and
    # the ToI loss; the denoiser learns on a detached condition and cannot pull the encoder
    # away from ranking) or "user" (the cross-entropy moves from the condition g'_u to the
    # encoder's own state g_u, GRU4Rec's objective, and the fusion and denoiser learn on a
    # detached g_u and item table: the encoder and table train as GRU4Rec's do, the ToI loss
    # aside, and the fusion's MLP no longer sits between the encoder and its ranking loss).
    encoder_losses: str = option(
        "all",
        help="diffusion models: all losses train the encoder, those on g'_u, or a CE on g_u",
        choices=ENCODER_LOSSES,
    )
    # Standard deviation of the item table at initialisation; 0 = the architecture's own
    # (N(0, 1) for the diffusion models, the scale of their noise; d^-0.5 for the classifiers).
    item_init_std: float = option(
        0.0, help="std of the item table at initialisation (0: the model's own)"
    )
    p_uncond: float = option(
        0.1, help="share of training samples with the condition dropped (guidance)"
    )
    # Which encoder slots the diffusion losses train: "last" (PreferDiff: one target per
    # sample) or "every" (each history slot denoises the item that follows it, as SASRec's
    # cross-entropy trains every slot; the ToI loss then targets each next item's time).
    diffusion_slots: str = option(
        "last",
        help="diffusion models: train the last slot only (PreferDiff) or every slot (as SASRec)",
        choices=DIFFUSION_SLOTS,
    )
    denoiser: str = option(
        "linear",
        help="diffusion models: one linear layer (PreferDiff) or c + a two-layer MLP",
        choices=DENOISERS,
    )
    # Dropout on the denoiser's input [e_t ; c ; step] while training. The residual MLP's
    # correction of c learns on training users' states, which the encoder fits far better
    # than a new user's; dropping a share of c's features keeps it from learning corrections
    # that only those states support (the residual c itself is never dropped).
    denoiser_dropout: float = option(
        0.0, help="dropout on the denoiser's input [e_t ; c ; step] while training"
    )
    diffusion_steps: int = option(2000, help="forward diffusion steps T")
    beta_start: float = 1e-4
    beta_end: float = 0.02
    ddim_steps: int = option(100, help="DDIM sampling steps at test time")
    # DDIM walks [ddim_floor T, T) and returns its estimate at step ddim_floor T. With the
    # estimate's cross-entropy trained from ce_step_floor on, the steps below it have learned
    # only to reconstruct, and a chain through them ranks worse than its own condition.
    ddim_floor: float = option(
        0.0, help="DDIM stops at this share of T and returns its estimate there"
    )
    sasrec_loss: str = option(
        "ce", help="SASRec: full-softmax cross-entropy or one sampled negative",
        choices=SASREC_LOSSES,
    )
    mask_prob: float = 0.2  # BERT4Rec / MEANTIME cloze: share of items replaced by [mask]
    max_interval: int = 256  # TiSASRec: personalised intervals are clipped at k
    meantime_kernels: str = "pos,day,sin,log"  # one per head (MEANTIME's default mix)
    uncertainty: float = 0.001  # DiffuRec: lambda ~ N(this, this) scales x_t per item
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        check_choices(self)
        if self.toi and self.time_encoding == "position":
            raise ValueError("the ToI module needs a real-time encoding, not 'position'")
        if self.toi_head == "tpp" and not self.toi:
            raise ValueError("toi_head='tpp' needs the ToI module (toi=True)")
        if self.hidden % 2 or self.hidden % self.heads:
            raise ValueError("hidden must be even and divisible by heads")
        if self.architecture == "meantime":
            kernels = self.meantime_kernels.split(",")
            if any(k not in MEANTIME_KERNELS for k in kernels):
                raise ValueError(
                    f"meantime_kernels must be a comma list of {MEANTIME_KERNELS}, "
                    f"got {self.meantime_kernels!r}"
                )
            if len(kernels) != self.heads:
                raise ValueError(f"MEANTIME has one head per kernel: heads must be {len(kernels)}")
        if self.max_interval < 1:
            raise ValueError(f"max_interval must be >= 1, got {self.max_interval}")
        if self.ioi_weight == 0 and self.ce_weight == 0:
            raise ValueError("ioi_weight 0 needs ce_weight > 0: the denoiser would learn nothing")
        for name in ("ioi_weight", "ce_weight", "state_ce_weight", "item_init_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("ce_step_floor", "ddim_floor"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.ce_temperature <= 0:
            raise ValueError(f"ce_temperature must be > 0, got {self.ce_temperature}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.denoiser_dropout < 1.0:
            raise ValueError(f"denoiser_dropout must lie in [0, 1), got {self.denoiser_dropout}")
        for name in ("gamma", "eta", "lam", "p_uncond", "mask_prob"):
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
        # The product's PASRec (docs/results/beauty_cpu_default/): the paper's time encoding
        # and ToI module, with a GRU encoder that reads the items and trains on GRU4Rec's
        # cross-entropy (and the ToI loss), every slot trained, a residual MLP denoiser on the
        # detached state with a full-item cross-entropy on its noisy-step estimates and dropout
        # on its input; both cross-entropies label-smoothed; its table at the classifiers'
        # scale; a light fusion; DDIM over the noisy half, unguided.
        "pasrec": {"time_encoding": "rff", "toi": True, "encoder": "gru",
                   "encoder_inputs": "item", "encoder_losses": "user", "gamma": 0.2,
                   "diffusion_slots": "every", "denoiser": "mlp", "ce_weight": 1.0,
                   "ce_step_floor": 0.5, "state_ce_weight": 1.0, "label_smoothing": 0.2,
                   "denoiser_dropout": 0.5, "item_init_std": 0.0625, "guidance": 0.0,
                   "ddim_floor": 0.5, "ddim_steps": 10},
        # The paper's configuration, which `pasrec reproduce` compares with the paper's rows.
        "pasrec-paper": {"time_encoding": "rff", "toi": True},
        "pasrec-te": {"time_encoding": "rff", "toi": False},
        "preferdiff": {"time_encoding": "position", "toi": False},
        "dreamrec": {"time_encoding": "position", "toi": False, "lam": 1.0, "recon_loss": "l2"},
        "sasrec": {"architecture": "sasrec", "time_encoding": "position"},
        "gru4rec": {"architecture": "gru4rec", "time_encoding": "position"},
        "popularity": {"architecture": "popularity", "time_encoding": "position"},
        # Block and head counts from each baseline's paper / official code.
        "bert4rec": {"architecture": "bert4rec", "time_encoding": "position", "blocks": 2},
        "tisasrec": {"architecture": "tisasrec", "time_encoding": "position", "blocks": 2},
        "meantime": {"architecture": "meantime", "time_encoding": "position", "blocks": 2,
                     "heads": 4},
        # DiffuRec's "truncated linear" schedule over T=32 steps: betas from
        # 1000/T * 1e-4 + 0.01 to 1000/T * 0.02 + 0.01; the sampler walks all 32 steps.
        "diffurec": {"architecture": "diffurec", "time_encoding": "position", "blocks": 4,
                     "heads": 4, "diffusion_steps": 32, "beta_start": 0.013125,
                     "beta_end": 0.635, "ddim_steps": 32},
    }
    if name not in presets:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(presets)}")
    values = {**presets[name], **{k: v for k, v in overrides.items() if v is not None}}
    return ModelConfig(**values)


# What makes ``pasrec`` differ from the paper's PASRec beyond its encodings: its objective,
# the sampling that suits it, and the encoder, denoiser and table scale it trains with.
OBJECTIVE_FIELDS = (
    "encoder", "encoder_inputs", "encoder_losses",
    "ioi_weight", "ce_weight", "ce_temperature", "ce_step_floor", "state_ce_weight",
    "label_smoothing", "item_init_std", "denoiser", "denoiser_dropout",
    "diffusion_slots", "guidance", "ddim_floor", "ddim_steps",
)


def product_objective() -> dict[str, Any]:
    """``pasrec``'s objective, to give another diffusion preset (an ablation row)."""
    product = preset("pasrec")
    return {name: getattr(product, name) for name in OBJECTIVE_FIELDS}


MODEL_NAMES = (
    "pasrec", "pasrec-paper", "pasrec-te", "preferdiff", "dreamrec", "sasrec",
    "gru4rec", "popularity", "bert4rec", "tisasrec", "meantime", "diffurec",
)
