"""The recommenders built from the shared parts, behind the contract of ``interfaces``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pasrec.model.config import ModelConfig
from pasrec.model.diffusion import Denoiser, GaussianDiffusion
from pasrec.model.encoder import CausalTransformer, GRUEncoder
from pasrec.model.interfaces import Batch, Recommender
from pasrec.model.losses import in_batch_negative_centroid, ioi_loss, reconstruction_error, toi_loss
from pasrec.model.time_encoding import TimeEncoding
from pasrec.model.time_norm import TimeNormalizer
from pasrec.model.toi import Fusion, ToIModule
from pasrec.model.toi_decode import decode_toi_days
from pasrec.model.tpp import GapDistribution, LogNormalMixtureHead


def mask_padding_column(scores: torch.Tensor) -> torch.Tensor:
    scores[:, 0] = float("-inf")
    return scores


def next_item_loss(
    states: torch.Tensor,
    targets: torch.Tensor,
    table: nn.Embedding,
    kind: str,
    temperature: float = 1.0,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Loss of states [N, d] predicting items [N] by dot product with the item table.

    ``ce``: softmax over every item (logits divided by ``temperature``, the target's share of
    the label ``1 - smoothing``); ``bce``: one uniformly sampled negative (SASRec's original).
    """
    if kind == "ce":
        return full_softmax_loss(states, targets, table.weight, temperature, smoothing)
    negatives = torch.randint(1, table.num_embeddings, targets.shape, device=targets.device)
    pos = (states * table(targets)).sum(-1)
    neg = (states * table(negatives)).sum(-1)
    return F.softplus(-pos).mean() + F.softplus(neg).mean()


