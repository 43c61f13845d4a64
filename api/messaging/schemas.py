"""Request and response bodies of the messaging API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.core.wall_clock import LocalTime
from api.engines.templates import Block, EmailStyle

Channel = Literal["sms", "email"]
# Our ids are type-prefixed ULIDs: anything else cannot name a row (and never reaches SQL).
IdText = Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


class _Text(BaseModel):
    @model_validator(mode="after")
    def _no_nul(self) -> _Text:
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
        if "\\u0000" in self.model_dump_json():
            raise ValueError("text may not contain NUL characters")
        return self


SourceKind = Literal["campaign", "cadence", "booking", "manual", "reply"]
MessageStatus = Literal["queued", "held", "sent", "delivered", "failed", "suppressed"]


# --- content ------------------------------------------------------------------------------


class SmsContent(_Text):
    channel: Literal["sms"]
    body: str = Field(
        min_length=1,
        max_length=2000,
        description="Text with {{variables}}; 260 characters at most once rendered.",
    )


class EmailContent(_Text):
    channel: Literal["email"]
    subject: str = Field(min_length=1, max_length=300)
    preheader: str = Field(default="", max_length=300)
    blocks: list[Block] = Field(
        max_length=100,
        description="heading, paragraph, button, image and columns blocks, in order.",
    )
    style: EmailStyle = Field(default_factory=EmailStyle)


Content = Annotated[SmsContent | EmailContent, Field(discriminator="channel")]


class MessageSourceIn(BaseModel):
    kind: SourceKind
    id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")


# --- preview ------------------------------------------------------------------------------


class PreviewRequest(BaseModel):
    content: Content
    patient_id: IdText | None = Field(
        default=None, description="Render for this patient (else a sample)."
    )
    location_id: IdText | None = Field(
        default=None,
        description="The office (default: the patient's, or the first visible location).",
    )


class SmsPreview(BaseModel):
    text: str
    characters: int
    max_characters: int
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    non_gsm_characters: list[str]


class EmailPreview(BaseModel):
    subject: str
    html: str
    text: str


class PreviewOut(BaseModel):
    channel: Channel
    sample_patient: bool = Field(description="True when rendered for the built-in sample.")
    variables_used: list[str]
    sms: SmsPreview | None = None
    email: EmailPreview | None = None


class VariableOut(BaseModel):
    name: str
    description: str
    clinical: bool
    sample: str


# --- sending ------------------------------------------------------------------------------


class SendRequest(BaseModel):
    location_id: IdText
    patient_id: IdText
    content: Content
    purpose: str | None = Field(
        default=None,
        max_length=32,
        pattern=r"^[a-z_]+$",
        description="recall, reminder, marketing, ...",
    )


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    location_id: str
    patient_id: str | None
    channel: Channel
    source_kind: SourceKind
    source_id: str
    purpose: str | None
    to_address: str | None
    subject: str | None
    body_text: str
    sms_encoding: str | None
    sms_segments: int | None
    status: MessageStatus
    failure_reason: str | None
    deferred_until: dt.datetime | None = Field(
        description="Waiting for a scheduled time or the end of the location's quiet hours."
    )
    provider_kind: str | None
    provider_message_id: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    failed_at: dt.datetime | None


class SandboxMessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    message_id: str
    channel: Channel
    to_address: str
    subject: str | None
    body_text: str
    body_html: str | None
    headers: dict[str, Any]
    created_at: dt.datetime


# --- settings -----------------------------------------------------------------------------


class SmtpProviderIn(_Text):
    kind: Literal["smtp"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = Field(default=None, max_length=254)
    password: str | None = Field(
        default=None, max_length=500, description="Write-only; omit to keep the stored one."
    )
    from_address: str = Field(min_length=3, max_length=254)
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = Field(default=None, max_length=254)


class TwilioProviderIn(_Text):
    kind: Literal["twilio"]
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str | None = Field(
        default=None,
        min_length=8,
        max_length=200,
        description="Write-only; omit to keep the stored one.",
    )
    from_number: str | None = Field(default=None, max_length=16, description="E.164")
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    base_url: str = Field(
        default="https://api.twilio.com",
        max_length=300,
        description="The Messages API's base URL (Twilio's, unless you run a compatible one).",
    )


class SandboxProviderIn(BaseModel):
    kind: Literal["sandbox"]


ProviderIn = Annotated[
    SmtpProviderIn | TwilioProviderIn | SandboxProviderIn, Field(discriminator="kind")
]


class ProviderOut(BaseModel):
    channel: Channel
    kind: Literal["sandbox", "smtp", "twilio"]
    config: dict[str, Any] = Field(description="The settings, without secrets.")
    secrets_set: list[str] = Field(description="Names of the secrets that are stored.")
    configured: bool = Field(description="False: the default (nothing stored).")
    updated_at: dt.datetime | None


class FrequencyCap(BaseModel):
    channel: Channel
    limit: int = Field(ge=1, le=1000, description="At most this many marketing messages ...")
    window_hours: int = Field(
        ge=1, le=24 * 366, description="... per patient in any rolling window this long."
    )


class SendRate(BaseModel):
    channel: Channel
    per_second: int = Field(
        ge=1,
        le=10_000,
        description="At most this many messages per second on the channel, for the whole "
        "practice across every worker (what the provider account allows, e.g. a Twilio "
        "number's messages per second). Messages over the rate wait their turn; none is "
        "dropped.",
    )


class QuietHoursIn(BaseModel):
    start: LocalTime = Field(description="Local time the quiet hours begin, e.g. 21:00")
    end: LocalTime = Field(description="Local time they end, e.g. 08:00 (may wrap midnight)")

    @model_validator(mode="after")
    def _distinct(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class PreferencesIn(BaseModel):
    allow_clinical_sms: bool = Field(
        description="Allow clinical variables (treatment, amounts) in SMS."
    )
    frequency_caps: list[FrequencyCap] = Field(
        default_factory=list,
        max_length=20,
        description="Caps on marketing messages (campaigns, cadences) per patient and "
        "channel over rolling windows, e.g. one SMS a day and three a week. A message "
        "over a cap is suppressed with reason `frequency_cap`.",
    )
    quiet_hours: QuietHoursIn | None = Field(
        default=None,
        description="In each location's local time, marketing messages wait until the "
        "quiet hours end (they are deferred, not dropped).",
    )
    send_rates: list[SendRate] = Field(
        default_factory=list,
        max_length=2,
        description="Provider throttling: the most messages per second per channel, for "
        "every kind of message (campaigns, cadences, confirmations, replies), enforced "
        "across all worker processes through Redis. Sends over the rate wait, they are "
        "never dropped. While Redis is unreachable each worker process paces itself at "
        "the rate on its own (so the practice may briefly exceed it, by at most the "
        "number of worker processes); a provider that still refuses (HTTP 429, SMTP 4xx) "
        "has the message retried later. Empty: no throttle.",
    )

    @model_validator(mode="after")
    def _one_rate_per_channel(self) -> PreferencesIn:
        channels = [r.channel for r in self.send_rates]
        if len(set(channels)) != len(channels):
            raise ValueError("send_rates: one rate per channel")
        return self


class PreferencesOut(PreferencesIn):
    updated_at: dt.datetime | None
