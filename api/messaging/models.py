"""Messaging tables: the send ledger (`messages`), inbound replies, the sandbox outbox,
and each tenant's provider and messaging settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column
from api.practice.models_base import ref
from api.practice.models_people import _one_of

MESSAGE_CHANNELS = ("sms", "email")
MESSAGE_STATUSES = ("queued", "held", "sent", "delivered", "failed", "suppressed")
SOURCE_KINDS = ("campaign", "cadence", "booking", "manual", "reply")
PROVIDER_KINDS = ("sandbox", "smtp", "twilio")


def _location_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "location_id"], ["locations.tenant_id", "locations.id"], ondelete="CASCADE"
    )


class Message(Base):
    """One outbound message: the ledger row a send goes through exactly once.

    queued -> sent -> delivered, or -> failed (with the reason); `suppressed` when an
    opt-out, missing consent, missing address or a frequency cap stopped it before the
    provider; `held` while its source (a paused campaign) holds it back."""

    __tablename__ = "messages"
    __table_args__ = (
        _location_fk(),
        ref("patients", "patient_id"),
        _one_of("channel", MESSAGE_CHANNELS),
        _one_of("status", MESSAGE_STATUSES),
        _one_of("source_kind", SOURCE_KINDS),
        # Exactly once per (source, patient, channel): a retried job or a repeated call
        # finds this row instead of sending again.
        UniqueConstraint(
            "tenant_id",
            "source_kind",
            "source_id",
            "recipient_key",
            "channel",
            name="uq_messages_send_key",
        ),
        Index("ix_messages_tenant_provider_message_id", "tenant_id", "provider_message_id"),
        # Send batches claim a source's queued messages in id order: only queued rows are
        # in this index, so the claim does not walk past the thousands already sent.
        Index(
            "ix_messages_queued",
            "tenant_id",
            "source_kind",
            "source_id",
            "id",
            postgresql_where=text("status = 'queued'"),
        ),
        Index("ix_messages_tenant_to_address_created_at", "tenant_id", "to_address", "created_at"),
        Index("ix_messages_tenant_patient", "tenant_id", "patient_id"),
        # Frequency caps count a patient's recent sends per channel.
        Index(
            "ix_messages_tenant_patient_channel_sent_at",
            "tenant_id",
            "patient_id",
            "channel",
            "sent_at",
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    location_id: Mapped[str] = mapped_column(String(40))
    patient_id: Mapped[str | None] = mapped_column(String(40))
    # The patient id, or `to:<address>` for a reply to someone not in the mirror.
    recipient_key: Mapped[str] = mapped_column(String(300))
    channel: Mapped[str] = mapped_column(String(8))
    source_kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(80))
    # recall, reminder, marketing, ... (the communication log's kind).
    purpose: Mapped[str | None] = mapped_column(String(32))
    to_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    sms_encoding: Mapped[str | None] = mapped_column(String(8))
    sms_segments: Mapped[int | None] = mapped_column(Integer)
    chart_note: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    provider_kind: Mapped[str | None] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Waiting for a scheduled time or for the end of the location's quiet hours.
    deferred_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class MessageHandoff(Base):
    """A provider accepted this message: written and committed at once, outside the send
    batch's transaction, so a worker killed before the batch commits does not make the
    next batch send it again. Insert-only, so it never waits for the batch's row locks."""

    __tablename__ = "message_handoffs"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),)

    tenant_id: Mapped[str] = tenant_column()
    message_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_kind: Mapped[str | None] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    # sent | delivered (what the provider said when it took the message).
    status: Mapped[str] = mapped_column(String(16))
    handed_at: Mapped[dt.datetime] = created_at_column()


class InboundMessage(Base):
    """A text a patient sent us; the provider's id makes a redelivered webhook a no-op."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        _location_fk(),
        ref("patients", "patient_id"),
        UniqueConstraint("tenant_id", "provider_kind", "provider_message_id"),
        # Cadence exits look up a patient's replies since enrollment, by patient or number.
        Index("ix_inbound_messages_tenant_patient", "tenant_id", "patient_id", "received_at"),
        Index("ix_inbound_messages_tenant_from", "tenant_id", "from_address", "received_at"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    location_id: Mapped[str] = mapped_column(String(40))
    patient_id: Mapped[str | None] = mapped_column(String(40))
    provider_kind: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str] = mapped_column(String(200))
    from_address: Mapped[str] = mapped_column(String(254))
    to_address: Mapped[str | None] = mapped_column(String(254))
    body: Mapped[str] = mapped_column(Text)
    # stop | start | help | reply
    action: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[dt.datetime] = created_at_column()


class SandboxMessage(Base):
    """What the sandbox provider "sent": readable at GET /v1/sandbox/messages."""

    __tablename__ = "sandbox_messages"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    message_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[dt.datetime] = created_at_column()


class ProviderSetting(Base):
    """The provider a tenant sends a channel through. Secrets (SMTP password, Twilio auth
    token) are one Fernet ciphertext of their JSON, never returned by the API."""

    __tablename__ = "messaging_providers"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        _one_of("channel", MESSAGE_CHANNELS),
        _one_of("kind", PROVIDER_KINDS),
    )

    tenant_id: Mapped[str] = tenant_column()
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    secrets_ciphertext: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = created_at_column()


class MessagingPreferences(Base):
    """A tenant's messaging choices (one row; absent means the defaults)."""

    __tablename__ = "messaging_preferences"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),)

    tenant_id: Mapped[str] = tenant_column()
    # Clinical variables (treatment, amounts) in SMS: off unless the practice turns it on.
    allow_clinical_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    # Marketing sends (campaigns, cadences) per channel over rolling windows:
    # [{"channel": "sms", "limit": 1, "window_hours": 24}, ...]; empty means no cap.
    frequency_caps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # Provider throttle per channel, across all workers (api/messaging/throttle.py):
    # [{"channel": "sms", "per_second": 10}, ...]; empty means none.
    send_rates: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    # Local to each location; marketing sends inside wait for the end (null: none).
    quiet_hours_start: Mapped[dt.time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[dt.time | None] = mapped_column(Time)
    updated_at: Mapped[dt.datetime] = created_at_column()
