"""The send service: the one way a message reaches a patient.

    outcome = await send_message(
        session, tenant_id=..., location_id=..., patient_id=...,
        content=SmsContent(channel="sms", body="Hi {{patient.first_name}} ..."),
        source=MessageSource("campaign", campaign_id), settings=settings,
    )

In the caller's transaction it renders the content for the patient, checks opt-outs and
consent, and records a `messages` row (queued, or suppressed with the reason) keyed by
(source, patient, channel): calling again with the same key returns the same row and
sends nothing. A `messaging.send` job on the `sends` queue then hands the message to the
tenant's provider (see `deliver_message`), checking opt-outs once more first, so a STOP
that arrives in between wins. Sent messages get a communication-log entry, a chart-note
write-back and `message.sent`; provider reports move them to delivered or failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository as audiences_repository
from api.core import jobs
from api.core.clock import utcnow
from api.core.errors import NotFound
from api.core.ids import new_id
from api.core.settings import Settings
from api.engines.quiet_hours import QuietHours, next_allowed
from api.events import record_event
from api.messaging import repository, templates
from api.messaging.models import Message, MessagingPreferences
from api.messaging.provider_settings import provider_for
from api.messaging.providers.base import OutboundMessage, ProviderResult
from api.messaging.schemas import EmailContent, SmsContent
from api.messaging.throttle import Rates, current_limiter
from api.messaging.unsubscribe import (
    UnsubscribeTarget,
    list_unsubscribe_headers,
    public_base,
    unsubscribe_url,
)
from api.practice.models import CommunicationLog, Patient
from api.practice.writeback import enqueue_writeback

SEND_TASK = "messaging.send"
# Seconds before each new attempt after a provider's transient failure.
RETRY_DELAYS = (30, 300, 1800, 7200)
DEFAULT_PURPOSE = {"campaign": "marketing", "cadence": "recall", "booking": "reminder"}
NOTE_LABELS = {
    "recall": "Recall reminder",
    "reminder": "Appointment reminder",
    "marketing": "Campaign message",
    "reactivation": "Win-back message",
    "confirmation": "Booking confirmation",
}
CHANNEL_LABELS = {"sms": "SMS", "email": "email"}
# Marketing sources: frequency caps count them, quiet hours hold them back. Booking
# confirmations and our keyword replies are answers the patient is waiting for.
PACED_SOURCES = frozenset({"campaign", "cadence"})


@dataclass(frozen=True)
class MessageSource:
    kind: str  # campaign | cadence | booking | manual (reply: our own keyword answers)
    id: str


@dataclass(frozen=True)
class SendOutcome:
    message: Message
    # False: the (source, patient, channel) key was already in the ledger.
    created: bool


async def suppression_reason(
    session: AsyncSession,
    patient: Patient | None,
    channel: str,
    address: str | None,
    *,
    marketing: bool = False,
) -> str | None:
    """Why this patient must not get this message now (None: they may). The practice's
    do-not-contact list stops marketing (campaigns, cadences), not answers the patient is
    waiting for (a booking confirmation)."""
    if patient is None:
        return "patient_removed"
    if not address:
        return "no_address"
    if patient.status == "deceased":
        return "patient_deceased"
    if not (patient.sms_consent if channel == "sms" else patient.email_consent):
        return "no_consent"
    if await repository.is_opted_out(session, patient.tenant_id, channel, patient.id, address):
        return "opted_out"
    if marketing and await audiences_repository.do_not_contact_matches(
        session, patient.tenant_id, [patient]
    ):
        return "do_not_contact"
    return None


async def send_message(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    patient_id: str,
    content: SmsContent | EmailContent,
    source: MessageSource,
    settings: Settings,
    purpose: str | None = None,
    chart_note: str | None = None,
    booking_link: str | None = None,
    not_before: datetime | None = None,
) -> SendOutcome:
    """Record the message (or find it by its key) and queue its first attempt, at
    `not_before` (a scheduled local time) if later than now."""
    channel = content.channel
    existing = await repository.message_by_key(
        session, tenant_id, source.kind, source.id, patient_id, channel
    )
    if existing is not None:
        return SendOutcome(existing, created=False)
    patient = await repository.get_patient(session, tenant_id, patient_id)
    if patient is None:
        raise NotFound(f"There is no patient {patient_id}.")
    location = await repository.get_location(session, tenant_id, location_id)
    if location is None:
        raise NotFound(f"There is no location {location_id}.")
    preferences = await repository.preferences(session, tenant_id)
    used = templates.check(content, bool(preferences and preferences.allow_clinical_sms))
    booking_key = None
    if "booking.link" in used and booking_link is None:
        booking_key = await repository.booking_key(
            session, tenant_id, location.id, public_base(settings)
        )
    values = templates.office_values(location, settings, booking_key)
    if booking_link is not None:
        # The caller's own link for this patient (a cadence's one-tap booking link).
        values["booking.link"] = booking_link
    values |= await templates.patient_values(session, patient, location, used)
    footer = None
    if isinstance(content, EmailContent):
        url = unsubscribe_url(settings, UnsubscribeTarget(tenant_id, patient.id, "email"))
        footer = templates.footer_for(location, url)
    rendered = templates.render(content, values, used, footer)
    address = patient.mobile if channel == "sms" else patient.email
    reason = await suppression_reason(
        session, patient, channel, address, marketing=source.kind in PACED_SOURCES
    )
    purpose = purpose or DEFAULT_PURPOSE.get(source.kind)
    label = NOTE_LABELS.get(purpose or "", "Message")
    message_id = new_id("message")
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "id": message_id,
        "location_id": location_id,
        "patient_id": patient.id,
        "recipient_key": patient.id,
        "channel": channel,
        "source_kind": source.kind,
        "source_id": source.id,
        "purpose": purpose,
        "to_address": address,
        "subject": rendered.subject,
        "body_text": rendered.text,
        "body_html": rendered.html,
        "sms_encoding": rendered.sms.encoding if rendered.sms else None,
        "sms_segments": rendered.sms.segments if rendered.sms else None,
        "chart_note": chart_note or f"{label} sent by {CHANNEL_LABELS[channel]}",
        "status": "suppressed" if reason else "queued",
        "failure_reason": reason,
        "attempts": 0,
        "deferred_until": not_before if not_before and not_before > utcnow() else None,
    }
    return await _record(session, row)


async def queue_reply(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    to_address: str,
    body: str,
    inbound_id: str,
    patient_id: str | None,
) -> SendOutcome:
    """Our answer to a keyword (STOP, START, HELP): sent even to an opted-out number (the
    confirmation is the one message allowed), at most once per inbound message."""
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "id": new_id("message"),
        "location_id": location_id,
        "patient_id": patient_id,
        "recipient_key": f"to:{to_address}",
        "channel": "sms",
        "source_kind": "reply",
        "source_id": inbound_id,
        "to_address": to_address,
        "body_text": body,
        "status": "queued",
        "attempts": 0,
    }
    return await _record(session, row)


async def _record(session: AsyncSession, row: dict[str, Any]) -> SendOutcome:
    inserted = await repository.insert_message(session, row)
    if not inserted:
        # A concurrent call with the same key won the race: its row is the message.
        existing = await repository.message_by_key(
            session,
            row["tenant_id"],
            row["source_kind"],
            row["source_id"],
            row["recipient_key"],
            row["channel"],
        )
        assert existing is not None
        return SendOutcome(existing, created=False)
    message = await repository.get_message(session, row["tenant_id"], row["id"])
    assert message is not None
    if message.status == "queued":
        await _enqueue_attempt(session, message, message.deferred_until or utcnow())
    return SendOutcome(message, created=True)


async def _enqueue_attempt(
    session: AsyncSession, message: Message, run_at: datetime, *, why: str | None = None
) -> None:
    """The job for the message's next attempt: one per attempt number, and one more per
    deferral of it (`why`); None for a release, whose held -> queued update already
    happens once."""
    key: str | None = f"{message.id}:{message.attempts + 1}"
    if why == "deferred":
        key = f"{key}:deferred:{run_at.isoformat()}"
    elif why == "released":
        key = None
    await jobs.enqueue(
        session,
        SEND_TASK,
        tenant_id=message.tenant_id,
        args={"tenant_id": message.tenant_id, "message_id": message.id},
        run_at=run_at,
        dedupe_key=key,
    )


async def hold_source(session: AsyncSession, tenant_id: str, kind: str, source_id: str) -> int:
    """Hold back every queued message of a source (a campaign paused). A message whose
    attempt is running keeps its row lock until that attempt commits, and is then no
    longer queued: it went, and is not held. Returns how many were held."""
    return await repository.set_source_status(
        session, tenant_id, kind, source_id, "queued", "held", utcnow()
    )


async def cancel_source(session: AsyncSession, tenant_id: str, kind: str, source_id: str) -> int:
    """Suppress every message of a source not yet handed to a provider (a campaign
    cancelled). Returns how many."""
    now = utcnow()
    total = 0
    for status in ("queued", "held"):
        total += await repository.set_source_status(
            session, tenant_id, kind, source_id, status, "suppressed", now, f"{kind}_cancelled"
        )
    return total


async def release_source(session: AsyncSession, tenant_id: str, kind: str, source_id: str) -> int:
    """Queue a held source's messages again (a campaign resumed), each with a new attempt
    at its deferral time or now. Returns how many."""
    now = utcnow()
    released = await repository.release_held(session, tenant_id, kind, source_id, now)
    for message in released:
        await _enqueue_attempt(
            session, message, max(message.deferred_until or now, now), why="released"
        )
    return len(released)


def _outbound(message: Message, settings: Settings) -> OutboundMessage:
    headers: dict[str, str] = {}
    callback = None
    if message.channel == "email" and message.patient_id:
        target = UnsubscribeTarget(message.tenant_id, message.patient_id, "email")
        headers = list_unsubscribe_headers(unsubscribe_url(settings, target))
    if message.channel == "sms":
        callback = f"{public_base(settings)}/v1/messaging/twilio/status"
    return OutboundMessage(
        message_id=message.id,
        channel=message.channel,  # type: ignore[arg-type]
        to=message.to_address or "",
        body_text=message.body_text,
        subject=message.subject,
        body_html=message.body_html,
        headers=headers,
        status_callback_url=callback,
    )


def quiet_hours(preferences: MessagingPreferences | None) -> QuietHours | None:
    if preferences is None or preferences.quiet_hours_start is None:
        return None
    if preferences.quiet_hours_end is None:
        return None
    return QuietHours(preferences.quiet_hours_start, preferences.quiet_hours_end)


async def _over_frequency_cap(
    session: AsyncSession,
    message: Message,
    preferences: MessagingPreferences | None,
    now: datetime,
) -> bool:
    """Would this send break one of the tenant's caps for its channel? The patient's
    (channel) lock serializes the count with any concurrent send to them, so two
    campaigns cannot both take the last place in a window."""
    caps = [
        cap
        for cap in (preferences.frequency_caps if preferences else None) or []
        if cap.get("channel") == message.channel
    ]
    if not caps or message.patient_id is None:
        return False
    await repository.lock_recipient(session, message.tenant_id, message.patient_id, message.channel)
    for cap in caps:
        since = now - timedelta(hours=int(cap["window_hours"]))
        recent = await repository.paced_sends_since(
            session,
            message.tenant_id,
            message.patient_id,
            message.channel,
            sorted(PACED_SOURCES),
            since,
        )
        if recent >= int(cap["limit"]):
            return True
    return False


async def _pace(
    session: AsyncSession, message: Message, now: datetime
) -> tuple[str, datetime | None] | None:
    """For a marketing message: ("suppressed", None) over a frequency cap,
    ("deferred", when) in the location's quiet hours, None when it may go now."""
    if message.source_kind not in PACED_SOURCES:
        return None
    preferences = await repository.preferences(session, message.tenant_id)
    window = quiet_hours(preferences)
    if window is not None:
        location = await repository.get_location(session, message.tenant_id, message.location_id)
        if location is not None:
            wait_until = next_allowed(now, location.timezone, window)
            if wait_until is not None:
                return "deferred", wait_until
    if await _over_frequency_cap(session, message, preferences, now):
        return "suppressed", None
    return None


