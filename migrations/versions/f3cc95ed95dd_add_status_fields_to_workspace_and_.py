"""Add status fields to workspace and document.

Revision ID: f3cc95ed95dd
Revises: 944e0ffe0f5e
Create Date: 2025-01-10 11:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3cc95ed95dd"
down_revision: str | Sequence[str] | None = "944e0ffe0f5e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=20), server_default="provisioning", nullable=False)
        )
        batch.add_column(sa.Column("status_message", sa.Text(), nullable=True))
        batch.create_index("ix_workspaces_status", ["status"])
    with op.batch_alter_table("documents") as batch:
        batch.add_column(
            sa.Column(
                "processing_status", sa.String(length=20), server_default="pending", nullable=False
            )
        )
        batch.add_column(sa.Column("processing_error", sa.Text(), nullable=True))
        batch.create_index("ix_documents_processing_status", ["processing_status"])


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_processing_status")
        batch.drop_column("processing_error")
        batch.drop_column("processing_status")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_index("ix_workspaces_status")
        batch.drop_column("status_message")
        batch.drop_column("status")
