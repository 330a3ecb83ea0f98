"""Add versions, progress, metadata and the owning workspace to documents.

Every status change bumps ``version``; a document belongs to a workspace. Documents stored
before workspaces existed have no workspace to belong to, so this revision expects none.

Revision ID: 17ab16c96b71
Revises: f3cc95ed95dd
Create Date: 2025-02-03 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
from alembic import op

revision: str = "17ab16c96b71"
down_revision: str | Sequence[str] | None = "f3cc95ed95dd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recreate() -> Literal["auto", "always"]:
    # SQLite can neither add a NOT NULL column without a constant default nor a foreign key
    # in place: it rebuilds the table. Elsewhere the columns are simply added.
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
    with op.batch_alter_table("documents", recreate=_recreate()) as batch:
        batch.add_column(sa.Column("workspace_id", sa.Integer(), nullable=False))
        batch.add_column(
            sa.Column("chunk_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column("metadata", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch.add_column(
            sa.Column("progress", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch.create_foreign_key(
            "fk_documents_workspace_id_workspaces",
            "workspaces",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_documents_workspace_id", ["workspace_id"])


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_workspace_id")
        batch.drop_constraint("fk_documents_workspace_id_workspaces", type_="foreignkey")
        batch.drop_column("version")
        batch.drop_column("progress")
        batch.drop_column("metadata")
        batch.drop_column("chunk_count")
        batch.drop_column("workspace_id")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("version")
