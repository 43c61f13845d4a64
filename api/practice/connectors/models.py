"""Where a scheduled connector reads from and how far it got."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKeyConstraint, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import tenant_column


class ConnectorConfig(Base):
    """One PMS connector of one location (`kind` = "opendental").

    `cursors` holds a high-water mark per PMS table ({"patient": "2026-11-23 10:04:05"}),
    in the PMS's own clock, advanced in the same transaction as the rows it covers. The DSN
    is encrypted at rest like webhook secrets (api.webhooks.signing)."""

    __tablename__ = "connector_configs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "location_id"],
            ["locations.tenant_id", "locations.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    location_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    dsn_ciphertext: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=15)
    cursors: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
