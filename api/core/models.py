"""Column helpers shared by every domain's models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column


def id_column(primary_key: bool = True) -> Mapped[str]:
    return mapped_column(String(40), primary_key=primary_key)


def tenant_column() -> Mapped[str]:
    # Part of every tenant-owned primary key, so the schema can be distributed on it.
    return mapped_column(String(40), primary_key=True)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
