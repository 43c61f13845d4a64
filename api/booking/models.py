"""Online booking: per-location booking policies (and the calendar version the slot cache
keys on), tentative holds, the calendar claims that make double booking impossible, and
the stored daily reconciliation reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column
from api.practice.models_base import ref
from api.practice.models_people import _one_of

HOLD_STATUSES = ("held", "confirmed", "exception", "expired")
# Holds that still occupy their slot while hold_expires_at lies ahead.
ACTIVE_HOLD_STATUSES = ("held", "exception")
RESOURCE_KINDS = ("provider", "operatory")


def _location_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "location_id"], ["locations.tenant_id", "locations.id"], ondelete="CASCADE"
    )


class BookingPolicy(Base):
    """A location's online-booking rules (null: the settings default) and its calendar
    version, bumped in the transaction of every booking write (holds, confirmations,
    reschedules, cancellations, expiries, policy changes)."""

    __tablename__ = "booking_policies"
    __table_args__ = (_location_fk(),)

    tenant_id: Mapped[str] = tenant_column()
    location_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    min_notice_minutes: Mapped[int | None] = mapped_column(Integer)
    horizon_days: Mapped[int | None] = mapped_column(Integer)
    step_minutes: Mapped[int | None] = mapped_column(Integer)
    # {"atp_...": {"before": 10, "after": 5}}: buffers per appointment type, in minutes.
    type_buffers: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    calendar_version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = created_at_column()


class Hold(Base):
    """A tentative hold on one slot (provider + operatory) placed by a booking widget or an
    app; confirming it with the patient's details turns it into an appointment."""

    __tablename__ = "booking_holds"
    __table_args__ = (
        _location_fk(),
        ref("appointment_types", "appointment_type_id"),
        ref("providers", "provider_id"),
        ref("operatories", "operatory_id"),
        _one_of("status", HOLD_STATUSES),
        CheckConstraint("start_at < end_at", name="positive_length"),
        Index(
            "ix_booking_holds_due",
            "hold_expires_at",
            postgresql_where="status IN ('held', 'exception')",
        ),
        Index("ix_booking_holds_location_start", "tenant_id", "location_id", "start_at"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    location_id: Mapped[str] = mapped_column(String(40))
    appointment_type_id: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[str] = mapped_column(String(40))
    operatory_id: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="held")
    hold_expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # The caller that placed it: a publishable key may only confirm its own holds.
    created_by: Mapped[str] = mapped_column(String(80))
    claim_count: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[str | None] = mapped_column(String(40))
    appointment_id: Mapped[str | None] = mapped_column(String(40))
    task_id: Mapped[str | None] = mapped_column(String(40))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    exception_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = created_at_column()


class CalendarClaim(Base):
    """One 5-minute cell of one provider's or operatory's time, claimed by a hold or an
    online appointment (buffers included). The primary key is the double-booking guard:
    a second claim on the same cell fails with a unique violation, whatever the timing.

    hold_expires_at is set while the owner is a tentative hold: an expired hold's claims
    are deleted by whoever needs the cell, in that writer's transaction."""

    __tablename__ = "calendar_claims"
    __table_args__ = (
        _location_fk(),
        _one_of("resource_kind", RESOURCE_KINDS),
        Index("ix_calendar_claims_hold", "tenant_id", "hold_id"),
        Index("ix_calendar_claims_appointment", "tenant_id", "appointment_id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    resource_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    cell_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    location_id: Mapped[str] = mapped_column(String(40))
    # The hold that claimed the cells (null for a PMS appointment rescheduled through us).
    hold_id: Mapped[str | None] = mapped_column(String(40))
    appointment_id: Mapped[str | None] = mapped_column(String(40))
    # The owner's start when claimed: a claim of an appointment the PMS moved is stale.
    owner_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    hold_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class BookingReport(Base):
    """The daily reconciliation report of one location and local date, as the daily job
    computed it."""

    __tablename__ = "booking_daily_reports"
    __table_args__ = (_location_fk(),)

    tenant_id: Mapped[str] = tenant_column()
    location_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    report_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    generated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
