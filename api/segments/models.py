"""A segment: a named, versioned rule over the practice mirror, for some locations, with
the cadence its audience is rebuilt at (the audiences domain reads those)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    Text,
    Time,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column

REFRESH_CADENCES = ("daily", "weekly")
DEFAULT_REFRESH_TIME = dt.time(23, 0)


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint("refresh_cadence IN ('daily', 'weekly')", name="refresh_cadence_known"),
        CheckConstraint("refresh_weekday BETWEEN 0 AND 6", name="refresh_weekday_range"),
        Index("ix_segments_tenant_id_created_at", "tenant_id", "created_at"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # The versioned rule document as the caller sent it: {"version": 1, "rule": {...}}.
    rule: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Empty: every location the caller may see when the segment is evaluated.
    location_ids: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    # The built-in template it was created from (api/segments/templates.py), if any.
    template: Mapped[str | None] = mapped_column(String(64))
    refresh_cadence: Mapped[str] = mapped_column(String(8), default="daily")
    # Local to each location: the nightly rebuild runs after the day's charting.
    refresh_local_time: Mapped[dt.time] = mapped_column(Time, default=DEFAULT_REFRESH_TIME)
    # For weekly refreshes: 0 = Monday ... 6 = Sunday.
    refresh_weekday: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
