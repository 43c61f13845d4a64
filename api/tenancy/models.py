"""Tenants (a practice or a DSO), their locations, and staff users with Dentrix-like
rights per location."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    # "practice" (one office or a few) or "dso" (a group of practices).
    kind: Mapped[str] = mapped_column(String(20), default="practice")
    # Work that depends on PMS data refuses to run on data older than this.
    stale_data_threshold_minutes: Mapped[int] = mapped_column(Integer, default=24 * 60)
    created_at: Mapped[datetime] = created_at_column()


class Location(Base):
    __tablename__ = "locations"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    # IANA zone: gives "today", quiet hours, nightly rebuilds and the slot grid meaning.
    timezone: Mapped[str] = mapped_column(String(64))
    sms_registration_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_at_column()


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "email"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_at_column()


class StaffRight(Base):
    """One Dentrix-like security right a staff user holds at one location.

    Rights are named like the scopes they allow (`communications:review` mirrors
    "Review Communications setup"), so a user can grant an app exactly what they hold."""

    __tablename__ = "staff_rights"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["staff_users.tenant_id", "staff_users.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "location_id"],
            ["locations.tenant_id", "locations.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    location_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    right: Mapped[str] = mapped_column(String(64), primary_key=True)
