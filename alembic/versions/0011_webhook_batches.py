"""webhook batches: deliveries are the queue, claimed a batch at a time

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-23 12:00:00

A `webhooks.deliver` job now claims up to a batch of the tenant's due, pending deliveries
(`status = 'pending' AND next_attempt_at <= now`, oldest first, FOR UPDATE SKIP LOCKED).
This partial index is what that claim and the "when is the next one due" look-up read;
finished deliveries (nearly all of them) stay out of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_webhook_deliveries_due',
        'webhook_deliveries',
        ['tenant_id', 'next_attempt_at'],
        unique=False,
        postgresql_where="status = 'pending'",
    )


def downgrade() -> None:
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries')
