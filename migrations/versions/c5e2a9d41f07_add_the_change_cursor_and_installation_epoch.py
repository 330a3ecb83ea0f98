"""Add the change cursor (a position on documents and workspaces) and the installation epoch.

Every status change and every creation takes the next position of one counter shared by
documents and workspaces; ``installation`` holds that counter and a random ``epoch`` drawn
once per database, so that a position read from another database is recognised as such.
Rows already stored get positions in the order they last changed (ties by table, then id),
and the counter continues after them.

Revision ID: c5e2a9d41f07
Revises: b7d4e91c2f60
Create Date: 2026-12-02 01:10:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5e2a9d41f07"
down_revision: str | Sequence[str] | None = "b7d4e91c2f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept in step with adapters/sql/records.py (INSTALLATION_ID).
INSTALLATION_ID = 1
TABLES = ("workspaces", "documents")
INDEXES = {
    "workspaces": {"ix_workspaces_user_id_position": ["user_id", "position"]},
    "documents": {
        "ix_documents_user_id_position": ["user_id", "position"],
        "ix_documents_workspace_id_position": ["workspace_id", "position"],
    },
}


def upgrade() -> None:
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    for table in TABLES:
        op.add_column(table, sa.Column("position", sa.BigInteger(), nullable=True))
    last_position = _number_existing_rows()
    op.bulk_insert(
        installation,
        [{"id": INSTALLATION_ID, "epoch": uuid.uuid4().hex, "last_position": last_position}],
    )
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("position", existing_type=sa.BigInteger(), nullable=False)
            for name, columns in INDEXES[table].items():
                batch.create_index(name, columns)


def _number_existing_rows() -> int:
    """Give every stored row a position, oldest change first; the last position given."""
    bind = op.get_bind()
    rows = sorted(
        (updated_at, rank, table, row_id)
        for rank, table in enumerate(TABLES)
        for row_id, updated_at in bind.execute(sa.text(f"SELECT id, updated_at FROM {table}"))
    )
    for position, (_, _, table, row_id) in enumerate(rows, start=1):
        bind.execute(
            sa.text(f"UPDATE {table} SET position = :position WHERE id = :id"),
            {"position": position, "id": row_id},
        )
    return len(rows)


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            for name in INDEXES[table]:
                batch.drop_index(name)
            batch.drop_column("position")
    op.drop_table("installation")
