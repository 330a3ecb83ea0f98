"""Errors the domain and its ports raise for expected, nameable failures."""

from __future__ import annotations


class TransitionRejected(Exception):
    """A status change the lifecycle (or a stale expected version) does not allow."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @classmethod
    def stale(cls, entity: str, expected: int, actual: int) -> TransitionRejected:
        """A write based on an older version than the one stored (another writer took over)."""
        return cls(f"stale write: {entity} is at version {actual}, the writer expected {expected}")


class MalformedMessage(ValueError):
    """A broker body that is not a well-formed, known event."""


class PublishFailed(Exception):
    """The broker did not confirm a publish; the event may not have been delivered."""
