"""Raw bodies, valid or not, published with each transport's own client: a foreign producer.

The brokers publish events only; a test that needs a malformed or unknown body on the wire
sends it here, to the place the broker's topology names for the routing key.
"""

from __future__ import annotations

from typing import Any

from domain.ports import MessageBroker


def publish_raw(broker: MessageBroker, routing_key: str, body: bytes) -> None:
    """Route ``body`` as it is to where ``broker``'s deployment takes ``routing_key``."""
    transport = type(broker).__module__.removeprefix("adapters.").split(".")[0]
    target: Any = broker
    if transport == "memory":
        target.connection.route(routing_key, body)
    elif transport == "rabbitmq":
        from tests.support import rabbitmq

        rabbitmq.publish_raw(target.url, target.topology, routing_key, body)
    elif transport == "nats":
        from tests.support import nats

        nats.publish_raw(target.url, target.topology, routing_key, body)
    elif transport == "redis":
        from tests.support import redis

        redis.publish_raw(target.url, target.topology, routing_key, body)
    else:
        raise TypeError(f"no raw publishing for a {type(broker).__name__}")
