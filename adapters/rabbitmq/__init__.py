"""The RabbitMQ transport (pika): confirmed publishing, quorum work queues, a status broadcast."""

from adapters.rabbitmq.broker import RabbitMQBroker
from adapters.rabbitmq.publisher import RabbitMQPublisher

__all__ = ["RabbitMQBroker", "RabbitMQPublisher"]
