"""ChunkIndex on SQLAlchemy: a document's chunks and their vectors in the ``chunks`` table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.sql.records import chunks as chunk_table
from adapters.sql.sessions import transaction
from domain.entities import Chunk
from domain.ports.processing import ChunkIndex


class SqlChunkIndex(ChunkIndex):
    """Chunks in SQL, vectors as JSON lists; ``replace`` is one transaction."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def replace(self, document_id: int, chunks: Sequence[Chunk]) -> None:
        rows = [
            {
                "document_id": document_id,
                "position": chunk.position,
                "text": chunk.text,
                "vector": list(chunk.vector),
            }
            for chunk in chunks
        ]
        with transaction(self._sessions) as session:
            session.execute(delete(chunk_table).where(chunk_table.c.document_id == document_id))
            if rows:
                session.execute(insert(chunk_table), rows)

    def count(self, document_id: int) -> int:
        with transaction(self._sessions) as session:
            found = session.execute(
                select(func.count())
                .select_from(chunk_table)
                .where(chunk_table.c.document_id == document_id)
            ).scalar_one()
        return int(found)

    def chunks(self, document_id: int) -> list[Chunk]:
        query = select(chunk_table).where(chunk_table.c.document_id == document_id)
        with transaction(self._sessions) as session:
            rows = session.execute(query.order_by(chunk_table.c.position)).all()
        return [Chunk(row.document_id, row.position, row.text, tuple(row.vector)) for row in rows]
