"""Add the status history: one row per status change or creation of an entity.

Entities stored before this revision have no history of their earlier changes; their first
entry names no status it came from.

Revision ID: d1f0a7c3b2e9
Revises: c5a1f0d2e7b3
Create Date: 2026-12-02 02:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d1f0a7c3b2e9"
down_revision: str | Sequence[str] | None = "c5a1f0d2e7b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_type", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("step", sa.String(length=100), nullable=True),
        sa.Column("step_seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_status_history"),
    )
    op.create_index(
        "ix_status_history_entity_type_entity_id_position",
        "status_history",
        ["entity_type", "entity_id", "position"],
    )


def downgrade() -> None:
    op.drop_index("ix_status_history_entity_type_entity_id_position", table_name="status_history")
    op.drop_table("status_history")
