"""The push path's counters, kept on the event loop and exposed through prometheus-client.

The hub bumps plain integers (no lock on the event loop, one increment for a fan-out to many
sockets); ``PushPathCollector`` turns them into Prometheus series when ``/metrics`` is scraped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LAG_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """Per-bucket counts of observed values, counted many at a time for a fan-out."""

    buckets: Sequence[float] = LAG_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    observations: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.observe_many(value, 1)

    def observe_many(self, value: float, times: int) -> None:
        """Observe ``value`` ``times`` times (one event sent to many sockets at once)."""
        value = max(0.0, value)
        self.counts[bisect.bisect_left(self.buckets, value)] += times
        self.total += value * times
        self.observations += times

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count)`` pairs as Prometheus wants them, ending with ``+Inf``."""
        running, pairs = 0, []
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            pairs.append((repr(float(bound)), float(running)))
        pairs.append(("+Inf", float(self.observations)))
        return pairs


@dataclass
class ServerMetrics:
    """What the push path has done since the server started; touched only on the event loop."""

    connected_sockets: int = 0
    events_received: int = 0
    events_delivered: int = 0
    events_stale: int = 0
    events_unrouted: int = 0
    slow_sockets_closed: int = 0
    snapshots_sent: int = 0
    resyncs: int = 0
    push_lag: Histogram = field(default_factory=Histogram)


class PushPathCollector(Collector):
    """The series of ``ServerMetrics`` and of the status subscription, read at each scrape."""

    def __init__(self, metrics: ServerMetrics, *, subscription_up: Callable[[], bool]) -> None:
        self._metrics = metrics
        self._subscription_up = subscription_up

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        yield GaugeMetricFamily(
            "websocket_connections", "WebSocket clients connected now.", value=m.connected_sockets
        )
        yield GaugeMetricFamily(
            "status_subscription_up",
            "1 while the status broadcast subscription is alive.",
            value=int(self._subscription_up()),
        )
        counters = (
            ("status_events_received_total", "Status events received from the broker.",
             m.events_received),
            ("status_events_delivered_total", "Status event frames sent to sockets.",
             m.events_delivered),
            ("status_events_stale_total",
             "Status events not sent because the socket already had that version or newer.",
             m.events_stale),
            ("status_events_unrouted_total",
             "Status events for users with no socket on this instance.", m.events_unrouted),
            ("websocket_slow_clients_closed_total",
             "Sockets closed because their send queue overflowed.", m.slow_sockets_closed),
            ("websocket_snapshots_sent_total",
             "Snapshot frames sent (on connect and on resync).", m.snapshots_sent),
            ("status_resyncs_total",
             "Times every socket was sent a fresh snapshot after a subscription gap.", m.resyncs),
        )  # fmt: skip
        for name, help_text, value in counters:
            yield CounterMetricFamily(name, help_text, value=value)
        frames = CounterMetricFamily(
            "websocket_frames_sent_total", "Frames sent to sockets, by frame type.", labels=["type"]
        )
        frames.add_metric(["status"], m.events_delivered)
        frames.add_metric(["snapshot"], m.snapshots_sent)
        yield frames
        yield HistogramMetricFamily(
            "status_push_lag_seconds",
            "Seconds from a status change being recorded to its frame being sent.",
            buckets=m.push_lag.cumulative(),
            sum_value=m.push_lag.total,
        )
