"""Request counts, latency histograms and event counters of one service process, exposed in
Prometheus text format by ``prometheus_client`` (one registry per app, no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Upper bounds (seconds) of the latency histogram's buckets; +Inf is added by the client.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Thread-safe counters of one process. Routes are templates (``/v1/users/{user_id}/...``),
    so label sets stay bounded whatever ids clients send."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "influrec_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "influrec_http_request_duration_seconds",
            "Request latency by method and route.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._stored = Counter(
            "influrec_events_stored",
            "Events stored (acknowledged) by this process.",
            registry=self.registry,
        )
        self._duplicates = Counter(
            "influrec_events_duplicate",
            "Events refused as already stored (retries).",
            registry=self.registry,
        )
        self._in_store = Gauge(
            "influrec_store_events", "Events in the event store now.", registry=self.registry
        )

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)

    def count_events(self, *, stored: int, duplicates: int) -> None:
        self._stored.inc(stored)
        self._duplicates.inc(duplicates)

    def render(self, *, events_in_store: int | None = None) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
        if events_in_store is not None:
            self._in_store.set(events_in_store)
        return generate_latest(self.registry).decode("utf-8")
