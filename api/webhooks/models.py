"""The event outbox and webhook delivery tables.

An `Event` is written in the same transaction as the change it describes; each matching
endpoint gets one `WebhookDelivery` (its id is the `webhook-id` header, stable across
retries) and every try is one `WebhookAttempt` row, response cut to 2 KB."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index("ix_events_tenant_id_occurred_at", "tenant_id", "occurred_at"),
        Index("ix_events_tenant_id_type_id", "tenant_id", "type", "id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    # `resource.verb`, one of api/webhooks/catalog.py.
    type: Mapped[str] = mapped_column(String(100))
    # Null for tenant-wide events; they reach every endpoint whose types match.
    location_id: Mapped[str | None] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(500))
    # Patterns: an exact type, `resource.*`, or `*`.
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(100)))
    # Null: every location (and tenant-wide events).
    location_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String(40)))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Fernet ciphertexts of `whsec_...`; the previous one signs too until it expires.
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # First failure since the last success; five days of it disables the endpoint.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class WebhookDelivery(Base):
    """One event to one endpoint. Its id is the `webhook-id` receivers dedupe by."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "event_id"], ["events.tenant_id", "events.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        # Automatic fan-out happens once per (event, endpoint); redelivery and replay
        # add deliveries of their own.
        Index(
            "uq_webhook_deliveries_automatic",
            "tenant_id",
            "event_id",
            "endpoint_id",
            unique=True,
            postgresql_where="trigger = 'automatic'",
        ),
        Index(
            "ix_webhook_deliveries_tenant_id_endpoint_id_status",
            "tenant_id",
            "endpoint_id",
            "status",
        ),
        # The queue: a deliverer claims the tenant's due, pending deliveries through it.
        Index(
            "ix_webhook_deliveries_due",
            "tenant_id",
            "next_attempt_at",
            postgresql_where="status = 'pending'",
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    event_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    # automatic | manual | replay | test
    trigger: Mapped[str] = mapped_column(String(16))
    # pending | succeeded | failed (ladder ran out) | cancelled (endpoint disabled)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # When a pending delivery is due. While an attempt is in flight it is the claim's
    # lease: a deliverer that died mid-batch leaves it to come due again (same webhook-id).
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
        Index("ix_webhook_attempts_tenant_id_endpoint_id_id", "tenant_id", "endpoint_id", "id"),
        Index("ix_webhook_attempts_tenant_id_event_id_id", "tenant_id", "event_id", "id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    delivery_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(16))
    attempt_number: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    succeeded: Mapped[bool] = mapped_column(Boolean)
