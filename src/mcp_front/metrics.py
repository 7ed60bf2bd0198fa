"""Counters, gauges and histograms, exposed in the Prometheus text format (version 0.0.4).

Recording is a dictionary update, cheap enough for every request. Label values come only
from the configuration (service names) and fixed sets (endpoints, grant types, limits,
status codes), never from what a request carries, so the number of series is bounded.

`METRICS` is the process's registry: code anywhere in the gateway records into it.
Values read at scrape time (open sessions, running processes) are gauges whose value a
callback gives, added by the gateway that owns them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from threading import Lock

__all__ = [
    "CONTENT_TYPE",
    "METRICS",
    "Counter",
    "Histogram",
    "Registry",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: from an in-memory answer to a slow backend's."""

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Labels, extra: str = "") -> str:
    pairs = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    """A value that only goes up, per combination of label values."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._values: dict[Labels, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Histogram:
    """Observations counted in fixed buckets, with their sum, per combination of labels."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[Labels, list[float]] = {}
        """Labels → [count per bucket…, count above the last bucket, sum]."""

    def observe(self, value: float, *labels: str) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                series[index] += 1
                break
        else:
            series[len(self.buckets)] += 1
        series[-1] += value

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return 0 if series is None else int(sum(series[:-1]))

    def samples(self) -> Iterable[str]:
        for labels, series in sorted(self._series.items()):
            cumulative = 0.0
            for bound, count in zip((*self.buckets, math.inf), series[:-1], strict=True):
                cumulative += count
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {_number(cumulative)}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {_number(series[-1])}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {_number(cumulative)}"


class Gauge:
    """A value read when the metrics are scraped, by `read` (labels → value)."""

    kind = "gauge"

    def __init__(
        self, name: str, help_text: str, read: Callable[[], dict[Labels, float]], labels: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._read = read

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self._read().items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


Metric = Counter | Histogram | Gauge


class Registry:
    """The metrics of a process, and those of the gateways running in it."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._lock = Lock()
        self.started_at = time.time()

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        found = self._add(Counter(name, help_text, labels))
        assert isinstance(found, Counter)
        return found

    def histogram(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Histogram:
        found = self._add(Histogram(name, help_text, labels))
        assert isinstance(found, Histogram)
        return found

    def gauge(
        self, name: str, help_text: str, read: Callable[[], dict[Labels, float]], labels: Sequence[str] = ()
    ) -> Gauge:
        """Add (or replace: the gateway started last in a process owns it) a gauge."""
        gauge = Gauge(name, help_text, read, labels)
        with self._lock:
            self._metrics[name] = gauge
        return gauge

    def _add(self, metric: Counter | Histogram) -> Counter | Histogram:
        with self._lock:
            found = self._metrics.get(metric.name)
            if found is None:
                self._metrics[metric.name] = found = metric
        if type(found) is not type(metric):
            raise ValueError(f"metric {metric.name} is already a {found.kind}")
        assert not isinstance(found, Gauge)
        return found

    def exposition(self) -> str:
        """Every metric in the Prometheus text format."""
        lines = [
            "# HELP mcp_front_start_time_seconds When the process started (Unix time).",
            "# TYPE mcp_front_start_time_seconds gauge",
            f"mcp_front_start_time_seconds {_number(self.started_at)}",
        ]
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda metric: metric.name)
        for metric in metrics:
            lines.append(f"# HELP {metric.name} {metric.help}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


METRICS = Registry()

REQUESTS = METRICS.counter(
    "mcp_front_requests_total",
    "HTTP requests to services, by service, endpoint and status.",
    ("service", "endpoint", "status"),
)
REQUEST_SECONDS = METRICS.histogram(
    "mcp_front_request_duration_seconds",
    "Time to the response's first byte of requests to services, by service and endpoint.",
    ("service", "endpoint"),
)
GRANTS = METRICS.counter(
    "mcp_front_token_grants_total", "Tokens issued at /token, by grant type.", ("grant_type",)
)
UPSTREAM_REFRESHES = METRICS.counter(
    "mcp_front_upstream_refreshes_total",
    "Renewals of users' OAuth connections to services, by service and outcome.",
    ("service", "outcome"),
)
RATE_LIMITED = METRICS.counter(
    "mcp_front_rate_limited_total", "Requests refused with 429 by a rate limit, by limit.", ("limit",)
)
STORE_ERRORS = METRICS.counter(
    "mcp_front_store_errors_total",
    "Store operations that failed because its server was unreachable.",
    ("store",),
)