def full_softmax_loss(
    states: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor,
    temperature: float = 1.0,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Softmax cross-entropy of states [N, d] over every item row of ``weight`` but padding;
    ``smoothing`` spreads that share of each label evenly over the real items."""
    # Row 0 (padding) is left out of the softmax, so the smoothed label never reaches it.
    logits = states @ weight[1:].T / temperature
    return F.cross_entropy(logits, targets - 1, label_smoothing=smoothing)


def every_slot_loss(
    states: torch.Tensor, batch: Batch, table: nn.Embedding, kind: str, smoothing: float = 0.0
) -> torch.Tensor:
    """Causal next-item training: each history slot predicts the following history item, the
    last slot the sample's target; padded slots are skipped."""
    items = batch["items"]
    targets = torch.cat((items[:, 1:], batch["target"].unsqueeze(1)), dim=1)
    valid = items != 0
    return next_item_loss(states[valid], targets[valid], table, kind, smoothing=smoothing)


class EmbeddingRecommender(Recommender):
    """A recommender over a learned item table, with (unless it brings its own temporal
    embeddings) the shared time encoding."""

    def __init__(
        self, config: ModelConfig, item_init_std: float, time_encoding: bool = True
    ) -> None:
        super().__init__(config)
        self.items = nn.Embedding(config.n_items + 1, config.hidden, padding_idx=0)
        item_init_std = config.item_init_std or item_init_std
        nn.init.normal_(self.items.weight, 0.0, item_init_std)
        with torch.no_grad():
            self.items.weight[0].zero_()
        # Baselines with their own temporal embeddings (TiSASRec, MEANTIME, BERT4Rec) go without.
        if time_encoding:
            self.time_encoding = TimeEncoding(config, position_std=item_init_std)

    def sequence_inputs(self, batch: Batch) -> torch.Tensor:
        return self.items(batch["items"]) + self.time_encoding(batch["times"])


class DiffusionRecommender(EmbeddingRecommender):
    """PASRec; with ``toi=False`` "+TE"; with ``position`` encoding PreferDiff; DreamRec by loss."""

    def __init__(self, config: ModelConfig) -> None:
        # PreferDiff draws item embeddings from N(0, 1), the scale of the diffusion noise.
        super().__init__(config, item_init_std=1.0)
        self.encoder = (
            GRUEncoder(config) if config.encoder == "gru" else CausalTransformer(config)
        )
        self.denoiser = Denoiser(config)
        self.diffusion = GaussianDiffusion(config)
        if config.toi:
            self.toi_module = ToIModule(config)
            self.fusion = Fusion(config)
        if config.toi_head == "tpp":
            self.tpp = LogNormalMixtureHead(config)

    @property
    def has_toi(self) -> bool:
        return self.config.toi

    def sequence_inputs(self, batch: Batch) -> torch.Tensor:
        if self.config.encoder_inputs == "item":
            return self.items(batch["items"])
        return super().sequence_inputs(batch)

    def user_state(self, batch: Batch) -> torch.Tensor:
        return self.encoder.last(batch["items"], self.sequence_inputs(batch))

    def toi_from_state(self, user: torch.Tensor, last_times: torch.Tensor) -> torch.Tensor:
        """tau_hat from user states [N, d] and the times [N] of their latest visits."""
        return self.toi_module(user, self.time_encoding(last_times.unsqueeze(-1)).squeeze(1))

    def predict_toi(self, batch: Batch) -> torch.Tensor | None:
        if not self.config.toi:
            return None
        return self.toi_from_state(self.user_state(batch), batch["times"][:, -1])

    def condition(
        self,
        user: torch.Tensor,
        last_times: torch.Tensor,
        at: torch.Tensor | None,
        fuse_detached: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """g'_u and tau_hat; ``at`` (normalised, NaN = use the prediction) overrides the ToI.
        ``fuse_detached``: g'_u is built from a detached g_u, while tau_hat still trains it."""
        fused_from = user.detach() if fuse_detached else user
        if not self.config.toi:
            return fused_from, None
        predicted = self.toi_from_state(user, last_times)
        # The fusion sees tau_hat without its gradient: the ToI module learns only from L_ToI,
        # so eta weighs the two objectives cleanly (eta=1 leaves M_phi untouched).
        toi_encoding = predicted.detach()
        if at is not None:
            given = self.time_encoding(at.unsqueeze(-1).nan_to_num(0.0)).squeeze(1)
            use_given = (~at.isnan()).unsqueeze(-1)
            toi_encoding = torch.where(use_given, given, toi_encoding)
        return self.fusion(fused_from, toi_encoding), predicted

    def training_rows(
        self, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(user states [N, d], their latest visit times, target items, target times, the
        last slot's state [B, d]): one row per sample, or one per non-padded slot."""
        if self.config.diffusion_slots == "last":
            user = self.user_state(batch)
            return user, batch["times"][:, -1], batch["target"], batch["target_time"], user
        items, times = batch["items"], batch["times"]
        states = self.encoder(items, self.sequence_inputs(batch))
        valid = items != 0
        targets = torch.cat((items[:, 1:], batch["target"].unsqueeze(1)), dim=1)
        target_times = torch.cat((times[:, 1:], batch["target_time"].unsqueeze(1)), dim=1)
        return states[valid], times[valid], targets[valid], target_times[valid], states[:, -1]

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        user, last_times, targets, target_times, last_user = self.training_rows(batch)
        detach_user = cfg.encoder_losses == "user"
        cond, predicted = self.condition(user, last_times, None, fuse_detached=detach_user)
        state_ce = (
            next_item_loss(user if detach_user else cond, targets, self.items, "ce",
                           cfg.ce_temperature, cfg.label_smoothing)
            if cfg.state_ce_weight
            else None
        )  # fmt: skip
        if cfg.encoder_losses == "state":
            cond = cond.detach()
        drop = torch.rand(cond.shape[0], 1, device=cond.device) < cfg.p_uncond
        cond = torch.where(drop, self.denoiser.null_like(cond), cond)

        # With "user" losses the item table, like g_u, is GRU4Rec's: the denoiser reads it.
        table = self.items.weight.detach() if detach_user else self.items.weight
        positive = F.embedding(targets, table)
        steps = self.diffusion.sample_steps(positive.shape[0], positive.device)
        noise = torch.randn_like(positive)
        pos_pred = self.denoiser(self.diffusion.q_sample(positive, steps, noise), steps, cond)
        l_ioi = pos_pred.new_zeros(())
        parts: dict[str, float] = {}
        if cfg.ioi_weight:
            negative = in_batch_negative_centroid(targets, positive)
            neg_pred = self.denoiser(self.diffusion.q_sample(negative, steps, noise), steps, cond)
            pos_err = reconstruction_error(pos_pred, positive, cfg.recon_loss)
            neg_err = reconstruction_error(neg_pred, negative, cfg.recon_loss)
            preferdiff = ioi_loss(pos_err, neg_err, cfg.lam, cfg.bpr_scale)
            parts["ioi"] = float(preferdiff.detach())
            l_ioi = cfg.ioi_weight * preferdiff
        noisy = steps >= cfg.ce_step_floor * cfg.diffusion_steps
        if cfg.ce_weight and noisy.any():
            l_ce = full_softmax_loss(
                pos_pred[noisy], targets[noisy], table, cfg.ce_temperature, cfg.label_smoothing
            )
            l_ioi = l_ioi + cfg.ce_weight * l_ce
            parts["ce"] = float(l_ce.detach())
        if state_ce is not None:
            l_ioi = l_ioi + cfg.state_ce_weight * state_ce
            parts["state_ce"] = float(state_ce.detach())
        if predicted is None:
            return l_ioi, parts
        true_encoding = self.time_encoding(target_times.unsqueeze(-1)).squeeze(1)
        l_toi = toi_loss(predicted, true_encoding)
        total = cfg.eta * l_ioi + (1 - cfg.eta) * l_toi
        parts["toi"] = float(l_toi.detach())
        if cfg.toi_head == "tpp":
            l_tpp = self.tpp.nll(last_user, batch, self.time_encoding)
            total = total + l_tpp
            parts["tpp_nll"] = float(l_tpp.detach())
        return total, parts

    def encode_times(self, times: torch.Tensor) -> torch.Tensor:
        return self.time_encoding(times.unsqueeze(-1)).squeeze(1)

    def decode_toi_days(
        self,
        predicted: torch.Tensor,
        last_days: torch.Tensor,
        normalizer: TimeNormalizer,
        horizon_days: int,
    ) -> torch.Tensor:
        return decode_toi_days(predicted, last_days, self.time_encoding, normalizer, horizon_days)

    @property
    def has_gap_head(self) -> bool:
        return self.config.toi_head == "tpp"

    @property
    def gap_reads_state(self) -> bool:
        return self.has_gap_head and self.tpp.reads_state

    def _gap_head(self) -> LogNormalMixtureHead:
        if not self.has_gap_head:
            raise ValueError("this model has no tpp head (toi_head='tpp' builds one)")
        return self.tpp

    def _gap_user(self, batch: Batch) -> torch.Tensor | None:
        return self.user_state(batch) if self._gap_head().reads_state else None

    @torch.no_grad()
    def gap_distribution(self, batch: Batch) -> GapDistribution | None:
        if not self.has_gap_head:
            return None
        return self.tpp.features(self._gap_user(batch), batch, self.time_encoding)

    def gap_nll(self, batch: Batch) -> torch.Tensor:
        return self.tpp.nll(self._gap_user(batch), batch, self.time_encoding)

    def set_gap_calibration(self, levels: list[float]) -> None:
        self._gap_head().set_calibration(levels)

    def fitted_state(self) -> dict[str, Any]:
        if self.has_gap_head and self.tpp.calibration:
            return {"tpp_calibration": list(self.tpp.calibration)}
        return {}

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        rest = dict(state)
        levels = rest.pop("tpp_calibration", [])
        super().load_fitted_state(rest)
        if levels:
            self.set_gap_calibration(levels)

    @torch.no_grad()
    def generate(self, batch: Batch, at: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        """The DDIM-denoised target embedding x_0 for each history."""
        cond, _ = self.condition(self.user_state(batch), batch["times"][:, -1], at)
        cfg = self.config
        return self.diffusion.ddim(
            self.denoiser, cond, cfg.guidance, cfg.ddim_steps, seed, cfg.ddim_floor
        )

    @torch.no_grad()
    def score(self, batch: Batch, at: torch.Tensor | None = None) -> torch.Tensor:
        x0 = self.generate(batch, at)
        return mask_padding_column(x0 @ self.items.weight.T)


class NextItemModel(EmbeddingRecommender):
    """Causal next-item models: every slot's state predicts the following item through the
    shared item table; the last slot's state ranks the items. Subclasses give ``states``."""

    def states(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        loss = every_slot_loss(
            self.states(batch), batch, self.items, cfg.sasrec_loss, cfg.label_smoothing
        )
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def score(self, batch: Batch, at: torch.Tensor | None = None) -> torch.Tensor:
        return mask_padding_column(self.states(batch)[:, -1] @ self.items.weight.T)


class SequentialClassifier(NextItemModel):
    """SASRec / GRU4Rec."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, item_init_std=config.hidden**-0.5)
        self.encoder = (
            CausalTransformer(config) if config.architecture == "sasrec" else GRUEncoder(config)
        )

    def states(self, batch: Batch) -> torch.Tensor:
        inputs = self.items(batch["items"])
        if self.config.architecture == "sasrec":
            inputs = inputs + self.time_encoding(batch["times"])
        return self.encoder(batch["items"], inputs)


class Popularity(Recommender):
    """Scores every item by its count in the training targets."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.register_buffer("counts", torch.zeros(config.n_items + 1))

    def fit_statistics(self, train_targets: torch.Tensor) -> None:
        self.counts.zero_()
        self.counts.index_add_(
            0, train_targets, torch.ones_like(train_targets, dtype=self.counts.dtype)
        )

    @torch.no_grad()
    def score(self, batch: Batch, at: torch.Tensor | None = None) -> torch.Tensor:
        return mask_padding_column(self.counts.unsqueeze(0).repeat(batch["items"].shape[0], 1))
