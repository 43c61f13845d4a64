"""Sending in bulk: the same ledger, checks and traces as api.messaging.sending, a batch
at a time, for campaigns (and later cadences) where one job per message is too slow.

    outcomes = await record_many(session, tenant_id=..., source=..., recipients=[...],
                                 settings=settings)     # one INSERT; one send job per batch
    await deliver_batch(session, tenant_id, "campaign", campaign_id, settings)   # the job

`record_many` renders each patient's message and records it in the ledger, keyed
(source, patient, channel) like `send_message`: recording again finds the rows and adds
nothing. It enqueues `messaging.send_batch` jobs (at each scheduled time). A batch job
claims up to BATCH_SIZE queued messages of the source with FOR UPDATE SKIP LOCKED (so
concurrent jobs and workers never share one), re-checks each patient (opt-out, consent,
address, quiet hours, frequency caps), hands them to the providers concurrently (over
pooled connections, at the practice's send rate) and writes their outcome in the same
transaction, set-based: one UPDATE for the messages, one INSERT each for the
communication log and the chart-note write-backs, and the events.

Exactly once, as far as a provider allows: each provider acceptance is also committed
at once in `message_handoffs` (a connection reserved for that, a few milliseconds
behind the provider), so a batch claimed again after its worker died marks those
messages sent instead of sending them again. Only acceptances in flight at the instant
of a crash are handed over twice, and they carry the same idempotency key (the email's
Message-ID, the SMS request's Idempotency-Key: our message id), which a provider that
honours one acknowledges without delivering again."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from api.audiences import repository as audiences_repository
from api.core import jobs, statistics
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.errors import Problem
from api.core.ids import new_id
from api.core.settings import Settings
from api.engines.quiet_hours import next_allowed
from api.events import record_events
from api.messaging import repository, templates
from api.messaging.models import Message
from api.messaging.provider_settings import provider_for
from api.messaging.providers.base import ChannelProvider, ProviderResult
from api.messaging.schemas import EmailContent, SmsContent
from api.messaging.sending import (
    CHANNEL_LABELS,
    DEFAULT_PURPOSE,
    NOTE_LABELS,
    PACED_SOURCES,
    RETRY_DELAYS,
    MessageSource,
    _outbound,
    _over_frequency_cap,
    quiet_hours,
)
from api.messaging.throttle import Pacer, Rates, current_limiter
from api.messaging.unsubscribe import UnsubscribeTarget, public_base, unsubscribe_url
from api.practice.models import CommunicationLog, Patient
from api.practice.models_sync import Writeback
from api.tenancy.models import Location

BATCH_TASK = "messaging.send_batch"
BATCH_SIZE = 500
# Seconds the handoff writer waits to gather acceptances into one transaction.
ACK_INTERVAL = 0.02
# Provider calls in flight at once within one batch.
SEND_CONCURRENCY = 50
# Batches of one source sending at once, across all workers. Every batch job holds its
# claimed rows locked until it commits, and claims walk past rows other batches hold (and
# past rows they sent that are not yet dead to every transaction): with a batch job per
# recorded batch all running at once, a 100,000-recipient campaign kept ~100 batches open
# for seconds each and the claims' work grew with the campaign. Four lanes of 50 sends in
# flight keep the providers busy. A job that finds them taken leaves one job for the next
# LANE_RETRY_SECONDS step and ends: the lanes' own jobs go on at once while their batches are
# full, so this only picks up messages recorded after a lane's last claim. (A step of
# seconds, not one: a campaign paced by a low send rate keeps its lanes busy for hours.)
SEND_LANES = 4
LANE_RETRY_SECONDS = 5


@dataclass(frozen=True)
class Recipient:
    location_id: str
    patient_id: str
    content: SmsContent | EmailContent
    # A scheduled send: not before this instant (the location's local send time).
    not_before: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    patient_id: str
    channel: str
    # None when the message could not be made for this patient (`problem` says why).
    message_id: str | None
    problem: str | None = None


def _address(patient: Patient, channel: str) -> str | None:
    return patient.mobile if channel == "sms" else patient.email


def _suppressed(
    patient: Patient | None, channel: str, opted_out: bool, listed: bool = False
) -> str | None:
    """The reasons `sending.suppression_reason` gives, from rows loaded for the batch."""
    if patient is None:
        return "patient_removed"
    if not _address(patient, channel):
        return "no_address"
    if patient.status == "deceased":
        return "patient_deceased"
    if not (patient.sms_consent if channel == "sms" else patient.email_consent):
        return "no_consent"
    if opted_out:
        return "opted_out"
    return "do_not_contact" if listed else None


async def _opted_out(
    session: AsyncSession, tenant_id: str, pairs: Sequence[tuple[Patient, str]]
) -> set[tuple[str, str]]:
    """(patient id, channel) of the pairs with an active opt-out, by patient or address."""
    by_channel: dict[str, list[Patient]] = defaultdict(list)
    for patient, channel in pairs:
        by_channel[channel].append(patient)
    found: set[tuple[str, str]] = set()
    for channel, patients in by_channel.items():
        addresses = [a for p in patients if (a := _address(p, channel))]
        rows = await repository.opt_outs_for(
            session, tenant_id, channel, [p.id for p in patients], addresses
        )
        ids = {r.patient_id for r in rows if r.patient_id}
        values = {r.contact_value for r in rows if r.contact_value}
        found |= {
            (p.id, channel) for p in patients if p.id in ids or _address(p, channel) in values
        }
    return found


async def _listed(
    session: AsyncSession, tenant_id: str, source_kind: str, patients: Sequence[Patient]
) -> set[str]:
    """Patients on the do-not-contact list, for marketing sources (campaigns, cadences)."""
    if source_kind not in PACED_SOURCES:
        return set()
    return await audiences_repository.do_not_contact_matches(session, tenant_id, patients)


async def _enqueue_batches(
    session: AsyncSession, tenant_id: str, source: MessageSource, times: set[datetime]
) -> None:
    for run_at in sorted(times):
        await jobs.enqueue(
            session,
            BATCH_TASK,
            tenant_id=tenant_id,
            args={"tenant_id": tenant_id, "source_kind": source.kind, "source_id": source.id},
            run_at=run_at,
        )


async def _wake_later(
    session: AsyncSession, tenant_id: str, source: MessageSource, at: datetime
) -> None:
    """A batch job for the source at the next LANE_RETRY_SECONDS step after `at`: however
    many jobs found the lanes taken within one step, one comes back."""
    step = LANE_RETRY_SECONDS
    second = (math.floor(at.timestamp()) // step + 1) * step
    await jobs.enqueue_once(
        session,
        BATCH_TASK,
        tenant_id=tenant_id,
        args={"tenant_id": tenant_id, "source_kind": source.kind, "source_id": source.id},
        run_at=datetime.fromtimestamp(second, UTC),
        dedupe_key=f"{BATCH_TASK}:{tenant_id}:{source.kind}:{source.id}:{second}",
    )


async def record_many(
    session: AsyncSession,
    *,
    tenant_id: str,
    source: MessageSource,
    recipients: Sequence[Recipient],
    settings: Settings,
    purpose: str | None = None,
) -> list[Recorded]:
    """Render and record each recipient's message (queued, or suppressed with the reason);
    a recipient already in the ledger keeps its message. Returns one `Recorded` each."""
    now = utcnow()
    existing = await repository.messages_by_keys(
        session, tenant_id, source.kind, source.id, [r.patient_id for r in recipients]
    )
    patients = await repository.patients_by_ids(
        session, tenant_id, sorted({r.patient_id for r in recipients})
    )
    locations: dict[str, Location | None] = {}
    for location_id in sorted({r.location_id for r in recipients}):
        locations[location_id] = await repository.get_location(session, tenant_id, location_id)
    preferences = await repository.preferences(session, tenant_id)
    allow_clinical = bool(preferences and preferences.allow_clinical_sms)
    checked: dict[int, set[str]] = {}
    # Booking links carry each location's widget key (read once per location).
    office = {
        loc_id: templates.office_values(
            loc,
            settings,
            await repository.booking_key(session, tenant_id, loc_id, public_base(settings)),
        )
        for loc_id, loc in locations.items()
        if loc is not None
    }
    todo = [
        r
        for r in recipients
        if (r.patient_id, r.content.channel) not in existing and r.patient_id in patients
    ]
    opted = await _opted_out(
        session, tenant_id, [(patients[r.patient_id], r.content.channel) for r in todo]
    )
    listed = await _listed(session, tenant_id, source.kind, [patients[r.patient_id] for r in todo])
    purpose = purpose or DEFAULT_PURPOSE.get(source.kind)
    label = NOTE_LABELS.get(purpose or "", "Message")
    rows: list[dict[str, Any]] = []
    outcomes: list[Recorded] = []
    for recipient in recipients:
        channel = recipient.content.channel
        key = (recipient.patient_id, channel)
        if key in existing:
            outcomes.append(Recorded(recipient.patient_id, channel, existing[key]))
            continue
        patient = patients.get(recipient.patient_id)
        location = locations.get(recipient.location_id)
        if patient is None or location is None:
            outcomes.append(Recorded(recipient.patient_id, channel, None, "patient_removed"))
            continue
        try:
            used = checked.get(id(recipient.content))
            if used is None:
                used = checked[id(recipient.content)] = templates.check(
                    recipient.content, allow_clinical
                )
            values = office[location.id] | await templates.patient_values(
                session, patient, location, used
            )
            footer = None
            if isinstance(recipient.content, EmailContent):
                url = unsubscribe_url(settings, UnsubscribeTarget(tenant_id, patient.id, "email"))
                footer = templates.footer_for(location, url)
            rendered = templates.render(recipient.content, values, used, footer)
        except Problem as problem:
            outcomes.append(
                Recorded(recipient.patient_id, channel, None, problem.detail or problem.title)
            )
            continue
        reason = _suppressed(patient, channel, key in opted, patient.id in listed)
        message_id = new_id("message")
        deferred = (
            recipient.not_before if recipient.not_before and recipient.not_before > now else None
        )
        rows.append(
            {
                "tenant_id": tenant_id,
                "id": message_id,
                "location_id": location.id,
                "patient_id": patient.id,
                "recipient_key": patient.id,
                "channel": channel,
                "source_kind": source.kind,
                "source_id": source.id,
                "purpose": purpose,
                "to_address": _address(patient, channel),
                "subject": rendered.subject,
                "body_text": rendered.text,
                "body_html": rendered.html,
                "sms_encoding": rendered.sms.encoding if rendered.sms else None,
                "sms_segments": rendered.sms.segments if rendered.sms else None,
                "chart_note": f"{label} sent by {CHANNEL_LABELS[channel]}",
                "status": "suppressed" if reason else "queued",
                "failure_reason": reason,
                "attempts": 0,
                "deferred_until": deferred,
            }
        )
        outcomes.append(Recorded(patient.id, channel, message_id))
    inserted = await repository.insert_messages(session, rows)
    if len(inserted) < len(rows):
        # A concurrent recording of the same keys won for some: theirs are the messages.
        again = await repository.messages_by_keys(
            session, tenant_id, source.kind, source.id, [r["patient_id"] for r in rows]
        )
        outcomes = [
            o
            if o.message_id is None
            or o.message_id in inserted
            or (o.patient_id, o.channel) not in again
            else Recorded(o.patient_id, o.channel, again[(o.patient_id, o.channel)])
            for o in outcomes
        ]
    due = {
        r["deferred_until"] or now for r in rows if r["status"] == "queued" and r["id"] in inserted
    }
    await _enqueue_batches(session, tenant_id, source, due)
    # Send batches update their messages by id (api/core/statistics.py).
    await statistics.refresh_when_stale(session, "messages", len(inserted))
    return outcomes


class _Handoffs:
    """Commits each provider acceptance at once (a few milliseconds behind the provider)
    on a connection reserved for the batch before its first send, while the batch's own
    transaction stays open. Waiting for a pooled connection here would let the record
    fall seconds behind the provider under load, and every acceptance not yet recorded
    when a worker dies is handed over again."""

    def __init__(self, connection: AsyncConnection, tenant_id: str) -> None:
        self.sessions = async_sessionmaker(bind=connection, expire_on_commit=False)
        self.tenant_id = tenant_id
        self.waiting: list[dict[str, Any]] = []
        self.ready = asyncio.Event()
        self.done = False

    def add(self, message: Message, result: ProviderResult) -> None:
        self.waiting.append(
            {
                "tenant_id": self.tenant_id,
                "message_id": message.id,
                "provider_kind": message.provider_kind,
                "provider_message_id": result.provider_message_id,
                "status": result.status,
            }
        )
        self.ready.set()

    async def run(self) -> None:
        while not (self.done and not self.waiting):
            await self.ready.wait()
            if not self.done:
                # Gather what the next few milliseconds accept into one transaction: a
                # transaction per acceptance cost more CPU (ours and Postgres's) than
                # the sends; the sinks' idempotency covers the slightly wider window.
                await asyncio.sleep(ACK_INTERVAL)
            self.ready.clear()
            rows, self.waiting = self.waiting, []
            if rows:
                async with unit_of_work(self.sessions, self.tenant_id) as session:
                    await repository.insert_handoffs(session, rows)

    def finish(self) -> None:
        self.done = True
        self.ready.set()


async def _send_all(
    messages: Sequence[Message],
    providers: dict[str, ChannelProvider | None],
    settings: Settings,
    handoffs: _Handoffs,
    pacers: dict[str, Pacer],
) -> list[ProviderResult]:
    limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def _one(message: Message) -> ProviderResult:
        provider = providers[message.channel]
        if provider is None:
            return ProviderResult(None, "failed", "no_provider: configure one for this channel")
        async with limit:
            # The practice's send rate (if any): wait for this message's turn, taken
            # only by sends about to happen, so reservations stay a moment ahead.
            pacer = pacers.get(message.channel)
            if pacer is not None:
                await pacer.turn()
            result = await provider.send(_outbound(message, settings))
        # The sandbox records into this transaction itself; a real provider's acceptance
        # is recorded apart, so a rerun after a crash knows the message went.
        if result.status != "failed" and provider.kind != "sandbox":
            handoffs.add(message, result)
        return result

    writer = asyncio.create_task(handoffs.run())
    try:
        results = await asyncio.gather(*(_one(m) for m in messages))
    finally:
        handoffs.finish()
        await writer
    return list(results)


def _event(
    message: Message, status: str, now: datetime
) -> tuple[str, dict[str, Any], str, datetime]:
    return (
        f"message.{status}",
        {
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
        message.location_id,
        now,
    )


async def _hand_over(
    session: AsyncSession,
    tenant_id: str,
    ready: list[Message],
    settings: Settings,
    rates: Rates,
) -> list[ProviderResult]:
    """Each ready message's provider result: from its recorded handoff when a provider
    already took it (the batch that sent it died before it committed), else from a send."""
    providers = {
        channel: await provider_for(session, tenant_id, channel, settings)
        for channel in sorted({m.channel for m in ready})
    }
    for message in ready:
        provider = providers[message.channel]
        message.provider_kind = provider.kind if provider else None
    handed = await repository.handoffs(session, tenant_id, [m.id for m in ready])
    fresh = [m for m in ready if m.id not in handed]
    sent_now: dict[str, ProviderResult] = {}
    if fresh:
        limiter = current_limiter()
        pacers = {
            channel: limiter.pacer(
                tenant_id, channel, per_second, sum(1 for m in fresh if m.channel == channel)
            )
            for channel, per_second in rates.per_second.items()
        }
        async with session.bind.connect() as connection:  # type: ignore[union-attr]
            handoffs = _Handoffs(connection, tenant_id)
            results = await _send_all(fresh, providers, settings, handoffs, pacers)
        sent_now = dict(zip([m.id for m in fresh], results, strict=True))
    return [
        sent_now[m.id]
        if m.id in sent_now
        else ProviderResult(handed[m.id].provider_message_id, handed[m.id].status)  # type: ignore[arg-type]
        for m in ready
    ]


async def deliver_batch(
    session: AsyncSession, tenant_id: str, source_kind: str, source_id: str, settings: Settings
) -> dict[str, Any]:
    """The `messaging.send_batch` job: one attempt for up to BATCH_SIZE due messages."""
    now = utcnow()
    source = MessageSource(source_kind, source_id)
    lane = await repository.take_send_lane(session, tenant_id, source_kind, source_id, SEND_LANES)
    if lane is None:
        await _wake_later(session, tenant_id, source, now)
        return {"source_id": source_id, "sent": 0, "waiting": "lanes"}
    messages = await repository.claim_due(
        session, tenant_id, source_kind, source_id, now, BATCH_SIZE
    )
    if not messages:
        return {"source_id": source_id, "sent": 0}
    # The rows stay locked by this transaction; their new state is written below in one
    # statement, not object by object by the ORM.
    for message in messages:
        session.expunge(message)
    patients = await repository.patients_by_ids(
        session, tenant_id, sorted({m.patient_id for m in messages if m.patient_id})
    )
    opted = await _opted_out(
        session,
        tenant_id,
        [(patients[m.patient_id], m.channel) for m in messages if m.patient_id in patients],
    )
    listed = await _listed(session, tenant_id, source_kind, list(patients.values()))
    preferences = await repository.preferences(session, tenant_id)
    window = quiet_hours(preferences) if source_kind in PACED_SOURCES else None
    waits: dict[str, datetime | None] = {}
    later: set[datetime] = set()
    ready: list[Message] = []
    suppressed = 0
    for message in messages:
        patient = patients.get(message.patient_id or "")
        reason = _suppressed(
            patient,
            message.channel,
            (message.patient_id, message.channel) in opted,
            message.patient_id in listed,
        )
        if reason is None and window is not None:
            if message.location_id not in waits:
                location = await repository.get_location(session, tenant_id, message.location_id)
                waits[message.location_id] = (
                    next_allowed(now, location.timezone, window) if location else None
                )
            wait_until = waits[message.location_id]
            if wait_until is not None:
                # Quiet hours: the message waits (it is not dropped) for the local morning.
                message.deferred_until, message.updated_at = wait_until, now
                later.add(wait_until)
                continue
        paced = reason is None and source_kind in PACED_SOURCES
        if paced and await _over_frequency_cap(session, message, preferences, now):
            reason = "frequency_cap"
        if reason is not None:
            message.status, message.failure_reason, message.updated_at = "suppressed", reason, now
            suppressed += 1
            continue
        assert patient is not None
        message.to_address = _address(patient, message.channel)
        message.deferred_until = None
        ready.append(message)
    rates = Rates.from_settings(preferences.send_rates if preferences else None)
    results = await _hand_over(session, tenant_id, ready, settings, rates) if ready else []
    events: list[tuple[str, dict[str, Any], str | None, datetime]] = []
    contacts: list[Message] = []
    sent = failed = 0
    for message, result in zip(ready, results, strict=True):
        message.attempts += 1
        message.updated_at = now
        if result.status != "failed":
            message.provider_message_id = result.provider_message_id
            message.status, message.sent_at, message.failure_reason = "sent", now, None
            events.append(_event(message, "sent", now))
            contacts.append(message)
            if result.status == "delivered":
                message.status, message.delivered_at = "delivered", now
                events.append(_event(message, "delivered", now))
            sent += 1
        elif result.retryable and message.attempts <= len(RETRY_DELAYS):
            message.failure_reason = result.error
            message.deferred_until = now + timedelta(seconds=RETRY_DELAYS[message.attempts - 1])
            later.add(message.deferred_until)
        else:
            message.status, message.failed_at = "failed", now
            message.failure_reason = result.error or "failed"
            events.append(_event(message, "failed", now))
            failed += 1
    await repository.save_batch(session, messages)
    await _record_contacts(session, contacts, patients, now)
    await record_events(session, tenant_id=tenant_id, events=events)
    if len(messages) == BATCH_SIZE:
        # There may be more due: the next batch goes at once (another worker may take it).
        later.add(now)
    await _enqueue_batches(session, tenant_id, source, later)
    return {"source_id": source_id, "sent": sent, "failed": failed, "suppressed": suppressed}


async def _record_contacts(
    session: AsyncSession, messages: Sequence[Message], patients: dict[str, Patient], now: datetime
) -> None:
    """The communication log and the PMS chart note of each sent message, two INSERTs."""
    logs: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for message in messages:
        if message.patient_id is None:
            continue
        patient = patients.get(message.patient_id)
        logs.append(
            {
                "tenant_id": message.tenant_id,
                "id": new_id("communication"),
                "location_id": message.location_id,
                "external_id": f"chairfill:{message.id}",
                "patient_id": message.patient_id,
                "channel": message.channel,
                "direction": "outbound",
                "contacted_at": now,
                "source": "chairfill",
                "kind": message.purpose,
                "updated_at": now,
            }
        )
        notes.append(
            {
                "tenant_id": message.tenant_id,
                "id": new_id("writeback"),
                "location_id": message.location_id,
                "kind": "chart_note",
                "payload": {
                    "patient_id": message.patient_id,
                    "patient_external_id": patient.external_id if patient else None,
                    "note": message.chart_note or "Message sent",
                    "message_id": message.id,
                    "channel": message.channel,
                    "noted_at": now.isoformat(),
                },
                "status": "pending",
                "attempts": 0,
            }
        )
    await repository.insert_columns(session, CommunicationLog, logs)
    await repository.insert_columns(session, Writeback, notes)


async def release_held(session: AsyncSession, tenant_id: str, kind: str, source_id: str) -> int:
    """Queue a held source's messages again (a campaign resumed) and enqueue the batches
    that send them, at their deferral times or now. Returns how many."""
    now = utcnow()
    released = await repository.release_held(session, tenant_id, kind, source_id, now)
    times = {max(m.deferred_until or now, now) for m in released}
    await _enqueue_batches(session, tenant_id, MessageSource(kind, source_id), times)
    return len(released)


async def sweep_due(session: AsyncSession, tenant_id: str, kind: str, source_id: str) -> bool:
    """Enqueue a batch if any of the source's messages is queued and due; True if so."""
    if not await repository.has_due(session, tenant_id, kind, source_id, utcnow()):
        return False
    await _enqueue_batches(session, tenant_id, MessageSource(kind, source_id), {utcnow()})
    return True
