"""Request and response bodies of the campaigns API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.messaging.schemas import EmailContent, IdText, SmsContent
from api.segments.schemas import RULE_DESCRIPTION

Channel = Literal["sms", "email"]
CampaignStatus = Literal["draft", "scheduled", "sending", "paused", "completed", "cancelled"]
CampaignType = Literal["instant", "scheduled"]


# --- recipients: a tagged union, one resolver per kind --------------------------------------


class FilterRecipients(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["filters"]
    rule: dict[str, Any] = Field(description=RULE_DESCRIPTION)


class SegmentRecipients(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["segment"]
    segment_id: IdText


class AudienceRecipients(BaseModel):
    """The audience's current members (its latest version, suppression already applied)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["audience"]
    audience_id: IdText


class CustomListRecipients(BaseModel):
    """Set by uploading a CSV (POST /v1/campaigns/{id}/custom-list), never sent inline."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["custom_list"]
    file_name: str | None = Field(default=None, max_length=300)
    rows: int = 0
    matched: int = 0


RecipientsIn = Annotated[
    FilterRecipients | SegmentRecipients | AudienceRecipients, Field(discriminator="kind")
]
RecipientsOut = Annotated[
    FilterRecipients | SegmentRecipients | AudienceRecipients | CustomListRecipients,
    Field(discriminator="kind"),
]


# --- campaigns ------------------------------------------------------------------------------


class CampaignFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] | None = Field(
        default=None,
        min_length=1,
        max_length=2,
        description="sms and/or email; with both, each patient gets one message, by their "
        "communication preference.",
    )
    campaign_type: CampaignType | None = Field(
        default=None, description="`instant` (on submit) or `scheduled` (at `scheduled_for`)."
    )
    scheduled_for: dt.datetime | None = Field(
        default=None,
        description="Scheduled campaigns: the local date and time (no offset), in each "
        "location's own time zone, e.g. `2026-12-01T10:00:00`.",
    )
    location_ids: list[IdText] | None = Field(
        default=None,
        max_length=500,
        description="Locations the caller may see; for SMS, with SMS registration complete.",
    )
    sms: SmsContent | None = None
    email: EmailContent | None = None
    recipients: RecipientsIn | None = Field(
        default=None,
        description="`filters` (a rule over the practice mirror) or `segment`; a custom "
        "list is uploaded as CSV instead.",
    )


class CampaignCreate(CampaignFields):
    name: str = Field(min_length=1, max_length=200)


class CampaignUpdate(CampaignFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class CampaignOut(BaseModel):
    id: str
    name: str
    status: CampaignStatus
    channels: list[Channel]
    campaign_type: CampaignType
    scheduled_for: dt.datetime | None = Field(description="Local date and time, no offset")
    location_ids: list[str]
    sms: SmsContent | None
    email: EmailContent | None
    recipients: RecipientsOut | None
    created_by: str
    send_round: int = Field(description="How many times it has been sent (resends count)")
    send_at: dt.datetime | None = Field(description="When the messages go (first location)")
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None


class CampaignCounts(BaseModel):
    active: int = Field(description="Scheduled or sending")
    completed: int
    paused: int
    draft: int


class RecipientCountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location_ids: list[IdText] = Field(min_length=1, max_length=500)
    channels: list[Channel] = Field(min_length=1, max_length=2)
    recipients: RecipientsIn


class RecipientCountOut(BaseModel):
    count: int = Field(description="Patients who match (before exclusions)")
    location_ids: list[str]


class RecipientOut(BaseModel):
    patient_id: str
    first_name: str
    last_name: str
    location_id: str
    channel: Channel | None = Field(description="The channel they would get; null: none")
    excluded: bool


class ExclusionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_ids: list[IdText] = Field(min_length=1, max_length=1000)
    excluded: bool = Field(description="True: take them off; false: put them back")


class CampaignSummary(BaseModel):
    campaign: CampaignOut
    total_recipients: int = Field(description="Matching patients minus exclusions")
    excluded: int
    by_channel: dict[str, int]


class CustomListOut(BaseModel):
    rows: int
    matched: int
    unmatched_lines: list[int] = Field(description="CSV lines (header is 1) with no patient")


# --- results ----------------------------------------------------------------------------


ResultStatus = Literal["pending", "queued", "held", "sent", "delivered", "failed", "suppressed"]


class PatientResultOut(BaseModel):
    patient_id: str
    first_name: str
    last_name: str
    location_id: str
    channel: Channel
    status: ResultStatus
    failure_reason: str | None
    message_id: str | None
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    replied: bool
    opted_out: bool


class ChannelResults(BaseModel):
    recipients: int
    pending: int
    queued: int
    held: int
    sent: int = Field(description="Sent, not (yet) reported delivered")
    delivered: int
    failed: int
    suppressed: int
    frequency_capped: int
    replied: int
    opted_out: int


class CampaignResults(BaseModel):
    campaign_id: str
    status: CampaignStatus
    send_round: int
    channels: dict[str, ChannelResults]
