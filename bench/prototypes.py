"""Candidate hot-path changes, measured in the benchmark before they are proposed.

``LeanDocumentUpdates`` is the status update built once per statement shape and run on a
Core connection; ``./scripts/bench --prototype lean`` measures it beside the repository.
"""

from __future__ import annotations

from typing import Any


class LeanDocumentUpdates:
    """A candidate ``update_document_status`` for ``SqlStatusRepository``, measured in bench.

    The same single ``UPDATE … WHERE status IN (allowed) … RETURNING`` statement, but built
    once per target status with bound parameters (not rebuilt as an expression tree on every
    call) and run on a Core connection (no ORM ``Session`` per update), taking its cursor
    position as the repository does. Anything it does not cover (extra fields, an expected
    version, a rejected move) goes to the repository as is.
    """

    def __init__(self, repository: Any, engine: Any) -> None:
        self._repository = repository
        self._engine = engine
        self._statements: dict[tuple[Any, bool], Any] = {}

    def _statement(self, status: Any, retry: bool) -> Any:
        from sqlalchemy import bindparam, update

        from adapters.sql.records import documents
        from adapters.sql.repository import _next_position
        from domain.status import DOCUMENT_LIFECYCLE

        key = (status, retry)
        statement = self._statements.get(key)
        if statement is None:
            allowed = sorted(s.value for s in DOCUMENT_LIFECYCLE.sources(status, retry=retry))
            statement = (
                update(documents)
                .where(
                    documents.c.id == bindparam("b_id"),
                    documents.c.processing_status.in_(allowed),
                )
                .values(
                    processing_status=status.value,
                    processing_error=bindparam("b_error"),
                    updated_at=bindparam("b_now"),
                    version=documents.c.version + 1,
                    position=_next_position(self._engine.dialect.name),
                )
                .returning(*documents.c)
            )
            self._statements[key] = statement
        return statement

    def update_document_status(self, change: Any) -> Any:
        from datetime import UTC, datetime

        from adapters.sql.records import to_document
        from adapters.sql.repository import _took_position
        from domain.result import Ok

        extras = (change.chunk_count, change.metadata, change.progress, change.expected_version)
        if any(value is not None for value in extras):
            return self._repository.update_document_status(change)
        parameters = {
            "b_id": change.document_id,
            "b_error": change.error,
            "b_now": datetime.now(UTC),
        }
        with self._engine.begin() as connection:
            statement = self._statement(change.status, change.retry)
            row = connection.execute(statement, parameters).first()
            if row is not None:
                _took_position(connection, row)
        if row is None:
            return self._repository.update_document_status(change)
        return Ok(to_document(row._mapping))
