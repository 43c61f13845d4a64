"""The event types Chairfill sends, one entry each: name, description and the model of
the payload's `data`. Adding a type is one entry in `CATALOG`; the OpenAPI `webhooks`
section and the endpoint filters follow from it."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field, create_model


class WebhookTestData(BaseModel):
    endpoint_id: str = Field(description="The endpoint this test was sent to")
    message: str = Field(description="A human-readable note")


class EndpointDisabledData(BaseModel):
    endpoint_id: str = Field(description="The endpoint that was disabled")
    url: str
    reason: str = Field(description="Why, e.g. `gone` (the receiver answered 410)")
    detail: str
    disabled_at: datetime


class BookingSlotData(BaseModel):
    location_id: str
    appointment_type_id: str | None
    provider_id: str | None
    operatory_id: str | None
    start: datetime = Field(description="Start, with the location's UTC offset")
    end: datetime


class BookingHeldData(BookingSlotData):
    hold_id: str
    hold_expires_at: datetime = Field(description="When the hold lets the slot go")


class BookingConfirmedData(BookingSlotData):
    hold_id: str
    appointment_id: str
    patient_id: str
    patient_created: bool = Field(description="True when no patient matched and one was created")


class BookingRescheduledData(BookingSlotData):
    appointment_id: str
    previous_start: datetime
    previous_end: datetime


class BookingCancelledData(BookingSlotData):
    appointment_id: str
    reason: str | None


class BookingExpiredData(BookingSlotData):
    hold_id: str
    expired_at: datetime
    previous_status: str = Field(description="`held`, or `exception` (never resolved)")


class BookingExceptionData(BookingSlotData):
    hold_id: str
    task_id: str = Field(description="The front-desk task that resolves it")
    reason: str = Field(description="Why a person must decide, e.g. `ambiguous_patient_match`")
    candidate_patient_ids: list[str]


class MessageData(BaseModel):
    message_id: str
    location_id: str
    patient_id: str | None
    channel: str = Field(description="`sms` or `email`")
    source_kind: str = Field(description="`campaign`, `cadence`, `booking`, `manual`, `reply`")
    source_id: str
    status: str = Field(description="`sent`, `delivered` or `failed`")
    provider_message_id: str | None
    failure_reason: str | None = None


class CampaignCompletedData(BaseModel):
    campaign_id: str
    name: str
    send_round: int = Field(description="1 for the first send, 2 for the first resend, ...")
    location_ids: list[str]
    channels: list[str]
    recipients: int = Field(description="Patients in this send (after exclusions)")
    sent: int = Field(description="Handed to a provider (including delivered)")
    delivered: int
    failed: int = Field(description="Failed at the provider, or unsendable")
    suppressed: int = Field(description="Opt-outs, missing consent or address, frequency caps")
    completed_at: datetime


class MessageRepliedData(BaseModel):
    inbound_message_id: str
    location_id: str
    patient_id: str | None = Field(description="The patient whose mobile sent it, if one")
    from_address: str
    body: str
    task_id: str | None = Field(description="The front-desk task created for it")


class MessageOptedOutData(BaseModel):
    location_id: str
    patient_id: str | None
    channel: str = Field(description="`sms` or `email`")
    contact_value: str | None = Field(description="The number or address opted out")
    source: str = Field(description="`sms_reply` (STOP) or `email_unsubscribe` (one-click)")


class WritebackData(BaseModel):
    writeback_id: str
    location_id: str
    kind: str = Field(
        description="`chart_note`, `appointment_create`, `appointment_update`, `appointment_cancel`"
    )
    pms_id: str | None = Field(description="The PMS's id for what was written (on success)")
    failure_reason: str | None = Field(description="Why the bridge could not write it (on failure)")
    attempts: int


class CadenceEnrolledData(BaseModel):
    enrollment_id: str
    cadence_id: str
    patient_id: str
    location_id: str
    variant: str = Field(description="The message variant the patient gets")
    source: str = Field(description="`segment` (continuous enrollment) or `manual`")
    segment_id: str | None


class CadenceStepSentData(BaseModel):
    enrollment_id: str
    cadence_id: str
    patient_id: str
    location_id: str
    position: int = Field(description="The step, 1 being the first")
    channel: str = Field(description="`sms`, `email` or `call`")
    outcome: str = Field(
        description="`sent` (queued to the provider), `suppressed` (not allowed now, e.g. "
        "opted out), `task_created` (a call task) or `household_covered`"
    )
    message_id: str | None
    task_id: str | None


class CadenceExitedData(BaseModel):
    enrollment_id: str
    cadence_id: str
    patient_id: str
    location_id: str
    reason: str = Field(
        description="`booked`, `replied`, `opted_out`, `recall_fulfilled`, `balance_paid`, "
        "`left_segment` or `removed`"
    )
    appointment_id: str | None = Field(description="The appointment, when they booked")
    exited_at: datetime


class AudienceUpdatedData(BaseModel):
    audience_id: str
    segment_id: str
    version: int = Field(description="The version just built")
    added: int = Field(description="Patients who joined in this version")
    removed: int = Field(description="Patients who left in this version")
    total: int = Field(description="Members in this version")
    location_ids: list[str] = Field(description="The locations this build rebuilt")
    trigger: str = Field(description="`scheduled` (the segment's cadence) or `manual`")
    data_as_of: datetime | None = Field(description="The oldest PMS sync watermark it was built on")


class StaleLocation(BaseModel):
    location_id: str
    data_as_of: datetime | None = Field(description="null: never synced")
    threshold_minutes: int


class AudienceRebuildRefusedData(BaseModel):
    audience_id: str
    segment_id: str
    version: int = Field(description="The version that stays current")
    trigger: str = Field(description="`scheduled` or `manual`")
    location_ids: list[str] = Field(description="The locations the build was for")
    reason: str = Field(description="`stale_data`: a location's PMS data is too old")
    stale_locations: list[StaleLocation]
    detail: str


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    data: type[BaseModel]


CATALOG: dict[str, EventType] = {
    entry.name: entry
    for entry in [
        EventType(
            "webhook.test",
            "Sent on request (`POST /v1/webhook-endpoints/{id}/test`) to one endpoint only.",
            WebhookTestData,
        ),
        EventType(
            "endpoint.disabled",
            "A webhook endpoint was disabled (it answered 410 Gone, or failed without a "
            "success for five days). Sent to the tenant's other endpoints.",
            EndpointDisabledData,
        ),
        EventType(
            "booking.held",
            "A booking widget or app placed a tentative hold on a slot.",
            BookingHeldData,
        ),
        EventType(
            "booking.confirmed",
            "A hold was confirmed with the patient's details and is now an appointment "
            "(its PMS write-back is queued).",
            BookingConfirmedData,
        ),
        EventType(
            "booking.rescheduled",
            "An appointment was moved through the API (its PMS write-back is queued).",
            BookingRescheduledData,
        ),
        EventType(
            "booking.cancelled",
            "An appointment was cancelled through the API (its PMS write-back is queued).",
            BookingCancelledData,
        ),
        EventType(
            "booking.expired",
            "A hold lapsed without being confirmed; its slot is free again.",
            BookingExpiredData,
        ),
        EventType(
            "booking.exception",
            "A booking needs the front desk (e.g. the patient matched several charts); a "
            "task was created and the slot stays held meanwhile.",
            BookingExceptionData,
        ),
        EventType(
            "writeback.succeeded",
            "The PMS bridge wrote an item (chart note, appointment) into the PMS.",
            WritebackData,
        ),
        EventType(
            "writeback.failed",
            "The PMS bridge could not write an item; `failure_reason` says why.",
            WritebackData,
        ),
        EventType(
            "message.sent",
            "A message left through the tenant's provider (SMS or email).",
            MessageData,
        ),
        EventType(
            "message.delivered",
            "The provider reported the message delivered (the sandbox delivers at once).",
            MessageData,
        ),
        EventType(
            "message.failed",
            "A message could not be sent or delivered; `failure_reason` says why.",
            MessageData,
        ),
        EventType(
            "campaign.completed",
            "Every message of a campaign's send was handled (sent, failed or suppressed).",
            CampaignCompletedData,
        ),
        EventType(
            "message.replied",
            "A patient replied by SMS with something other than a keyword; a front-desk "
            "task was created.",
            MessageRepliedData,
        ),
        EventType(
            "message.opted_out",
            "A patient opted out: STOP (and its synonyms) by SMS, or one-click email "
            "unsubscribe. Nothing more is sent on that channel.",
            MessageOptedOutData,
        ),
        EventType(
            "cadence.enrolled",
            "A patient entered a win-back cadence (from a segment, or by hand).",
            CadenceEnrolledData,
        ),
        EventType(
            "cadence.step_sent",
            "A cadence step ran for a patient: a message queued (or suppressed, with why) "
            "or a front-desk call task created. Each step runs at most once per enrollment.",
            CadenceStepSentData,
        ),
        EventType(
            "cadence.exited",
            "A patient left a cadence early: they booked, replied, opted out, were seen for "
            "their recall, paid their balance, left the segment, or were removed.",
            CadenceExitedData,
        ),
        EventType(
            "audience.updated",
            "A new version of an audience was built (on its segment's cadence or on "
            "request); `GET /v1/audiences/{id}/changes?since_version=` lists who joined "
            "and left.",
            AudienceUpdatedData,
        ),
        EventType(
            "audience.rebuild_refused",
            "A rebuild did not run because a location's PMS data is stale; the previous "
            "version stays current and nothing was half-built.",
            AudienceRebuildRefusedData,
        ),
    ]
}

RESOURCES = frozenset(name.split(".", 1)[0] for name in CATALOG)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is not a valid filter (None when it is): `*`, `resource.*`, a type."""
    if pattern == "*" or pattern in CATALOG:
        return None
    if pattern.endswith(".*") and pattern[:-2] in RESOURCES:
        return None
    if pattern.endswith(".*"):
        known = ", ".join(sorted(RESOURCES))
        return f"unknown resource in {pattern!r} (known: {known})"
    return f"unknown event type {pattern!r} (see the webhooks section of the API reference)"


