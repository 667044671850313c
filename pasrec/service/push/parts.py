"""What push code takes from a running service, named part by part.

`ServiceContext` fits this protocol, and so does anything else offering these parts, so the
push package never imports the service's context. The entry points (`Dispatcher`,
`PushPlanner`, `DispatchLoop`) receive it and hand each piece below them only what it uses:
the `PushSettings` part of the settings and the one or two services it calls.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine

from pasrec.service.clock import Clock
from pasrec.service.history import HistoryStore
from pasrec.service.inference import InferenceEngine
from pasrec.service.metrics import Metrics
from pasrec.service.settings import Settings


class PushParts(Protocol):
    @property
    def settings(self) -> Settings:
        """Whole, only because the rate limiter shares the service's Redis; everything
        else in the push package reads its `PushSettings` part."""

    @property
    def engine(self) -> Engine: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def inference(self) -> InferenceEngine: ...

    @property
    def history(self) -> HistoryStore: ...

    def history_length(self) -> int:
        """Events per user the loaded model reads (a default while none is loaded)."""
