"""Many documents at once, straight into PostgreSQL: large workspaces for benchmarks and tests.

Each row takes the next positions of the change cursor exactly as the repository would, so
the rows are what the store holds after as many real creations.
"""

from __future__ import annotations

import psycopg

from bench.services import libpq_url

_INSERT = """
WITH reserved AS (
    UPDATE installation SET last_position = last_position + %(count)s
    WHERE id = 1 RETURNING last_position - %(count)s AS start
)
INSERT INTO documents (
    user_id, workspace_id, filename, storage_key, processing_status, processing_error,
    chunk_count, metadata, progress, version, position, created_at, updated_at
)
SELECT %(user_id)s, %(workspace_id)s, 'document-' || n || '.txt', 'bulk/' || n, %(status)s,
       %(error)s, 0, '{}'::json, '[]'::json, 1, reserved.start + n, now(), now()
FROM reserved, generate_series(1, %(count)s) AS n
"""


def insert_documents(
    database_url: str,
    *,
    user_id: int,
    workspace_id: int,
    count: int,
    status: str = "failed",
    error: str | None = "bulk-loaded",
) -> list[int]:
    """Insert ``count`` documents of one workspace in one statement; their ids, in order."""
    with psycopg.connect(libpq_url(database_url)) as connection:
        connection.execute(
            _INSERT,
            {
                "count": count,
                "user_id": user_id,
                "workspace_id": workspace_id,
                "status": status,
                "error": error if status == "failed" else None,
            },
        )
        rows = connection.execute(
            "SELECT id FROM documents WHERE workspace_id = %s ORDER BY id", (workspace_id,)
        ).fetchall()
    return [row[0] for row in rows]
