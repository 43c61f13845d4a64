"""What comes back from Twilio: delivery reports and patients' texts.

Both are signed with the account's auth token (X-Twilio-Signature); the tenant is found
from the AccountSid (and, when several tenants share an account, the number texted) and
the signature checked with that tenant's token before anything is read further.

Keywords (the carriers' standard set, case-insensitive, trimmed):
STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE opt the number out of SMS at
once and are confirmed once; START, UNSTOP, YES opt back in (YES only when there was an
opt-out to lift: otherwise it is an answer for the front desk); HELP answers with the
office's name and phone. Anything else becomes a front-desk task and `message.replied`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.cadences import exits as cadence_exits
from api.core.clock import utcnow
from api.core.ids import new_id
from api.core.settings import Settings
from api.events import record_event
from api.messaging import optouts, repository, sending, templates
from api.messaging.models import InboundMessage, ProviderSetting
from api.messaging.provider_settings import read_secrets
from api.messaging.providers.twilio import STATUS_MAP, signature_is_valid
from api.messaging.replies import create_reply_task
from api.practice.models import CommunicationLog, Patient
from api.tenancy.models import Location

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP"})


@dataclass(frozen=True)
class TwilioTenant:
    tenant_id: str
    setting: ProviderSetting


async def verify_twilio(
    session: AsyncSession,
    settings: Settings,
    url: str,
    form: Mapping[str, str],
    signature: str | None,
) -> TwilioTenant | None:
    """The tenant whose auth token signed this request (system look-up), or None."""
    candidates = await repository.twilio_settings_for_account(session, form.get("AccountSid", ""))
    to = form.get("To")
    service = form.get("MessagingServiceSid")
    # Prefer the tenant whose number (or messaging service) was texted.
    candidates.sort(
        key=lambda c: (
            not (
                (to and c.config.get("from_number") == to)
                or (service and c.config.get("messaging_service_sid") == service)
            )
        )
    )
    for setting in candidates:
        token = read_secrets(settings, setting).get("auth_token")
        if token and signature_is_valid(token, url, form, signature):
            return TwilioTenant(setting.tenant_id, setting)
    return None


async def apply_status(session: AsyncSession, tenant_id: str, form: Mapping[str, str]) -> str:
    """A delivery report: move the message to delivered or failed. Returns what happened."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    message = await repository.message_by_provider_id(session, tenant_id, "twilio", sid)
    if message is None:
        return "unknown_message"
    reported = form.get("MessageStatus") or form.get("SmsStatus") or ""
    status = STATUS_MAP.get(reported)
    if status not in ("delivered", "failed"):
        return "noted"
    reason = None
    if status == "failed":
        reason = f"{reported} (Twilio error {form.get('ErrorCode') or 'unknown'})"
    moved = await sending.mark(session, message, status, utcnow(), reason)
    return status if moved else "unchanged"


async def _office(
    session: AsyncSession, tenant_id: str, address: str, patients: list[Patient]
) -> Location:
    """The office the number was talking to: the last message we sent it, else its
    patient's location, else the tenant's first location."""
    last = await repository.last_outbound_to(session, tenant_id, address)
    location_id = last.location_id if last else (patients[0].location_id if patients else None)
    location = None
    if location_id is not None:
        location = await repository.get_location(session, tenant_id, location_id)
    location = location or await repository.first_location(session, tenant_id, None)
    assert location is not None, "a tenant with an SMS provider has a location"
    return location


def classify(body: str, has_opt_out: bool) -> str:
    word = body.strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS and (word != "YES" or has_opt_out):
        return "start"
    if word in HELP_WORDS:
        return "help"
    return "reply"


async def handle_inbound(
    session: AsyncSession, tenant_id: str, form: Mapping[str, str], settings: Settings
) -> str:
    """A patient's text. Returns the action taken (stop, start, help, reply, duplicate)."""
    now = utcnow()
    sender = form.get("From", "")
    body = form.get("Body", "")
    patients = await repository.patients_with_mobile(session, tenant_id, sender)
    location = await _office(session, tenant_id, sender, patients)
    ids = [p.id for p in patients]
    has_opt_out = bool(
        await repository.own_opt_outs(session, tenant_id, "sms", optouts.SMS_REPLY, sender, ids)
    )
    inbound = InboundMessage(
        tenant_id=tenant_id,
        id=new_id("inbound_message"),
        location_id=location.id,
        patient_id=patients[0].id if len(patients) == 1 else None,
        provider_kind="twilio",
        provider_message_id=form.get("MessageSid")
        or form.get("SmsSid")
        or new_id("inbound_message"),
        from_address=sender,
        to_address=form.get("To"),
        body=body[:2000],
        action=classify(body, has_opt_out),
        received_at=now,
    )
    if not await repository.insert_inbound(session, _row(inbound)):
        return "duplicate"  # Twilio redelivered a webhook we already handled
    office = templates.office_values(location, settings)
    reply: str | None = None
    common = {"tenant_id": tenant_id, "channel": "sms", "source": optouts.SMS_REPLY}
    if inbound.action == "stop":
        if await optouts.opt_out(
            session,
            **common,
            address=sender,
            patients=patients,
            fallback_location_id=location.id,
            now=now,
        ):
            reply = (
                f"{location.name}: you are unsubscribed and will get no more texts from us. "
                "Reply START to resubscribe."
            )
    elif inbound.action == "start":
        await optouts.opt_back_in(session, **common, address=sender, patients=patients, now=now)
        reply = f"{location.name}: you are resubscribed to texts. Reply STOP to unsubscribe."
    elif inbound.action == "help":
        phone = office["office.phone"] or "our office"
        reply = f"{location.name}: for help, call {phone}. Reply STOP to unsubscribe."
    else:
        await _front_desk(session, inbound, patients, location)
    if inbound.action in ("stop", "reply") and patients:
        # A reply or a STOP ends the sender's win-back cadences before any next step.
        await cadence_exits.apply_exits(session, tenant_id, now, [p.id for p in patients])
    if reply is not None:
        await sending.queue_reply(
            session,
            tenant_id=tenant_id,
            location_id=location.id,
            to_address=sender,
            body=reply,
            inbound_id=inbound.id,
            patient_id=inbound.patient_id,
        )
    return inbound.action


def _row(inbound: InboundMessage) -> dict[str, object]:
    return {c.name: getattr(inbound, c.name) for c in InboundMessage.__table__.columns}


async def _front_desk(
    session: AsyncSession,
    inbound: InboundMessage,
    patients: list[Patient],
    location: Location,
) -> None:
    stored = await repository.get_inbound(session, inbound.tenant_id, inbound.id)
    stored.task_id = await create_reply_task(session, stored, patients, location)
    for patient in patients:
        log_id = new_id("communication")
        session.add(
            CommunicationLog(
                tenant_id=inbound.tenant_id,
                id=log_id,
                location_id=patient.location_id,
                external_id=f"chairfill:{log_id}",
                patient_id=patient.id,
                channel="sms",
                direction="inbound",
                contacted_at=stored.received_at,
                source="chairfill",
                kind="reply",
                updated_at=stored.received_at,
            )
        )
    await session.flush()
    await record_event(
        session,
        tenant_id=inbound.tenant_id,
        type="message.replied",
        location_id=location.id,
        occurred_at=stored.received_at,
        data={
            "inbound_message_id": stored.id,
            "location_id": location.id,
            "patient_id": stored.patient_id,
            "from_address": stored.from_address,
            "body": stored.body,
            "task_id": stored.task_id,
        },
    )
