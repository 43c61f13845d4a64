"""Patients and the practice's resources: providers, operatories, appointment types."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ARRAY, Boolean, CheckConstraint, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.practice.models_base import MirrorColumns, mirror_table_args

PATIENT_STATUSES = ("active", "inactive", "archived", "deceased")
COMMUNICATION_PREFERENCES = ("sms", "email", "phone", "none")
PROVIDER_KINDS = ("dentist", "hygienist")


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_known")


class Provider(MirrorColumns, Base):
    __tablename__ = "providers"
    __table_args__ = mirror_table_args(_one_of("kind", PROVIDER_KINDS))

    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Operatory(MirrorColumns, Base):
    __tablename__ = "operatories"
    __table_args__ = mirror_table_args()

    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AppointmentType(MirrorColumns, Base):
    __tablename__ = "appointment_types"
    __table_args__ = mirror_table_args()

    name: Mapped[str] = mapped_column(String(200))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    # Only self-bookable types are offered to booking widgets.
    self_bookable: Mapped[bool] = mapped_column(Boolean, default=False)
    # Our ids (resolved from the bridge's external ids); empty means "any".
    provider_ids: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    operatory_ids: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)


class Patient(MirrorColumns, Base):
    __tablename__ = "patients"
    __table_args__ = mirror_table_args(
        _one_of("status", PATIENT_STATUSES),
        _one_of("communication_preference", COMMUNICATION_PREFERENCES),
        # No (tenant, location, status) index: the unique key's (tenant, location) prefix
        # serves every location filter (status is four values), and a second index on that
        # prefix is what an unanalyzed table's planner took for look-ups by external id
        # (alembic 0016).
        Index("ix_patients_tenant_updated_at", "tenant_id", "updated_at"),
        Index("ix_patients_tenant_last_visit", "tenant_id", "last_visit_date"),
        # The location is checked once per statement by triggers (alembic 0017): a sync
        # writes thousands of one location's patients in one statement.
        location_key=False,
    )

    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    preferred_name: Mapped[str | None] = mapped_column(String(100))
    birthdate: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254))
    # E.164 (+15125550100).
    mobile: Mapped[str | None] = mapped_column(String(16))
    communication_preference: Mapped[str] = mapped_column(String(8), default="sms")
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    email_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # The PMS's family / household key, as the bridge sends it.
    household_id: Mapped[str | None] = mapped_column(String(64))
    # Our ids, resolved by the sync from the PMS's; no foreign keys (alembic 0014: the
    # sync checks them, and mirror rows are only ever tombstoned).
    guarantor_id: Mapped[str | None] = mapped_column(String(40))
    primary_provider_id: Mapped[str | None] = mapped_column(String(40))
    first_visit_date: Mapped[date | None] = mapped_column(Date)
    last_visit_date: Mapped[date | None] = mapped_column(Date)
