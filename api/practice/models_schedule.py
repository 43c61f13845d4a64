"""Provider schedules (weekly hours, dated exceptions, blocks) and appointments."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, DateTime, Index, SmallInteger, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.practice.models_base import MirrorColumns, mirror_table_args, ref
from api.practice.models_people import _one_of

SCHEDULE_KINDS = ("weekly", "exception", "block")
APPOINTMENT_STATUSES = ("scheduled", "confirmed", "completed", "cancelled", "broken", "no_show")
APPOINTMENT_SOURCES = ("pms", "online")


class ScheduleEntry(MirrorColumns, Base):
    """One line of a provider's schedule at a location.

    weekly: `weekday` (0 = Monday) from `start_time` to `end_time`, local to the location;
    exception: on `date`, either off (`is_off`) or custom `start_time`..`end_time`;
    block: `start_at`..`end_at` (a provider's or an operatory's time taken out, `reason`).
    """

    __tablename__ = "schedule_entries"
    __table_args__ = mirror_table_args(
        ref("providers", "provider_id"),
        ref("operatories", "operatory_id"),
        _one_of("kind", SCHEDULE_KINDS),
        CheckConstraint(
            "(kind = 'weekly' AND provider_id IS NOT NULL AND weekday BETWEEN 0 AND 6 "
            "AND start_time < end_time)"
            " OR (kind = 'exception' AND provider_id IS NOT NULL AND date IS NOT NULL "
            "AND (is_off OR start_time < end_time))"
            " OR (kind = 'block' AND start_at < end_at "
            "AND (provider_id IS NOT NULL OR operatory_id IS NOT NULL))",
            name="shape",
        ),
        Index("ix_schedule_entries_provider", "tenant_id", "provider_id", "kind"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(40))
    operatory_id: Mapped[str | None] = mapped_column(String(40))
    weekday: Mapped[int | None] = mapped_column(SmallInteger)
    date: Mapped[dt.date | None] = mapped_column(Date)
    is_off: Mapped[bool] = mapped_column(Boolean, default=False)
    start_time: Mapped[dt.time | None] = mapped_column(Time)
    end_time: Mapped[dt.time | None] = mapped_column(Time)
    start_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(200))


class Appointment(MirrorColumns, Base):
    __tablename__ = "appointments"
    __table_args__ = mirror_table_args(
        ref("patients", "patient_id"),
        ref("providers", "provider_id"),
        ref("operatories", "operatory_id"),
        ref("appointment_types", "appointment_type_id"),
        _one_of("status", APPOINTMENT_STATUSES),
        _one_of("source", APPOINTMENT_SOURCES),
        CheckConstraint("start_at < end_at", name="positive_length"),
        Index("ix_appointments_tenant_patient_start", "tenant_id", "patient_id", "start_at"),
        Index("ix_appointments_tenant_location_start", "tenant_id", "location_id", "start_at"),
        Index("ix_appointments_tenant_provider_start", "tenant_id", "provider_id", "start_at"),
    )

    patient_id: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[str | None] = mapped_column(String(40))
    operatory_id: Mapped[str | None] = mapped_column(String(40))
    appointment_type_id: Mapped[str | None] = mapped_column(String(40))
    start_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    # A hold written to the PMS that staff have not confirmed yet.
    is_tentative: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(8), default="pms")
