"""``Metrics`` on a prometheus-client registry, plus gauges and counters read when scraped."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from application.metrics import DEAD_LETTERED, RETRIED, Metrics

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Readings(Collector):
    """Series whose values live elsewhere (a service's counter, a subscription's state)."""

    def __init__(self) -> None:
        self._readings: list[tuple[str, str, str, Callable[[], float]]] = []
        self._lock = threading.Lock()

    def add(self, kind: str, name: str, help_text: str, read: Callable[[], float]) -> None:
        with self._lock:
            self._readings = [r for r in self._readings if r[1] != name]
            self._readings.append((kind, name, help_text, read))

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            readings = list(self._readings)
        for kind, name, help_text, read in readings:
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(name, help_text, value=read())


class PrometheusMetrics(Metrics):
    """Every series of one process, on its own registry (never the library's global one)."""

    content_type = CONTENT_TYPE

    def __init__(self, *, max_deliveries: int) -> None:
        self.registry = CollectorRegistry()
        self._max_deliveries = max_deliveries
        self._readings = _Readings()
        self.registry.register(self._readings)
        ProcessCollector(registry=self.registry)
        self._steps = Histogram(
            "job_step_duration_seconds",
            "Seconds one step of a document's job took (parse, chunk, embed, index, graph).",
            ["step", "outcome"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self._handling = Histogram(
            "work_handling_duration_seconds",
            "Seconds from receiving a work request to settling it.",
            ["routing_key"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self._deliveries = Counter(
            "work_deliveries_total",
            "Work requests settled, by outcome (acked, retried, dead_lettered).",
            ["routing_key", "outcome"],
            registry=self.registry,
        )
        self._dead_letters = Counter(
            "work_dead_letters_total",
            "Work requests set aside for an operator: no handler, or every attempt spent.",
            ["routing_key"],
            registry=self.registry,
        )
        self._relayed = Counter(
            "outbox_events_relayed_total",
            "Events the outbox relay published.",
            registry=self.registry,
        )
        self._batches = Histogram(
            "outbox_relay_batch_seconds",
            "Seconds the outbox relay took to publish one batch and mark it sent.",
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self._refused = Counter(
            "events_refused_total",
            "Received messages dropped (status) or dead-lettered (work) as untrusted: unsigned,"
            " badly signed, or of an implausible version.",
            ["kind", "reason"],
            registry=self.registry,
        )
        self._limited = Counter(
            "user_limit_refusals_total",
            "Requests refused because a user reached a per-user limit.",
            ["limit"],
            registry=self.registry,
        )

    def step_finished(self, step: str, seconds: float, *, failed: bool) -> None:
        self._steps.labels(step=step, outcome="failed" if failed else "ok").observe(seconds)

    def delivery_settled(
        self, routing_key: str, seconds: float, *, outcome: str, attempt: int
    ) -> None:
        # A retry of the last allowed attempt is a dead letter: the transport sets it aside.
        if outcome == RETRIED and attempt >= self._max_deliveries:
            outcome = DEAD_LETTERED
        self._handling.labels(routing_key=routing_key).observe(seconds)
        self._deliveries.labels(routing_key=routing_key, outcome=outcome).inc()
        if outcome == DEAD_LETTERED:
            self._dead_letters.labels(routing_key=routing_key).inc()

    def batch_relayed(self, events: int, seconds: float) -> None:
        self._relayed.inc(events)
        self._batches.observe(seconds)

    def event_refused(self, kind: str, reason: str) -> None:
        self._refused.labels(kind=kind, reason=reason).inc()

    def limit_reached(self, limit: str) -> None:
        self._limited.labels(limit=limit).inc()

    def read_counter(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Expose a count kept elsewhere, read at every scrape."""
        self._readings.add("counter", name, help_text, read)

    def read_gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Expose a current value kept elsewhere, read at every scrape."""
        self._readings.add("gauge", name, help_text, read)

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The text format of every series, as ``/metrics`` serves it."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "0.0.0.0") -> Callable[[], None]:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns how to stop it."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return stop
