"""Add the user_usage table: each user's documents and stored bytes, for their quotas.

Existing documents are counted; their bytes were never recorded and start at zero.

Revision ID: c5a1f0d2e7b3
Revises: c5e2a9d41f07
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5a1f0d2e7b3"
down_revision: str | Sequence[str] | None = "c5e2a9d41f07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_usage",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_usage"),
    )
    op.execute(
        "INSERT INTO user_usage (user_id, documents, stored_bytes)"
        " SELECT user_id, COUNT(*), 0 FROM documents GROUP BY user_id"
    )


def downgrade() -> None:
    op.drop_table("user_usage")
