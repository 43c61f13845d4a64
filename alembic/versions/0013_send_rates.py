"""send rates: a practice's provider throttle per channel (messages per second)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 15:00:00

One JSONB list on messaging_preferences, like frequency_caps: [{"channel": "sms",
"per_second": 10}]; empty means no throttle beyond what the provider answers.
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


def downgrade() -> None:
    op.drop_column("messaging_preferences", "send_rates")
