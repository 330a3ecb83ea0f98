"""The capabilities the core needs from the outside world, as small abstract classes."""

from domain.ports.feed import ChangeFeed
from domain.ports.messaging import (
    Backlog,
    DeadLetter,
    DeadLetters,
    Delivery,
    MessageBroker,
    MessagePublisher,
    QueueBacklogs,
    StatusListener,
    Subscription,
    WorkQueue,
)
from domain.ports.operations import (
    OperatorAction,
    OperatorLog,
    StuckDocument,
    StuckWork,
    WorkerBeat,
    WorkerRegistry,
)
from domain.ports.repository import DocumentLeases, RagConfigs, StatusRepository
from domain.ports.storage import FileStorage
from domain.ports.timing import StepTimings

__all__ = [
    "Backlog",
    "ChangeFeed",
    "DeadLetter",
    "DeadLetters",
    "Delivery",
    "DocumentLeases",
    "FileStorage",
    "MessageBroker",
    "MessagePublisher",
    "OperatorAction",
    "OperatorLog",
    "QueueBacklogs",
    "RagConfigs",
    "StatusListener",
    "StatusRepository",
    "StepTimings",
    "StuckDocument",
    "StuckWork",
    "Subscription",
    "WorkQueue",
    "WorkerBeat",
    "WorkerRegistry",
]
