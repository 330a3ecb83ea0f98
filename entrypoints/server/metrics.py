"""Counters and a histogram of the push path, rendered in the Prometheus text format."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LAG_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """Cumulative-bucket histogram of observed values."""

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

    def render(self, name: str) -> list[str]:
        lines = []
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.observations}')
        lines.append(f"{name}_sum {_number(self.total)}")
        lines.append(f"{name}_count {self.observations}")
        return lines


def _number(value: float) -> str:
    return repr(float(value))


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

    def render(self, *, subscription_up: bool, events_lost: int) -> str:
        """The Prometheus text exposition of every metric."""
        families: list[tuple[str, str, str, Callable[[], list[str]]]] = [
            (
                "websocket_connections",
                "gauge",
                "WebSocket clients connected now.",
                lambda: [f"websocket_connections {self.connected_sockets}"],
            ),
            (
                "status_subscription_up",
                "gauge",
                "1 while the status broadcast subscription is alive.",
                lambda: [f"status_subscription_up {int(subscription_up)}"],
            ),
            (
                "status_events_received_total",
                "counter",
                "Status events received from the broker.",
                lambda: [f"status_events_received_total {self.events_received}"],
            ),
            (
                "status_events_delivered_total",
                "counter",
                "Status event frames sent to sockets.",
                lambda: [f"status_events_delivered_total {self.events_delivered}"],
            ),
            (
                "status_events_stale_total",
                "counter",
                "Status events not sent because the socket already had that version or newer.",
                lambda: [f"status_events_stale_total {self.events_stale}"],
            ),
            (
                "status_events_unrouted_total",
                "counter",
                "Status events for users with no socket on this instance.",
                lambda: [f"status_events_unrouted_total {self.events_unrouted}"],
            ),
            (
                "websocket_slow_clients_closed_total",
                "counter",
                "Sockets closed because their send queue overflowed.",
                lambda: [f"websocket_slow_clients_closed_total {self.slow_sockets_closed}"],
            ),
            (
                "websocket_snapshots_sent_total",
                "counter",
                "Snapshot frames sent (on connect and on resync).",
                lambda: [f"websocket_snapshots_sent_total {self.snapshots_sent}"],
            ),
            (
                "status_resyncs_total",
                "counter",
                "Times every socket was sent a fresh snapshot after a subscription gap.",
                lambda: [f"status_resyncs_total {self.resyncs}"],
            ),
            (
                "status_events_lost_total",
                "counter",
                "Status events this process failed to publish after every attempt.",
                lambda: [f"status_events_lost_total {events_lost}"],
            ),
            (
                "status_push_lag_seconds",
                "histogram",
                "Seconds from a status change being recorded to its frame being sent.",
                lambda: self.push_lag.render("status_push_lag_seconds"),
            ),
        ]
        lines: list[str] = []
        for name, kind, help_text, samples in families:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples())
        return "\n".join(lines) + "\n"
