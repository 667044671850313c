"""Turn a predicted ToI embedding into a calendar day (SPEC section 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pasrec.model.time_encoding import TimeEncoding
from pasrec.model.time_norm import TimeNormalizer


@torch.no_grad()
def decode_toi_days(
    predicted: torch.Tensor,
    last_days: torch.Tensor,
    encoding: TimeEncoding,
    normalizer: TimeNormalizer,
    horizon_days: int = 365,
) -> torch.Tensor:
    """argmax over days last_day + {0..H} of cos(TE(norm(day)), tau_hat); returns absolute days."""
    offsets = torch.arange(horizon_days + 1, device=predicted.device)
    candidates = last_days.unsqueeze(-1).to(predicted.device) + offsets  # [B, H+1]
    normalised = (candidates.double() - normalizer.origin_day) / normalizer.span_days
    encoded = encoding(normalised.float()).double()  # [B, H+1, d]
    # Neighbouring days differ in the last digits, and gaussian encodings beyond the training
    # range are tiny: normalise in float64 with no norm floor so such days stay apart.
    candidates_unit = F.normalize(encoded, dim=-1, eps=1e-300)
    target_unit = F.normalize(predicted.double(), dim=-1, eps=1e-300).unsqueeze(-1)
    similarity = (candidates_unit @ target_unit).squeeze(-1)
    return candidates.gather(1, similarity.argmax(dim=1, keepdim=True)).squeeze(1)
