"""Per-location sync watermarks and the write-back outbox."""

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
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column
from api.practice.models_people import _one_of

WRITEBACK_KINDS = ("chart_note", "appointment_create", "appointment_update", "appointment_cancel")
WRITEBACK_STATUSES = ("pending", "claimed", "succeeded", "failed")


class LocationSyncState(Base):
    """How fresh a location's mirror is: the PMS time up to which the bridge says the
    mirror is complete (`data_as_of`, never moves backwards) and what each entity got."""

    __tablename__ = "location_sync_states"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "location_id"],
            ["locations.tenant_id", "locations.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    location_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    data_as_of: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_sync_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # {"patients": {"batches": 3, "created": 10, "updated": 2, "unchanged": 0,
    #               "deleted": 1, "last_sync_at": "..."}, ...}
    entities: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Writeback(Base):
    """A change for the PMS (chart note, appointment), taken by the location's bridge.

    pending -> claimed (a lease; an expired lease counts as pending again) -> succeeded
    (with the PMS's id) or failed (with the reason)."""

    __tablename__ = "writebacks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "location_id"],
            ["locations.tenant_id", "locations.id"],
            ondelete="CASCADE",
        ),
        _one_of("kind", WRITEBACK_KINDS),
        _one_of("status", WRITEBACK_STATUSES),
        # The bridge's queue: open items of a location, oldest first.
        Index(
            "ix_writebacks_open",
            "tenant_id",
            "location_id",
            "created_at",
            postgresql_where="status IN ('pending', 'claimed')",
        ),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    location_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(24))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Each claim gets a new lease id; an ack must present the lease it holds.
    lease_id: Mapped[str | None] = mapped_column(String(40))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pms_id: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