def matches(patterns: list[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def validate_data(event_type: str, data: dict[str, Any] | BaseModel) -> dict[str, Any]:
    """The payload `data`, checked against the catalog and made JSON-ready."""
    entry = CATALOG.get(event_type)
    if entry is None:
        raise ValueError(f"unknown event type {event_type!r}; add it to api/webhooks/catalog.py")
    model = data if isinstance(data, entry.data) else entry.data.model_validate(data)
    return model.model_dump(mode="json")


def _payload_model(entry: EventType) -> type[BaseModel]:
    name = "".join(part.title() for part in entry.name.replace("_", ".").split(".")) + "Event"
    return create_model(
        name,
        type=(Literal[entry.name], ...),  # type: ignore[arg-type]
        timestamp=(datetime, Field(description="When the event occurred (RFC 3339)")),
        data=(entry.data, ...),
    )


DELIVERY_NOTES = (
    "\n\nDelivered with Standard Webhooks headers `webhook-id`, `webhook-timestamp` and "
    "`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the "
    "endpoint's `whsec_` secret; during a secret rotation two signatures are sent). "
    "Delivery is at-least-once: receivers must dedupe by `webhook-id`, which stays the same "
    "across retries. Answer 2xx quickly; anything else is retried for more than three days."
)


def register_webhook_docs(app: FastAPI) -> None:
    """Document every event type in the OpenAPI `webhooks` section."""
    for entry in CATALOG.values():
        model = _payload_model(entry)

        async def receive(payload: Any) -> None:
            """Documentation only: integrators implement this on their side."""

        receive.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(
                    "payload", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=model
                )
            ],
            return_annotation=None,
        )
        receive.__annotations__ = {"payload": model, "return": None}
        app.webhooks.add_api_route(
            entry.name,
            receive,
            methods=["POST"],
            summary=entry.name,
            description=entry.description + DELIVERY_NOTES,
            operation_id=f"webhooks-{entry.name}",
            tags=["webhooks"],
            status_code=200,
            responses={200: {"description": "Received (any 2xx)"}},
        )
