"""The patient's booking confirmation, through the messaging layer.

It is recorded in the confirming transaction (`send_message`: a ledger row and a job on
the sends queue, enqueued once the transaction commits), so a confirmed booking always
has its confirmation in the ledger and a rolled-back one never sends. The channel follows
the patient's communication preference among the channels they have an address and
consent for; without consent the row is still written, as suppressed with its reason, so
the front desk can see why nothing went out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.booking.models import Hold
from api.core.settings import Settings
from api.engines.templates import format_date
from api.messaging.schemas import EmailContent, SmsContent
from api.messaging.sending import MessageSource, SendOutcome, send_message
from api.practice.models import Appointment, Patient
from api.tenancy.models import Location

log = structlog.get_logger(__name__)

SOURCE_KIND = "booking"
PURPOSE = "confirmation"
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Where clocks are read in 12 hours (the rest get 24-hour times).
_TWELVE_HOUR = {"US", "CA", "AU", "NZ", "PH", "IN"}


@dataclass(frozen=True)
class Confirmation:
    """A confirmed online booking (all rows flushed in the confirming transaction)."""

    tenant_id: str
    location: Location
    hold: Hold
    appointment: Appointment
    patient: Patient
    patient_created: bool
    notes: str | None


def confirmation_channel(patient: Patient) -> str | None:
    """The preferred channel the patient can be reached on with consent; else the
    preferred one with an address (recorded as suppressed); None when they want no
    messages or gave no address."""
    if patient.communication_preference == "none":
        return None
    order = ("email", "sms") if patient.communication_preference == "email" else ("sms", "email")
    addresses = {"sms": patient.mobile, "email": patient.email}
    consents = {"sms": patient.sms_consent, "email": patient.email_consent}
    for channel in order:
        if addresses[channel] and consents[channel]:
            return channel
    return next((channel for channel in order if addresses[channel]), None)


def local_when(start: datetime, location: Location) -> str:
    """ "Tuesday, November 24, 2026 at 9:00 AM" in the location's time zone."""
    local = start.astimezone(ZoneInfo(location.timezone))
    if (location.country or "US").upper() in _TWELVE_HOUR:
        clock = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
    else:
        clock = f"{local.hour:02d}:{local.minute:02d}"
    return f"{_WEEKDAYS[local.weekday()]}, {format_date(local.date(), location.country)} at {clock}"


def _content(channel: str, when: str, location: Location) -> SmsContent | EmailContent:
    # Only our own words and known variables go into the template: names from the PMS
    # are filled in as values, never parsed as template text.
    call = "Questions? Call {{office.phone}}." if location.phone else ""
    if channel == "sms":
        body = f"Hi {{{{patient.first_name}}}}, you're booked at {{{{office.name}}}} on {when}."
        return SmsContent(channel="sms", body=f"{body} {call}".strip())
    where = "{{office.name}}, {{office.address}}" if location.address_line1 else "{{office.name}}"
    blocks = [
        {"type": "heading", "text": "You're booked, {{patient.first_name}}"},
        {"type": "paragraph", "text": f"We look forward to seeing you on {when} at {where}."},
    ]
    if call:
        blocks.append({"type": "paragraph", "text": f"Need to change it? {call}"})
    return EmailContent.model_validate(
        {
            "channel": "email",
            "subject": "Your appointment at {{office.name}} is booked",
            "blocks": blocks,
        }
    )


async def send_confirmation(
    session: AsyncSession, confirmation: Confirmation, settings: Settings
) -> SendOutcome | None:
    channel = confirmation_channel(confirmation.patient)
    if channel is None:
        log.info("booking_confirmation_not_sent", hold_id=confirmation.hold.id)
        return None
    when = local_when(confirmation.appointment.start_at, confirmation.location)
    return await send_message(
        session,
        tenant_id=confirmation.tenant_id,
        location_id=confirmation.location.id,
        patient_id=confirmation.patient.id,
        content=_content(channel, when, confirmation.location),
        # One confirmation per confirmed hold; the appointment's id stays free for
        # its reminders.
        source=MessageSource(SOURCE_KIND, confirmation.hold.id),
        settings=settings,
        purpose=PURPOSE,
    )
