"""send rates and claim indexes: a practice's provider throttle per channel, and
indexes that keep a send batch's claim cheap at the end of a large campaign

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 15:00:00

One JSONB list on messaging_preferences, like frequency_caps: [{"channel": "sms",
"per_second": 10}]; empty means no throttle beyond what the provider answers.

Claims read a source's queued messages, and a campaign's pending recipients, in id
order; without these indexes each claim walked (or sorted) every row of the campaign,
so a 100,000-recipient send did quadratic work.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messaging_preferences",
        sa.Column(
            "send_rates",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_messages_queued",
        "messages",
        ["tenant_id", "source_kind", "source_id", "id"],
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.drop_index("ix_campaign_recipients_pending", table_name="campaign_recipients")
    op.create_index(
        "ix_campaign_recipients_pending",
        "campaign_recipients",
        ["tenant_id", "campaign_id", "send_round", "status", "patient_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_recipients_pending", table_name="campaign_recipients")
    op.create_index(
        "ix_campaign_recipients_pending",
        "campaign_recipients",
        ["tenant_id", "campaign_id", "send_round", "status"],
    )
    op.drop_index("ix_messages_queued", table_name="messages")
    op.drop_column("messaging_preferences", "send_rates")
