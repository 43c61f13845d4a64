"""Audiences: a segment materialised into numbered versions, and the tenant's
do-not-contact list that suppression reads.

Membership is stored as ranges, not as one list per version: a row per stretch a patient
spent in the audience, `added_version` .. `removed_version` (exclusive; NULL while still
in). So a rebuild writes only who joined or left, "members at version K" is
`added_version <= K AND (removed_version IS NULL OR removed_version > K)`, and the changes
since K are the rows whose range starts or ends after K: indexed range scans whose cost
follows the size of the change, not of the audience."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column

AUDIENCE_CHANNELS = ("sms", "email")
BUILD_TRIGGERS = ("manual", "scheduled")


class Audience(Base):
    """Created from a segment (several audiences may share one, e.g. an SMS and an email
    audience with different suppression); rebuilt on the segment's cadence."""

    __tablename__ = "audiences"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "segment_id"], ["segments.tenant_id", "segments.id"], ondelete="CASCADE"
        ),
        CheckConstraint("channel IN ('sms', 'email')", name="channel_known"),
        Index("ix_audiences_tenant_segment", "tenant_id", "segment_id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    segment_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(8))
    # Which suppressions apply (api/audiences/suppression.py: Suppression).
    suppression: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # 0 until the first build.
    version: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    # The oldest of `location_data_as_of` (each location's watermark at its last build).
    data_as_of: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    location_data_as_of: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    built_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class AudienceVersion(Base):
    """One build: who it covered, as of when, and what it counted."""

    __tablename__ = "audience_versions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "audience_id"],
            ["audiences.tenant_id", "audiences.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("trigger IN ('manual', 'scheduled')", name="trigger_known"),
    )

    tenant_id: Mapped[str] = tenant_column()
    audience_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The locations this build rebuilt (a scheduled build covers the one location whose
    # local rebuild time came); the others' members carry over unchanged.
    location_ids: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    trigger: Mapped[str] = mapped_column(String(16))
    # The oldest sync watermark of the rebuilt locations.
    data_as_of: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    built_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    added: Mapped[int] = mapped_column(Integer)
    removed: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    # {"matched": n, "suppressed": {"opted_out": n, ...}} of the rebuilt locations.
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)


class AudienceMember(Base):
    """A stretch of one patient's membership: [added_version, removed_version)."""

    __tablename__ = "audience_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "audience_id"],
            ["audiences.tenant_id", "audiences.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(
            "removed_version IS NULL OR removed_version > added_version", name="range_forward"
        ),
        # Current members, by patient: member pages, the export and each rebuild's join.
        Index(
            "ix_audience_members_current",
            "tenant_id",
            "audience_id",
            "patient_id",
            postgresql_where="removed_version IS NULL",
            unique=True,
        ),
        # The two ends of the ranges: a diff since version K is two range scans.
        Index("ix_audience_members_added", "tenant_id", "audience_id", "added_version"),
        Index(
            "ix_audience_members_removed",
            "tenant_id",
            "audience_id",
            "removed_version",
            postgresql_where="removed_version IS NOT NULL",
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    audience_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    added_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    removed_version: Mapped[int | None] = mapped_column(Integer)
    location_id: Mapped[str] = mapped_column(String(40))
    # matched_rule | no_longer_suppressed
    added_reason: Mapped[str] = mapped_column(String(40))
    # no_longer_matches | patient_removed | location_removed | suppressed:<reason>
    removed_reason: Mapped[str | None] = mapped_column(String(40))


class DoNotContactEntry(Base):
    """The practice's own do-not-contact list, across all locations and channels: a
    patient, a phone number (E.164), an email address, or several of them."""

    __tablename__ = "do_not_contact_entries"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"], ondelete="CASCADE"
        ),
        CheckConstraint(
            "patient_id IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL",
            name="someone",
        ),
        Index("ix_do_not_contact_patient", "tenant_id", "patient_id"),
        Index("ix_do_not_contact_phone", "tenant_id", "phone"),
        Index("ix_do_not_contact_email", "tenant_id", "email"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    patient_id: Mapped[str | None] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = created_at_column()
