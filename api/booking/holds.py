"""Holds and confirmations: request, check, hold, confirm.

A hold re-checks the start against the live calendar (the engine's `slot_at`), then
claims the cells of one (provider, operatory) pair (claims.py: the database refuses a
second claim). Confirming matches the patient (name + birthdate + mobile or email):
exactly one chart is used, none creates the patient (source online), several send the
booking to the front desk as a task (202, `booking.exception`) instead of guessing. A
confirmed hold becomes an appointment (scheduled, source online) with its PMS write-back
and a `booking.confirmed` event, all in one transaction.

The patient's confirmation message is recorded in the same transaction (confirmation.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.booking import cache, claims, repository
from api.booking.calendar import buffers_of, engine_type, load_calendar, require_type, rules_of
from api.booking.confirmation import Confirmation, send_confirmation
from api.booking.models import Hold
from api.booking.patients import contact_of, create_payload, new_patient
from api.booking.problems import BookingConflict
from api.booking.schemas import AppointmentOut, ConfirmOut, HoldCreate, HoldOut, PatientDetails
from api.booking.service import BookingDeps, require_location
from api.cadences import exits as cadence_exits
from api.cadences import invites
from api.core.errors import NotFound
from api.core.ids import new_id
from api.engines import slots as engine
from api.events import record_event
from api.practice import freshness
from api.practice.models import Appointment, Patient
from api.practice.writeback import enqueue_writeback
from api.tasks import service as tasks_service
from api.tenancy.models import Location


def hold_out(hold: Hold) -> HoldOut:
    return HoldOut(
        id=hold.id,
        status=hold.status,
        location_id=hold.location_id,
        appointment_type_id=hold.appointment_type_id,
        provider_id=hold.provider_id,
        operatory_id=hold.operatory_id,
        start=hold.start_at,
        end=hold.end_at,
        hold_expires_at=hold.hold_expires_at,
        appointment_id=hold.appointment_id,
        patient_id=hold.patient_id,
        task_id=hold.task_id,
    )


def appointment_out(appointment: Appointment) -> AppointmentOut:
    return AppointmentOut(
        id=appointment.id,
        location_id=appointment.location_id,
        patient_id=appointment.patient_id,
        provider_id=appointment.provider_id,
        operatory_id=appointment.operatory_id,
        appointment_type_id=appointment.appointment_type_id,
        start=appointment.start_at,
        end=appointment.end_at,
        status=appointment.status,
        source=appointment.source,
    )


def slot_data(row: Hold | Appointment, zone: str) -> dict[str, object]:
    tz = ZoneInfo(zone)
    return {
        "location_id": row.location_id,
        "appointment_type_id": row.appointment_type_id,
        "provider_id": row.provider_id,
        "operatory_id": row.operatory_id,
        "start": row.start_at.astimezone(tz),
        "end": row.end_at.astimezone(tz),
    }


def refusal_conflict(refusal: engine.Refusal) -> BookingConflict:
    return BookingConflict(refusal.reason.value, refusal.detail)


async def create_hold(
    session: AsyncSession, principal: Principal, deps: BookingDeps, data: HoldCreate, now: datetime
) -> HoldOut:
    location = await require_location(session, principal, data.location_id)
    tenant_id = location.tenant_id
    await freshness.require_fresh(session, tenant_id, location.id, now)
    policy = await repository.get_policy(session, tenant_id, location.id)
    row = await require_type(
        session, tenant_id, location.id, data.appointment_type_id, "appointment_type_id"
    )
    buffers = buffers_of(policy, row.id)
    loaded = await load_calendar(
        session, location, policy, start=data.start, end=data.start + timedelta(minutes=1), now=now
    )
    found = engine.slot_at(
        loaded.calendar,
        engine_type(row, buffers),
        rules_of(policy, deps.settings),
        now=now,
        start=data.start,
        provider_id=data.provider_id,
        operatory_id=data.operatory_id,
    )
    if isinstance(found, engine.Refusal):
        raise refusal_conflict(found)
    hold_id = new_id("hold")
    expires = now + timedelta(seconds=deps.settings.hold_ttl_seconds)
    span_start = found.start_utc - timedelta(minutes=buffers.before)
    span_end = found.end_utc + timedelta(minutes=buffers.after)
    for provider_id, operatory_id in found.pairs():
        try:
            count = await claims.claim(
                session,
                tenant_id=tenant_id,
                location_id=location.id,
                provider_id=provider_id,
                operatory_id=operatory_id,
                span_start=span_start,
                span_end=span_end,
                owner_start=found.start_utc,
                hold_id=hold_id,
                appointment_id=None,
                hold_expires_at=expires,
                now=now,
            )
        except claims.ClaimTaken:
            continue
        break
    else:
        raise BookingConflict(
            "taken", f"{found.start_local.isoformat()} was just taken by another booking."
        )
    hold = Hold(
        tenant_id=tenant_id,
        id=hold_id,
        location_id=location.id,
        appointment_type_id=row.id,
        provider_id=provider_id,
        operatory_id=operatory_id,
        start_at=found.start_utc,
        end_at=found.end_utc,
        buffer_before_minutes=buffers.before,
        buffer_after_minutes=buffers.after,
        status="held",
        hold_expires_at=expires,
        created_by=principal.id,
        claim_count=count,
    )
    session.add(hold)
    await session.flush()
    await record_event(
        session,
        tenant_id=tenant_id,
        type="booking.held",
        location_id=location.id,
        occurred_at=now,
        data={"hold_id": hold.id, "hold_expires_at": expires, **slot_data(hold, location.timezone)},
    )
    await cache.calendar_changed(session, tenant_id, location.id)
    return hold_out(hold)


async def get_hold(
    session: AsyncSession, principal: Principal, hold_id: str, *, for_update: bool = False
) -> Hold:
    hold = await repository.get_hold(
        session, principal.tenant_id, hold_id, principal.location_ids, for_update=for_update
    )
    # A widget's key sees only the holds it placed.
    if hold is None or (principal.kind == "publishable_key" and hold.created_by != principal.id):
        raise NotFound(f"There is no hold {hold_id}.")
    return hold


async def confirm_hold(
    session: AsyncSession,
    principal: Principal,
    deps: BookingDeps,
    hold_id: str,
    details: PatientDetails,
    now: datetime,
) -> ConfirmOut:
    hold = await get_hold(session, principal, hold_id, for_update=True)
    location = await require_location(session, principal, hold.location_id)
    mobile, email = contact_of(details, location.country or "US")
    if hold.status == "confirmed":
        raise BookingConflict("hold_used", f"Hold {hold_id} was already confirmed.")
    if hold.status == "exception":
        raise BookingConflict("hold_used", f"Hold {hold_id} is waiting for the front desk.")
    if hold.status != "held" or hold.hold_expires_at <= now:
        raise BookingConflict("hold_expired", f"Hold {hold_id} expired; place a new hold.")
    tenant_id = hold.tenant_id
    invite = None
    if details.invite:
        invite = await invites.invite_for_booking(
            session, tenant_id, location.id, details.invite, now
        )
        if mobile is None and email is None:
            # The link came to the patient's own phone or inbox: those identify them.
            mobile, email = await invites.invited_contact(session, invite)
    matches = await repository.matching_patients(
        session,
        tenant_id,
        location.id,
        first_name=details.first_name,
        last_name=details.last_name,
        birthdate=details.birthdate,
        mobile=mobile,
        email=email,
    )
    if len(matches) > 1:
        return await _send_to_front_desk(session, deps, hold, location, details, matches, now)
    appointment_id = new_id("appointment")
    kept = await claims.renew_hold_claims(
        session,
        tenant_id=tenant_id,
        hold_id=hold.id,
        now=now,
        hold_expires_at=None,
        appointment_id=appointment_id,
    )
    if kept != hold.claim_count:
        raise BookingConflict("hold_expired", f"Hold {hold_id} lapsed and its slot was taken.")
    created = not matches
    patient = matches[0] if matches else new_patient(hold, details, mobile, email)
    if created:
        session.add(patient)
        await session.flush()
    appointment = Appointment(
        tenant_id=tenant_id,
        id=appointment_id,
        location_id=location.id,
        external_id=f"online:{appointment_id}",
        patient_id=patient.id,
        provider_id=hold.provider_id,
        operatory_id=hold.operatory_id,
        appointment_type_id=hold.appointment_type_id,
        start_at=hold.start_at,
        end_at=hold.end_at,
        status="scheduled",
        is_tentative=False,
        source="online",
    )
    session.add(appointment)
    hold.status, hold.confirmed_at = "confirmed", now
    hold.appointment_id, hold.patient_id = appointment.id, patient.id
    await session.flush()
    await enqueue_writeback(
        session,
        tenant_id=tenant_id,
        location_id=location.id,
        kind="appointment_create",
        payload=create_payload(appointment, patient, created, details.notes, hold),
    )
    await record_event(
        session,
        tenant_id=tenant_id,
        type="booking.confirmed",
        location_id=location.id,
        occurred_at=now,
        data={
            "hold_id": hold.id,
            "appointment_id": appointment.id,
            "patient_id": patient.id,
            "patient_created": created,
            **slot_data(appointment, location.timezone),
        },
    )
    confirmation = Confirmation(
        tenant_id, location, hold, appointment, patient, created, details.notes
    )
    await send_confirmation(session, confirmation, deps.app_settings)
    if invite is not None:
        await invites.attribute_booking(session, invite, patient.id, appointment.id, now)
    # Booked online: the patient's win-back cadences end now, before any next step.
    await cadence_exits.apply_exits(session, tenant_id, now, [patient.id])
    await cache.calendar_changed(session, tenant_id, location.id)
    return ConfirmOut(
        status="confirmed",
        hold=hold_out(hold),
        appointment=appointment_out(appointment),
        patient_id=patient.id,
        patient_created=created,
    )


async def _send_to_front_desk(
    session: AsyncSession,
    deps: BookingDeps,
    hold: Hold,
    location: Location,
    details: PatientDetails,
    matches: list[Patient],
    now: datetime,
) -> ConfirmOut:
    """Several charts match: a person decides. The slot stays held meanwhile."""
    expires = now + timedelta(seconds=deps.settings.exception_hold_ttl_seconds)
    kept = await claims.renew_hold_claims(
        session, tenant_id=hold.tenant_id, hold_id=hold.id, now=now, hold_expires_at=expires
    )
    if kept != hold.claim_count:
        raise BookingConflict("hold_expired", f"Hold {hold.id} lapsed and its slot was taken.")
    candidates = [p.id for p in matches]
    start_local = hold.start_at.astimezone(ZoneInfo(location.timezone)).strftime("%Y-%m-%d %H:%M")
    task = await tasks_service.create_booking_exception(
        session,
        tenant_id=hold.tenant_id,
        location_id=location.id,
        hold_id=hold.id,
        title=f"Online booking {start_local}: {details.first_name} {details.last_name} "
        f"matches {len(matches)} charts",
        notes=(
            f"Born {details.birthdate.isoformat()}; mobile {details.mobile or '-'}; email "
            f"{details.email or '-'}. Candidate charts: {', '.join(candidates)}."
            + (f" Patient's note: {details.notes}" if details.notes else "")
        ),
        due_at=min(expires, hold.start_at),
    )
    hold.status, hold.exception_at = "exception", now
    hold.hold_expires_at, hold.task_id = expires, task.id
    await session.flush()
    await record_event(
        session,
        tenant_id=hold.tenant_id,
        type="booking.exception",
        location_id=location.id,
        occurred_at=now,
        data={
            "hold_id": hold.id,
            "task_id": task.id,
            "reason": "ambiguous_patient_match",
            "candidate_patient_ids": candidates,
            **slot_data(hold, location.timezone),
        },
    )
    await cache.calendar_changed(session, hold.tenant_id, location.id)
    return ConfirmOut(status="needs_review", hold=hold_out(hold), task_id=task.id)
