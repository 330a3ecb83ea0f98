"""The backlog of every work queue as Prometheus gauges, read from the broker at each scrape."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.ports import QueueBacklogs

log = logging.getLogger(__name__)

DEPTH = "insighthub_queue_depth"
OLDEST_AGE = "insighthub_queue_oldest_age_seconds"
UNACKNOWLEDGED = "insighthub_queue_unacknowledged"


class QueueBacklogCollector(Collector):
    """``insighthub_queue_depth{queue}`` and ``insighthub_queue_oldest_age_seconds{queue}``.

    An empty queue's oldest age is 0; a queue whose age the transport cannot tell (RabbitMQ)
    has no age series, and a queue the broker fails to answer for has no series at all in
    that scrape, so an outage shows as absent data, never as an empty queue.
    """

    def __init__(self, backlogs: QueueBacklogs, queues: Sequence[str]) -> None:
        self._backlogs = backlogs
        self._queues = tuple(queues)

    def describe(self) -> Iterator[Metric]:
        # Described without reading the broker, so that registering costs nothing.
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        depth, age, unacknowledged = self._families()
        for queue in self._queues:
            try:
                backlog = self._backlogs.of(queue)
            except Exception:  # one unreadable queue must not fail the whole scrape
                log.warning("could not read the backlog of queue %s", queue, exc_info=True)
                continue
            depth.add_metric([queue], backlog.waiting)
            if backlog.oldest_age_seconds is not None:
                age.add_metric([queue], backlog.oldest_age_seconds)
            elif backlog.waiting == 0:
                age.add_metric([queue], 0.0)
            if backlog.unacknowledged is not None:
                unacknowledged.add_metric([queue], backlog.unacknowledged)
        yield depth
        yield age
        yield unacknowledged

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                DEPTH, "Work requests waiting in the queue, not yet delivered.", labels=["queue"]
            ),
            GaugeMetricFamily(
                OLDEST_AGE,
                "Seconds the oldest waiting request has waited (0 when none waits; absent where"
                " the transport cannot tell).",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                UNACKNOWLEDGED,
                "Work requests delivered to a consumer and not yet settled (where told).",
                labels=["queue"],
            ),
        )
