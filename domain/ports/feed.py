"""Reading what changed: the live path answers with what changed, not with all a user owns."""

from __future__ import annotations

from abc import ABC, abstractmethod

from domain.feed import Changes, Page, PageKey, Scope, StatusFilter


class ChangeFeed(ABC):
    """Changes of a scope after a cursor position, and pages of a scope."""

    @abstractmethod
    def epoch(self) -> str:
        """This installation's epoch: positions are comparable only within one epoch."""

    @abstractmethod
    def changes(self, scope: Scope, *, after: int, limit: int) -> Changes:
        """Up to ``limit`` of the scope's entities positioned above ``after``, by position."""

    @abstractmethod
    def page(
        self, scope: Scope, *, limit: int, after: PageKey | None = None, status: StatusFilter = None
    ) -> Page:
        """Up to ``limit`` of the scope's entities (of ``status``), by creation, after ``after``."""
