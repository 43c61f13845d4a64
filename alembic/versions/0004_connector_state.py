"""connector state: per-location PMS connector config (encrypted DSN) and per-table
high-water marks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connector_configs",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dsn_ciphertext", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("cursors", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "location_id"],
            ["locations.tenant_id", "locations.id"],
            name=op.f("fk_connector_configs_tenant_id_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "location_id", "kind", name=op.f("pk_connector_configs")),
    )
    enable_tenant_rls("connector_configs")


def downgrade() -> None:
    disable_tenant_rls("connector_configs")
    op.drop_table("connector_configs")
