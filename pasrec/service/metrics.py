"""Prometheus metrics of one app instance (its own registry, so several apps can coexist)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pasrec_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pasrec_http_request_seconds",
            "HTTP request latency by route template.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "pasrec_events",
            "Ingested events by outcome (accepted, duplicate, unknown_item).",
            ["outcome"],
            registry=self.registry,
        )
        self.inference_latency = Histogram(
            "pasrec_inference_seconds",
            "Latency of one batched model call.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference_batch = Histogram(
            "pasrec_inference_batch_size",
            "Requests answered per model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "pasrec_recommend_fallbacks",
            "Recommendations answered by the popularity fallback, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "pasrec_model_info",
            "The checkpoint served (value 1 for the current version).",
            ["version", "model"],
            registry=self.registry,
        )

        self.push_scheduled = Counter(
            "pasrec_push_scheduled",
            "Pushes scheduled or rescheduled after new events.",
            registry=self.registry,
        )
        self.push_planning_lag = Histogram(
            "pasrec_push_planning_lag_seconds",
            "Planning lag: from storing a user's oldest unplanned event to storing the push "
            "planned from it.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=self.registry,
        )
        self.push_delivered = Counter(
            "pasrec_push_delivered", "Pushes the webhook accepted (2xx).", registry=self.registry
        )
        self.push_retried = Counter(
            "pasrec_push_retried",
            "Failed attempts that will be retried (5xx, 408, 429, timeout, connection error).",
            registry=self.registry,
        )
        self.push_failed = Counter(
            "pasrec_push_failed",
            "Pushes refused for good by the webhook (4xx other than 408/429).",
            registry=self.registry,
        )
        self.push_dead = Counter(
            "pasrec_push_dead",
            "Pushes dead-lettered after the last allowed attempt.",
            registry=self.registry,
        )
        self.push_skipped = Counter(
            "pasrec_push_skipped",
            "Pushes skipped by policy, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.push_held = Counter(
            "pasrec_push_held",
            "Pushes postponed by policy (quiet_hours, rate_limited), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.push_lag = Histogram(
            "pasrec_push_delivery_lag_seconds",
            "Delivery time minus the time the push was due (for a retry, its retry time).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_inference(self, seconds: float, batch_size: int) -> None:
        self.inference_latency.observe(seconds)
        self.inference_batch.observe(batch_size)

    def set_model(self, version: str, model_name: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version, model_name).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
