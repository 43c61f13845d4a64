"""Win-back cadences: ordered steps (text, email, call task) that enrolled patients move
through until they finish or exit (booked, replied, opted out, ...).

A cadence's steps and sources are small documents edited with the cadence, so they are
JSONB (validated by api/cadences/schemas.py). What grows with patients gets rows:
enrollments (one active per patient and cadence, with the next step's due time, which
the dispatcher selects on) and step runs (one per enrollment and step: at most once)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column
from api.practice.models_base import ref

CADENCE_STATUSES = ("active", "paused")
ENROLLMENT_STATUSES = ("active", "completed", "exited")
EXIT_REASONS = (
    "booked",
    "replied",
    "opted_out",
    "recall_fulfilled",
    "balance_paid",
    "left_segment",
    "removed",
)
STEP_OUTCOMES = ("sent", "suppressed", "task_created", "household_covered")


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_known")


class Cadence(Base):
    __tablename__ = "cadences"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        _one_of("status", CADENCE_STATUSES),
        Index("ix_cadences_tenant_created_at", "tenant_id", "created_at"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="active")
    paused_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    location_ids: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    # [{"delay_days": 3, "after": "enrollment", "channel": "email", "content": {...},
    #   "variants": {"hygiene": {...}}, "task": {...}}], in order.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # [{"segment_id": "seg_...", "variant": "hygiene"}]: continuous enrollment.
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # {"booked": true, "replied": true, ...}: which exits apply (api/cadences/schemas.py).
    exits: Mapped[dict[str, bool]] = mapped_column(JSONB)
    # None: a patient never enters this cadence twice.
    reentry_after_days: Mapped[int | None] = mapped_column(Integer)
    household_aware: Mapped[bool] = mapped_column(Boolean, default=True)
    # Local time at the patient's location at which a step falls due on its day.
    send_local_time: Mapped[dt.time] = mapped_column(Time, default=dt.time(10, 0))
    template: Mapped[str | None] = mapped_column(String(64))
    # Preselected in the widget that one-tap booking links open.
    appointment_type_id: Mapped[str | None] = mapped_column(String(40))
    created_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = created_at_column()


class Enrollment(Base):
    __tablename__ = "cadence_enrollments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "cadence_id"], ["cadences.tenant_id", "cadences.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["tenant_id", "location_id"], ["locations.tenant_id", "locations.id"]),
        ref("patients", "patient_id"),
        _one_of("status", ENROLLMENT_STATUSES),
        CheckConstraint(
            "exit_reason IS NULL OR exit_reason IN ("
            + ", ".join(f"'{r}'" for r in EXIT_REASONS)
            + ")",
            name="exit_reason_known",
        ),
        # One active enrollment per patient and cadence, whatever races.
        Index(
            "ux_cadence_enrollments_active",
            "tenant_id",
            "cadence_id",
            "patient_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        # What the dispatcher reads every tick: due active enrollments, soonest first.
        Index(
            "ix_cadence_enrollments_due",
            "tenant_id",
            "next_due_at",
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_cadence_enrollments_patient", "tenant_id", "patient_id"),
        Index("ix_cadence_enrollments_cadence", "tenant_id", "cadence_id", "enrolled_at"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    cadence_id: Mapped[str] = mapped_column(String(40))
    patient_id: Mapped[str] = mapped_column(String(40))
    location_id: Mapped[str] = mapped_column(String(40))
    variant: Mapped[str] = mapped_column(String(40), default="default")
    # `segment` (continuous enrollment) or `manual`.
    source: Mapped[str] = mapped_column(String(8))
    segment_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10), default="active")
    enrolled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # The month of enrollment (`2026-11`), for metrics per cycle.
    cycle: Mapped[str] = mapped_column(String(7))
    next_position: Mapped[int | None] = mapped_column(Integer)
    next_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_step_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # What the exits compare against: was a recall due, what did the guarantor owe.
    had_recall_due: Mapped[bool] = mapped_column(Boolean, default=False)
    balance_at_enrollment: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    exit_reason: Mapped[str | None] = mapped_column(String(20))
    exited_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    booked_appointment_id: Mapped[str | None] = mapped_column(String(40))
    booked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The step whose one-tap booking link the patient booked through, if they did.
    booked_via_position: Mapped[int | None] = mapped_column(Integer)


class StepRun(Base):
    """One step done for one enrollment: the primary key makes "at most once" a fact."""

    __tablename__ = "cadence_step_runs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "enrollment_id"],
            ["cadence_enrollments.tenant_id", "cadence_enrollments.id"],
            ondelete="CASCADE",
        ),
        _one_of("outcome", STEP_OUTCOMES),
        Index("ix_cadence_step_runs_cadence", "tenant_id", "cadence_id", "position"),
    )

    tenant_id: Mapped[str] = tenant_column()
    enrollment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    cadence_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(20))
    # The address the step went to (household dedupe compares these).
    contact: Mapped[str | None] = mapped_column(String(254))
    message_id: Mapped[str | None] = mapped_column(String(40))
    task_id: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(300))
    ran_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class BookingInvite(Base):
    """A one-tap booking link's code: one patient, one location, one cadence step, until
    it expires. Short (the link has to fit in a text) and random, so it reveals nothing;
    looked up across tenants by the public link, hence the unique index on the code."""

    __tablename__ = "booking_invites"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "enrollment_id"],
            ["cadence_enrollments.tenant_id", "cadence_enrollments.id"],
            ondelete="CASCADE",
        ),
        Index("ux_booking_invites_code", "code", unique=True),
    )

    tenant_id: Mapped[str] = tenant_column()
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    location_id: Mapped[str] = mapped_column(String(40))
    patient_id: Mapped[str] = mapped_column(String(40))
    enrollment_id: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer)
    appointment_type_id: Mapped[str | None] = mapped_column(String(40))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    appointment_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = created_at_column()
