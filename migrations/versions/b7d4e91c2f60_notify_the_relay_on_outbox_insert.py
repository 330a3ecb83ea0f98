"""Notify the relay on outbox insert: a PostgreSQL NOTIFY sent with each committing transaction.

The notification is raised by a statement-level trigger, so it is part of the very transaction
that records the status change: PostgreSQL delivers it only if that transaction commits, and
never before. The channel is named after the table's schema, so that relays of one schema are
not woken by another's writes. SQLite has no notifications; its relays poll.

Revision ID: b7d4e91c2f60
Revises: 351143d5e641
Create Date: 2025-02-06 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "b7d4e91c2f60"
down_revision: str | Sequence[str] | None = "351143d5e641"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept in step with adapters/sql/outbox.py, which listens on the same channel.
CHANNEL_PREFIX = "insighthub_outbox_"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL_PREFIX}' || TG_TABLE_SCHEMA, '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
