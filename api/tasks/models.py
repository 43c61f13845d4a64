"""Front-desk tasks: calls to make, booking exceptions to resolve, replies to send."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column
from api.practice.models_base import ref
from api.practice.models_people import _one_of

TASK_KINDS = ("call", "booking_exception", "reply", "other")
TASK_STATUSES = ("open", "in_progress", "done", "cancelled")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "location_id"],
            ["locations.tenant_id", "locations.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "assignee_user_id"], ["staff_users.tenant_id", "staff_users.id"]
        ),
        ref("patients", "patient_id"),
        _one_of("kind", TASK_KINDS),
        _one_of("status", TASK_STATUSES),
        Index("ix_tasks_tenant_location_status", "tenant_id", "location_id", "status"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    location_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="open")
    title: Mapped[str] = mapped_column(String(300))
    patient_id: Mapped[str | None] = mapped_column(String(40))
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # A staff user id (`usr_...`, then also in assignee_user_id) or free text ("Front desk").
    assignee: Mapped[str | None] = mapped_column(String(200))
    assignee_user_id: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)
    # The booking hold a booking exception is about.
    hold_id: Mapped[str | None] = mapped_column(String(40))
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = created_at_column()
