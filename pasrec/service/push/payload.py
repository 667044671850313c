"""The body of a push, generated when it goes out: the top-K for its due time from the user's
latest history, excluding what they have seen (popularity when the model knows none of it)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pasrec.service.history import HistoryStore
from pasrec.service.inference import InferenceEngine
from pasrec.service.push.store import Claimed


class PayloadBuilder:
    def __init__(self, inference: InferenceEngine, history: HistoryStore, k: int) -> None:
        self._inference = inference
        self._history = history
        self._k = k

    def build(self, push_id: str, claimed: Claimed, when: datetime) -> dict[str, Any] | None:
        """The webhook body, or None when the user has no stored event. Raises
        `ModelNotLoaded` while no checkpoint is loaded."""
        predictor = self._inference.current.predictor
        history = self._history.get(claimed.user_id, predictor.history_length)
        if history is None:
            return None
        exclude = set(history.seen)
        fallback = None
        if any(predictor.known(e.item_id) for e in history.events):
            scored = self._inference.score(
                history.pairs(), self._k, at=claimed.due_at.timestamp(), exclude=exclude
            )
            items, version = scored.items, scored.model_version
        else:
            items, version = predictor.popular(self._k, exclude=exclude), predictor.version
            fallback = "popularity"
        return {
            "type": "recommendations.push",
            "timestamp": when.isoformat(),
            "data": {
                "push_id": push_id,
                "user_id": claimed.user_id,
                "items": [{"item_id": item, "score": score} for item, score in items],
                "fallback": fallback,
                "predicted_at": _iso(claimed.predicted_at),
                "scheduled_for": claimed.due_at.isoformat(),
                "model_version": version,
                "generated_at": when.isoformat(),
            },
        }


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(payload, separators=(",", ":")).encode()


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
