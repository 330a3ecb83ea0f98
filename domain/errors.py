"""Errors the transports raise; a refused status change is a ``Problem`` (``domain.problems``)."""

from __future__ import annotations


class MalformedMessage(ValueError):
    """A broker body that is not a well-formed, known event."""


class PublishFailed(Exception):
    """The broker did not confirm a publish; the event may not have been delivered."""
