from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Trigger = Literal["automatic", "manual", "replay", "test"]

_EVENT_TYPES = (
    "Patterns of the event types to receive: an exact type (`endpoint.disabled`), a "
    "resource wildcard (`webhook.*`) or `*` for every type."
)
_LOCATIONS = (
    "Only events of these locations (tenant-wide events always come). Null: every location."
)


class EndpointCreate(BaseModel):
    url: str = Field(
        max_length=2000,
        description="Where to POST events: https, on a public address.",
        examples=["https://hooks.example.com/chairfill"],
    )
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(default=["*"], max_length=100, description=_EVENT_TYPES)
    location_ids: list[str] | None = Field(default=None, max_length=1000, description=_LOCATIONS)


class EndpointUpdate(BaseModel):
    url: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] | None = Field(default=None, max_length=100, description=_EVENT_TYPES)
    location_ids: list[str] | None = Field(default=None, max_length=1000, description=_LOCATIONS)
    enabled: bool | None = Field(
        default=None,
        description="false stops deliveries (pending ones are cancelled); true re-enables a "
        "disabled endpoint.",
    )


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    description: str | None
    event_types: list[str]
    location_ids: list[str] | None
    enabled: bool
    disabled_reason: str | None = Field(description="Why it was disabled, when it is")
    disabled_at: datetime | None
    failing_since: datetime | None = Field(
        description="First failure since the last success; five days of it disable the endpoint"
    )
    previous_secret_expires_at: datetime | None = Field(
        description="During a secret rotation, until when the previous secret still signs"
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret (`whsec_...`). Shown only now.")


class RotateSecret(BaseModel):
    overlap_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the previous secret keeps signing too (two `v1,` signatures).",
    )


class RotatedSecret(BaseModel):
    endpoint_id: str
    secret: str = Field(description="The new signing secret. Shown only now.")
    previous_secret_expires_at: datetime | None


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    location_id: str | None
    occurred_at: datetime
    data: dict[str, Any]


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The `webhook-id` header of this delivery's attempts")
    event_id: str
    endpoint_id: str
    trigger: Trigger
    status: Literal["pending", "succeeded", "failed", "cancelled"]
    attempt_count: int
    next_attempt_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    delivery_id: str = Field(description="The `webhook-id` that was sent")
    event_id: str
    endpoint_id: str
    trigger: Trigger
    attempt_number: int
    attempted_at: datetime
    latency_ms: int | None
    status_code: int | None
    response_body: str | None = Field(description="The first 2 KB of the receiver's answer")
    error: str | None = Field(description="Why no answer was received (timeout, refused target)")
    succeeded: bool


class Redelivered(BaseModel):
    deliveries: list[DeliveryOut]


class ReplayRequest(BaseModel):
    since: AwareDatetime = Field(description="Start of the window (inclusive)")
    until: AwareDatetime = Field(description="End of the window (exclusive)")


class Replayed(BaseModel):
    endpoint_id: str
    since: datetime
    until: datetime
    deliveries_scheduled: int


class TestSent(BaseModel):
    event: EventOut
    delivery: DeliveryOut