async def deliver_message(
    session: AsyncSession, tenant_id: str, message_id: str, settings: Settings
) -> dict[str, Any]:
    """The `messaging.send` job: one attempt to hand a queued message to the provider."""
    message = await repository.get_message(session, tenant_id, message_id, for_update=True)
    if message is None or message.status != "queued":
        return {"message_id": message_id, "skipped": message.status if message else "missing"}
    now = utcnow()
    if message.deferred_until is not None and message.deferred_until > now:
        # An attempt pushed early (the reconciler, a duplicate): the queued one waits.
        return {"message_id": message_id, "deferred_until": message.deferred_until.isoformat()}
    if message.source_kind != "reply":
        patient = await repository.get_patient(session, tenant_id, message.patient_id or "")
        address = None
        if patient is not None:
            address = patient.mobile if message.channel == "sms" else patient.email
        reason = await suppression_reason(
            session,
            patient,
            message.channel,
            address,
            marketing=message.source_kind in PACED_SOURCES,
        )
        if reason is None:
            paced = await _pace(session, message, now)
            if paced is not None and paced[0] == "deferred" and paced[1] is not None:
                # Quiet hours: the message waits (it is not dropped) for the local morning.
                message.deferred_until, message.updated_at = paced[1], now
                await _enqueue_attempt(session, message, paced[1], why="deferred")
                return {"message_id": message_id, "deferred_until": paced[1].isoformat()}
            if paced is not None:
                reason = "frequency_cap"
        if reason is not None:
            message.status, message.failure_reason, message.updated_at = "suppressed", reason, now
            return {"message_id": message_id, "status": "suppressed", "reason": reason}
        message.to_address = address
        message.deferred_until = None
    provider = await provider_for(session, tenant_id, message.channel, settings)
    if provider is None:
        result = ProviderResult(None, "failed", "no_provider: configure one for this channel")
    else:
        message.provider_kind = provider.kind
        preferences = await repository.preferences(session, tenant_id)
        rates = Rates.from_settings(preferences.send_rates if preferences else None)
        per_second = rates.per_second.get(message.channel)
        if per_second is not None:
            # The practice's send rate holds for single messages too: wait for a turn.
            await current_limiter().pacer(tenant_id, message.channel, per_second, 1).turn()
        result = await provider.send(_outbound(message, settings))
    message.attempts += 1
    message.updated_at = now
    if result.status != "failed":
        message.provider_message_id = result.provider_message_id
        await mark(session, message, "sent", now)
        if result.status == "delivered":
            await mark(session, message, "delivered", now)
    elif result.retryable and message.attempts <= len(RETRY_DELAYS):
        message.failure_reason = result.error
        delay = RETRY_DELAYS[message.attempts - 1]
        await _enqueue_attempt(session, message, now + timedelta(seconds=delay))
    else:
        await mark(session, message, "failed", now, result.error)
    return {"message_id": message_id, "status": message.status, "attempts": message.attempts}


