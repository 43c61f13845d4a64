"""Campaign tables: the campaign itself, its per-round recipient ledger (the snapshot
taken when sending starts), individual exclusions and an uploaded custom list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column
from api.practice.models_base import ref
from api.practice.models_people import _one_of

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "paused", "completed", "cancelled")
CAMPAIGN_TYPES = ("instant", "scheduled")
RECIPIENT_STATUSES = ("pending", "queued", "unsendable")


def _campaign_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"], ondelete="CASCADE"
    )


class Campaign(Base):
    """draft -> scheduled -> sending -> completed; paused from scheduled or sending and back;
    cancelled from any state but completed. A completed campaign may be edited and sent
    again: each send is a `send_round`, with its own recipients and ledger key."""

    __tablename__ = "campaigns"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        _one_of("status", CAMPAIGN_STATUSES),
        _one_of("campaign_type", CAMPAIGN_TYPES),
        Index("ix_campaigns_tenant_id_send_at", "tenant_id", "send_at"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    # sms and/or email; with both, each patient gets one, by communication preference.
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(8)), default=list)
    campaign_type: Mapped[str] = mapped_column(String(16), default="instant")
    # Scheduled: the wall-clock date and time, in each location's own zone.
    scheduled_local: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=False))
    location_ids: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    sms_content: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    email_content: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The recipient source, a tagged union: {"kind": "filters", "rule": {...}},
    # {"kind": "segment", "segment_id": ...} or {"kind": "custom_list", ...}.
    recipients: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # Who saved it (the principal id): only they may edit it while it is a draft.
    created_by: Mapped[str] = mapped_column(String(120))
    send_round: Mapped[int] = mapped_column(Integer, default=0)
    # The first instant messages go (submit time for instant campaigns): the dashboard's
    # "Send Date".
    send_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Which start job may start this round (a reschedule makes older jobs no-ops).
    start_token: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class CampaignRecipient(Base):
    """One patient of one send round: the snapshot taken in SQL when sending starts.
    `pending` until its message is recorded in the send ledger (then `queued`, with the
    message id). The key (campaign, round, patient) makes each patient one message."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        _campaign_fk(),
        ref("patients", "patient_id"),
        _one_of("status", RECIPIENT_STATUSES),
        _one_of("channel", ("sms", "email")),
        # A batch claims the first pending recipients by patient id: in index order, so
        # claiming the last batch of a 100,000-patient round reads one batch, not a sort
        # of everything still pending.
        Index(
            "ix_campaign_recipients_pending",
            "tenant_id",
            "campaign_id",
            "send_round",
            "status",
            "patient_id",
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    campaign_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    send_round: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    location_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    message_id: Mapped[str | None] = mapped_column(String(40))
    # `unsendable`: the message could not be made for this patient (e.g. too long once
    # their values were filled in); the reason is shown in the results.
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()


class CampaignExclusion(Base):
    """A patient taken off the campaign in the review step."""

    __tablename__ = "campaign_exclusions"
    __table_args__ = (_campaign_fk(), ref("patients", "patient_id"))

    tenant_id: Mapped[str] = tenant_column()
    campaign_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[dt.datetime] = created_at_column()


class CampaignListEntry(Base):
    """One row of an uploaded custom list, matched to a patient of the campaign's location
    (by name and email or mobile) when uploaded; unmatched rows are reported, not sent."""

    __tablename__ = "campaign_list_entries"
    __table_args__ = (_campaign_fk(), ref("patients", "patient_id"))

    tenant_id: Mapped[str] = tenant_column()
    campaign_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The CSV line (the header is line 1).
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    mobile: Mapped[str | None] = mapped_column(String(16))
    patient_id: Mapped[str | None] = mapped_column(String(40))
