"""Request counts, latency histograms and event counters, rendered in Prometheus text format."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from dataclasses import dataclass, field

# Upper bounds (seconds) of the latency histogram's buckets; +Inf is added when rendering.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                break
        self.total += seconds
        self.n += 1


class Metrics:
    """Thread-safe counters of one process. Routes are templates (``/v1/users/{user_id}/...``),
    so label sets stay bounded whatever ids clients send."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self.events_stored = 0
        self.events_duplicate = 0

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            self._latency[(method, route)].observe(seconds)

    def count_events(self, *, stored: int, duplicates: int) -> None:
        with self._lock:
            self.events_stored += stored
            self.events_duplicate += duplicates

    def render(self, *, events_in_store: int | None = None) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
        with self._lock:
            requests = sorted(self._requests.items())
            latency = sorted(
                (key, (list(h.counts), h.total, h.n)) for key, h in self._latency.items()
            )
            stored, duplicates = self.events_stored, self.events_duplicate
        lines = [
            "# HELP influrec_http_requests_total HTTP requests by method, route and status.",
            "# TYPE influrec_http_requests_total counter",
        ]
        for (method, route, status), n in requests:
            labels = f'method="{method}",route="{_label(route)}",status="{status}"'
            lines.append(f"influrec_http_requests_total{{{labels}}} {n}")
        lines += [
            "# HELP influrec_http_request_duration_seconds Request latency by method and route.",
            "# TYPE influrec_http_request_duration_seconds histogram",
        ]
        for (method, route), (counts, total, n) in latency:
            labels = f'method="{method}",route="{_label(route)}"'
            cumulative = 0
            for bound, count in zip((*BUCKETS, math.inf), (*counts, 0), strict=True):
                cumulative += count
                cumulative = n if math.isinf(bound) else cumulative
                name = "influrec_http_request_duration_seconds_bucket"
                lines.append(f'{name}{{{labels},le="{_number(bound)}"}} {cumulative}')
            lines.append(f"influrec_http_request_duration_seconds_sum{{{labels}}} {total!r}")
            lines.append(f"influrec_http_request_duration_seconds_count{{{labels}}} {n}")
        lines += [
            "# HELP influrec_events_stored_total Events stored (acknowledged) by this process.",
            "# TYPE influrec_events_stored_total counter",
            f"influrec_events_stored_total {stored}",
            "# HELP influrec_events_duplicate_total Events refused as already stored (retries).",
            "# TYPE influrec_events_duplicate_total counter",
            f"influrec_events_duplicate_total {duplicates}",
        ]
        if events_in_store is not None:
            lines += [
                "# HELP influrec_store_events Events in the event store now.",
                "# TYPE influrec_store_events gauge",
                f"influrec_store_events {events_in_store}",
            ]
        return "\n".join(lines) + "\n"