_TRANSITIONS = {"queued": {"sent", "failed"}, "sent": {"delivered", "failed"}}


async def mark(
    session: AsyncSession, message: Message, status: str, now: datetime, reason: str | None = None
) -> bool:
    """Move the message forward (never back: a late "sent" report after "delivered" is
    ignored) and record what that status means. True when it moved."""
    if status not in _TRANSITIONS.get(message.status, set()):
        return False
    message.status = status
    message.updated_at = now
    if status == "sent":
        message.sent_at = now
        message.failure_reason = None
        await _record_contact(session, message, now)
    elif status == "delivered":
        message.delivered_at = now
    else:
        message.failed_at = now
        message.failure_reason = reason or message.failure_reason or "failed"
    await session.flush()
    await record_event(
        session,
        tenant_id=message.tenant_id,
        type=f"message.{status}",
        location_id=message.location_id,
        occurred_at=now,
        data={
            "message_id": message.id,
            "location_id": message.location_id,
            "patient_id": message.patient_id,
            "channel": message.channel,
            "source_kind": message.source_kind,
            "source_id": message.source_id,
            "status": status,
            "provider_message_id": message.provider_message_id,
            "failure_reason": message.failure_reason if status == "failed" else None,
        },
    )
    return True


async def _record_contact(session: AsyncSession, message: Message, now: datetime) -> None:
    """The communication log (suppression: "contacted lately") and the PMS chart note."""
    if message.patient_id is None or message.source_kind == "reply":
        return
    session.add(
        CommunicationLog(
            tenant_id=message.tenant_id,
            id=new_id("communication"),
            location_id=message.location_id,
            external_id=f"chairfill:{message.id}",
            patient_id=message.patient_id,
            channel=message.channel,
            direction="outbound",
            contacted_at=now,
            source="chairfill",
            kind=message.purpose,
            updated_at=now,
        )
    )
    patient = await repository.get_patient(session, message.tenant_id, message.patient_id)
    await enqueue_writeback(
        session,
        tenant_id=message.tenant_id,
        location_id=message.location_id,
        kind="chart_note",
        payload={
            "patient_id": message.patient_id,
            "patient_external_id": patient.external_id if patient else None,
            "note": message.chart_note or "Message sent",
            "message_id": message.id,
            "channel": message.channel,
            "noted_at": now.isoformat(),
        },
    )
