"""Add graph tables (a document's entities and their links) and document leases.

Revision ID: 351143d5e641
Revises: a88e502e037d
Create Date: 2025-02-10 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "351143d5e641"
down_revision: str | Sequence[str] | None = "a88e502e037d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "graph_nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name="fk_graph_nodes_document_id_documents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_graph_nodes"),
    )
    op.create_index("ix_graph_nodes_document_id", "graph_nodes", ["document_id"])
    op.create_table(
        "graph_edges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name="fk_graph_edges_document_id_documents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_graph_edges"),
    )
    op.create_index("ix_graph_edges_document_id", "graph_edges", ["document_id"])
    op.create_table(
        "document_leases",
        sa.Column("document_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name="fk_document_leases_document_id_documents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", name="pk_document_leases"),
    )
    op.create_index("ix_document_leases_expires_at", "document_leases", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_document_leases_expires_at", table_name="document_leases")
    op.drop_table("document_leases")
    op.drop_index("ix_graph_edges_document_id", table_name="graph_edges")
    op.drop_table("graph_edges")
    op.drop_index("ix_graph_nodes_document_id", table_name="graph_nodes")
    op.drop_table("graph_nodes")
