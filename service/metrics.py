"""Prometheus metrics, in a registry of the app's own (two apps in one process never clash).

The metrics of a model (batch sizes, queue depth, throughput, reloads) are labelled by the
language pair it translates; each model's batcher reports through a :class:`PairObserver`.
:class:`MetricsMiddleware` records every HTTP request by route template and status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServiceMetrics:
    """All the service's metrics, registered in ``self.registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "mt_http_requests",
            "HTTP requests by route and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "mt_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # The model's own metrics are labelled by the language pair it translates ("en-vi"):
        # each model has its own queue and searches.
        self.batch_sentences = Histogram(
            "mt_batch_sentences",
            "distinct sentences in the running search per model call",
            ["pair"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "mt_batch_duration_seconds",
            "duration of one model call (a few decoder steps)",
            ["pair"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.model_calls = Counter(
            "mt_model_calls",
            "model calls (a few decoder steps each) by outcome",
            ["pair", "outcome"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "mt_queue_depth", "sentences waiting for the model", ["pair"], registry=registry
        )
        self.source_tokens = Counter(
            "mt_source_tokens", "source subwords translated", ["pair"], registry=registry
        )
        self.tokens_per_second = Gauge(
            "mt_tokens_per_second",
            "source subwords of the sentences finished in the latest model call, per second of it",
            ["pair"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "mt_cache_hits", "sentences answered from the translation cache", registry=registry
        )
        self.cache_misses = Counter(
            "mt_cache_misses", "sentences not in the translation cache", registry=registry
        )
        self.cache_entries = Gauge(
            "mt_cache_entries", "entries in the translation cache", registry=registry
        )
        self.reloads = Counter(
            "mt_model_reloads",
            "model reloads by language pair and outcome",
            ["pair", "outcome"],
            registry=registry,
        )
        self.model_loaded = Gauge(
            "mt_model_loaded",
            "1 while the pair's model is loaded and serving",
            ["pair"],
            registry=registry,
        )

    # cache -------------------------------------------------------------------------

    def cache_lookups(self, hits: int, misses: int, entries: int) -> None:
        self.cache_hits.inc(hits)
        self.cache_misses.inc(misses)
        self.cache_entries.set(entries)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class PairObserver:
    """One model's batcher observer (:class:`service.batch_contracts.BatchObserver`): its
    numbers go to ``metrics`` labelled by the pair that ``label()`` names."""

    def __init__(self, metrics: ServiceMetrics, label: Callable[[], str]) -> None:
        self._metrics = metrics
        self._label = label

    def queue_depth_changed(self, depth: int) -> None:
        self._metrics.queue_depth.labels(pair=self._label()).set(depth)

    def batch_finished(
        self, sentences: int, source_tokens: int, padded_tokens: int, seconds: float, ok: bool
    ) -> None:
        metrics, pair = self._metrics, self._label()
        metrics.model_calls.labels(pair=pair, outcome="ok" if ok else "error").inc()
        metrics.batch_sentences.labels(pair=pair).observe(sentences)
        metrics.batch_seconds.labels(pair=pair).observe(seconds)
        if ok:
            metrics.source_tokens.labels(pair=pair).inc(source_tokens)
            if seconds > 0:
                metrics.tokens_per_second.labels(pair=pair).set(source_tokens / seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled by route template (not raw path)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = _route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _route_template(scope: MutableMapping[str, Any]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
