"""Columns every mirrored PMS table shares.

A mirrored row belongs to one tenant and one location (each bridge pushes one location's
PMS), keeps the PMS's own id (`external_id`) beside ours, and is never hard-deleted by a
sync: a PMS delete sets `deleted_at` (a tombstone) so read APIs and segments can hide it
while audiences can still say who left."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKeyConstraint, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from api.core.models import id_column, tenant_column

EXTERNAL_ID_LENGTH = 64


class MirrorColumns:
    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    location_id: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def mirror_table_args(*extra: Any, location_key: bool = True) -> tuple[Any, ...]:
    """The location foreign key and the PMS-id uniqueness every mirror table has.
    `location_key=False`: the table's location is checked by statement-level triggers
    instead (patients: alembic 0017), same guarantee, once per statement, not per row."""
    key = ForeignKeyConstraint(
        ["tenant_id", "location_id"],
        ["locations.tenant_id", "locations.id"],
        ondelete="CASCADE",
    )
    unique = UniqueConstraint("tenant_id", "location_id", "external_id")
    return (key, unique, *extra) if location_key else (unique, *extra)


def ref(table: str, column: str) -> ForeignKeyConstraint:
    """A reference to another mirrored row of the same tenant."""
    return ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])
