"""segments: named, versioned rules over the practice mirror

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:00:00

Tenant-owned: tenant_id leads the primary key, and row-level security keys on
app.tenant_id.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("rule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("location_ids", sa.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.Column("refresh_cadence", sa.String(length=8), nullable=False),
        sa.Column("refresh_local_time", sa.Time(), nullable=False),
        sa.Column("refresh_weekday", sa.SmallInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "refresh_cadence IN ('daily', 'weekly')",
            name=op.f("ck_segments_refresh_cadence_known"),
        ),
        sa.CheckConstraint(
            "refresh_weekday BETWEEN 0 AND 6", name=op.f("ck_segments_refresh_weekday_range")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_segments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_segments")),
    )
    op.create_index(
        "ix_segments_tenant_id_created_at", "segments", ["tenant_id", "created_at"]
    )
    enable_tenant_rls("segments")


def downgrade() -> None:
    disable_tenant_rls("segments")
    op.drop_index("ix_segments_tenant_id_created_at", table_name="segments")
    op.drop_table("segments")
