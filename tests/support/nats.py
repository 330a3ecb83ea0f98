"""NATS test helpers: raw publishing with a client of the test's own."""

from __future__ import annotations

import asyncio

import nats

from adapters.nats.topology import NatsTopology
from domain.events import is_status_routing_key


def publish_raw(url: str, topology: NatsTopology, routing_key: str, body: bytes) -> None:
    """Publish ``body`` on the status subject of a status key, else to the work stream."""

    async def send() -> None:
        client = await nats.connect(url)
        try:
            if is_status_routing_key(routing_key):
                await client.publish(topology.status_subject(routing_key), body)
                await client.flush()
            else:
                await client.jetstream().publish(
                    topology.work_subject(routing_key), body, stream=topology.work_stream
                )
        finally:
            await client.close()

    asyncio.run(send())
