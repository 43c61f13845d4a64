"""audiences: versioned audience snapshots (membership as version ranges) and the
tenant's do-not-contact list

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 12:00:00

Tenant-owned: tenant_id leads every primary key, and row-level security keys on
app.tenant_id. `audience_members` keeps one row per stretch of membership
(added_version .. removed_version), so a diff between versions is an indexed range scan.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ["audiences", "audience_versions", "audience_members", "do_not_contact_entries"]


def upgrade() -> None:
    op.create_table(
        "audiences",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("segment_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("suppression", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("data_as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("location_data_as_of", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("channel IN ('sms', 'email')", name=op.f("ck_audiences_channel_known")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "segment_id"],
            ["segments.tenant_id", "segments.id"],
            name=op.f("fk_audiences_tenant_id_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_audiences")),
    )
    op.create_index(
        "ix_audiences_tenant_segment", "audiences", ["tenant_id", "segment_id"], unique=False
    )
    op.create_table(
        "audience_members",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("audience_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("added_version", sa.Integer(), nullable=False),
        sa.Column("removed_version", sa.Integer(), nullable=True),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("added_reason", sa.String(length=40), nullable=False),
        sa.Column("removed_reason", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "removed_version IS NULL OR removed_version > added_version",
            name=op.f("ck_audience_members_range_forward"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "audience_id"],
            ["audiences.tenant_id", "audiences.id"],
            name=op.f("fk_audience_members_tenant_id_audience_id_audiences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "audience_id",
            "patient_id",
            "added_version",
            name=op.f("pk_audience_members"),
        ),
    )
    op.create_index(
        "ix_audience_members_added",
        "audience_members",
        ["tenant_id", "audience_id", "added_version"],
        unique=False,
    )
    op.create_index(
        "ix_audience_members_current",
        "audience_members",
        ["tenant_id", "audience_id", "patient_id"],
        unique=True,
        postgresql_where="removed_version IS NULL",
    )
    op.create_index(
        "ix_audience_members_removed",
        "audience_members",
        ["tenant_id", "audience_id", "removed_version"],
        unique=False,
        postgresql_where="removed_version IS NOT NULL",
    )
    op.create_table(
        "audience_versions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("audience_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("location_ids", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("data_as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "trigger IN ('manual', 'scheduled')", name=op.f("ck_audience_versions_trigger_known")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "audience_id"],
            ["audiences.tenant_id", "audiences.id"],
            name=op.f("fk_audience_versions_tenant_id_audience_id_audiences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "audience_id", "version", name=op.f("pk_audience_versions")
        ),
    )
    op.create_table(
        "do_not_contact_entries",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "patient_id IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL",
            name=op.f("ck_do_not_contact_entries_someone"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "patient_id"],
            ["patients.tenant_id", "patients.id"],
            name=op.f("fk_do_not_contact_entries_tenant_id_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_do_not_contact_entries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_do_not_contact_entries")),
    )
    op.create_index(
        "ix_do_not_contact_email", "do_not_contact_entries", ["tenant_id", "email"], unique=False
    )
    op.create_index(
        "ix_do_not_contact_patient",
        "do_not_contact_entries",
        ["tenant_id", "patient_id"],
        unique=False,
    )
    op.create_index(
        "ix_do_not_contact_phone", "do_not_contact_entries", ["tenant_id", "phone"], unique=False
    )
    for table in TABLES:
        enable_tenant_rls(table)


def downgrade() -> None:
    for table in TABLES:
        disable_tenant_rls(table)
    op.drop_index("ix_do_not_contact_phone", table_name="do_not_contact_entries")
    op.drop_index("ix_do_not_contact_patient", table_name="do_not_contact_entries")
    op.drop_index("ix_do_not_contact_email", table_name="do_not_contact_entries")
    op.drop_table("do_not_contact_entries")
    op.drop_table("audience_versions")
    op.drop_index(
        "ix_audience_members_removed",
        table_name="audience_members",
        postgresql_where="removed_version IS NOT NULL",
    )
    op.drop_index(
        "ix_audience_members_current",
        table_name="audience_members",
        postgresql_where="removed_version IS NULL",
    )
    op.drop_index("ix_audience_members_added", table_name="audience_members")
    op.drop_table("audience_members")
    op.drop_index("ix_audiences_tenant_segment", table_name="audiences")
    op.drop_table("audiences")
