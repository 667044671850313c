"""The inference engine: one loaded checkpoint, micro-batched model calls, hot reload.

Request threads submit jobs and wait on a future; a single batching thread gathers the jobs
that arrive within `batch_wait_ms` (up to `max_inference_batch`) and answers them with one
model call, which keeps the GPU (or the CPU's vector units) busy with a real batch. Reloading
builds the new predictor beside the old one and swaps a reference, so requests already
batched finish on the old model and none is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from pasrec.model.predictor import AnyPredictor, NextTime, PairedPredictor, Predictor
from pasrec.service.metrics import Metrics
from pasrec.service.span_watch import SpanWatch

log = logging.getLogger(__name__)

History = list[tuple[str, float]]

_NOT_LOADED = (
    "no model is loaded: set PASREC_MODEL_PATH, or load one with POST /v1/admin/model/reload"
)


class ModelNotLoaded(RuntimeError):
    """No checkpoint is loaded yet."""


@dataclass(frozen=True)
class LoadedModel:
    predictor: AnyPredictor
    path: Path
    toi_path: Path | None = None
    # Per model: a reload to a checkpoint trained on recent events clears the warning.
    span_watch: SpanWatch = field(default_factory=lambda: SpanWatch(()))


@dataclass(frozen=True)
class Scored:
    items: list[tuple[str, float]]
    next_time: NextTime | None
    model_version: str


@dataclass
class _Job:
    history: History
    k: int
    at: float | None
    exclude: set[str]
    want_items: bool
    future: Future[Scored] = field(default_factory=Future)


class InferenceEngine:
    def __init__(
        self,
        device: str,
        batch_wait_ms: float,
        max_batch: int,
        metrics: Metrics,
        window_days: float = 7.0,
    ) -> None:
        self._device = device
        self._window_days = window_days
        self._wait_s = batch_wait_ms / 1000.0
        self._max_batch = max_batch
        self._metrics = metrics
        self._current: LoadedModel | None = None
        self._reload_lock = threading.Lock()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="inference-batcher", daemon=True)
        self._thread.start()

    @property
    def current(self) -> LoadedModel:
        loaded = self._current
        if loaded is None:
            raise ModelNotLoaded(_NOT_LOADED)
        return loaded

    @property
    def ready(self) -> bool:
        return self._current is not None

    def load(
        self, path: Path, toi_path: Path | None = None
    ) -> tuple[LoadedModel, LoadedModel | None]:
        """Load `path` (its next times from `toi_path` when given) and swap it in; returns
        (new, previous). Failures keep the old model."""
        with self._reload_lock:
            started = time.perf_counter()
            predictor: AnyPredictor = Predictor.load(
                path, self._device, window_days=self._window_days
            )
            if toi_path is not None:
                timing = Predictor.load(toi_path, self._device, window_days=self._window_days)
                predictor = PairedPredictor(predictor, timing)
            # One call before the swap: it pays the first-call cost (lazy kernels, allocator)
            # off the request path, and a checkpoint that loads but cannot infer is refused.
            probe = [[(predictor.items[0], time.time())]] if predictor.items else [[]]
            predictor.recommend(probe, k=1)
            predictor.predict_next_time(probe)
            loaded = LoadedModel(predictor, path, toi_path, SpanWatch(predictor.training_spans))
            previous, self._current = self._current, loaded
        log.info(
            "serving %s (%s, %d items, history %d, toi=%s, tpp=%s) from %s%s on %s in %.1fs",
            predictor.version,
            predictor.model_name,
            len(predictor.items),
            predictor.history_length,
            predictor.has_toi,
            predictor.has_tpp,
            path,
            "" if toi_path is None else f" with next times from {toi_path}",
            predictor.device,
            time.perf_counter() - started,
        )
        self._metrics.set_model(predictor.version, predictor.model_name)
        return loaded, previous

    def score(
        self,
        history: History,
        k: int,
        at: float | None = None,
        exclude: set[str] | None = None,
        want_items: bool = True,
        timeout_s: float = 30.0,
    ) -> Scored:
        """Top-`k` items (when `want_items`) and the predicted next time for one history."""
        if self._current is None:
            raise ModelNotLoaded(_NOT_LOADED)
        job = _Job(history, k, at, exclude or set(), want_items)
        self._jobs.put(job)
        return job.future.result(timeout=timeout_s)

    def next_times(self, histories: list[History], timeout_s: float = 30.0) -> list[Scored]:
        """Predicted next times of many histories, queued together so they share batches."""
        if self._current is None:
            raise ModelNotLoaded(_NOT_LOADED)
        jobs = [_Job(history, 1, None, set(), False) for history in histories]
        for job in jobs:
            self._jobs.put(job)
        return [job.future.result(timeout=timeout_s) for job in jobs]

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self._wait_s
            while len(batch) < self._max_batch:
                remaining = max(deadline - time.monotonic(), 0.0)
                try:
                    job = self._jobs.get(timeout=remaining)
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)
                    break
                batch.append(job)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        loaded = self._current
        if loaded is None:
            for job in batch:
                job.future.set_exception(ModelNotLoaded(_NOT_LOADED))
            return
        predictor = loaded.predictor
        started = time.perf_counter()
        try:
            histories = [job.history for job in batch]
            loaded.span_watch.observe(h[-1][1] for h in histories if h)
            times = predictor.predict_next_time(histories)
            with_items = [i for i, job in enumerate(batch) if job.want_items]
            ranked: dict[int, list[tuple[str, float]]] = {}
            if with_items:
                results = predictor.recommend(
                    [batch[i].history for i in with_items],
                    k=max(batch[i].k for i in with_items),
                    at=[batch[i].at for i in with_items],
                    exclude=[batch[i].exclude for i in with_items],
                )
                ranked = dict(zip(with_items, results, strict=True))
        except Exception as exc:  # noqa: BLE001 - every waiting request must get an answer
            log.exception("inference failed for a batch of %d", len(batch))
            for job in batch:
                job.future.set_exception(exc)
            return
        self._metrics.observe_inference(time.perf_counter() - started, len(batch))
        for i, job in enumerate(batch):
            items = ranked.get(i, [])[: job.k]
            job.future.set_result(Scored(items, times[i], predictor.version))
