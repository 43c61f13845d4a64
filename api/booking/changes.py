"""Changes after booking: reschedule and cancel an appointment (each with its PMS
write-back and event), and the expiry of holds that were never confirmed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.booking import cache, claims, repository
from api.booking.calendar import buffers_of, engine_type, load_calendar, rules_of
from api.booking.holds import appointment_out, refusal_conflict, slot_data
from api.booking.problems import BookingConflict
from api.booking.schemas import AppointmentOut, CancelIn, RescheduleIn
from api.booking.service import BookingDeps, require_location
from api.core.errors import NotFound, ValidationProblem
from api.engines import slots as engine
from api.events import record_event
from api.practice import freshness
from api.practice.models import Appointment
from api.practice.writeback import enqueue_writeback
from api.tenancy import repository as tenancy_repository


async def _appointment(
    session: AsyncSession, principal: Principal, appointment_id: str
) -> Appointment:
    appointment = await repository.get_appointment(
        session, principal.tenant_id, appointment_id, principal.location_ids, for_update=True
    )
    if appointment is None:
        raise NotFound(f"There is no appointment {appointment_id}.")
    return appointment


def _pms_reference(appointment: Appointment) -> str | None:
    return None if appointment.external_id.startswith("online:") else appointment.external_id


async def reschedule(
    session: AsyncSession,
    principal: Principal,
    deps: BookingDeps,
    appointment_id: str,
    data: RescheduleIn,
    now: datetime,
) -> AppointmentOut:
    appointment = await _appointment(session, principal, appointment_id)
    if appointment.status in repository.FREE_STATUSES:
        raise BookingConflict(
            "appointment_cancelled", f"Appointment {appointment_id} is {appointment.status}."
        )
    if appointment.appointment_type_id is None:
        raise ValidationProblem(
            "This appointment has no appointment type, so its length and rules are unknown; "
            "reschedule it in the PMS.",
            errors=[{"field": "appointment_id", "message": "appointment without a type"}],
        )
    location = await require_location(session, principal, appointment.location_id)
    tenant_id = location.tenant_id
    await freshness.require_fresh(session, tenant_id, location.id, now)
    policy = await repository.get_policy(session, tenant_id, location.id)
    row = await repository.appointment_type(
        session, tenant_id, location.id, appointment.appointment_type_id
    )
    if row is None:
        raise ValidationProblem(
            "The appointment's type is gone from the PMS; reschedule it in the PMS.",
            errors=[{"field": "appointment_id", "message": "appointment type no longer exists"}],
        )
    buffers = buffers_of(policy, row.id)
    loaded = await load_calendar(
        session,
        location,
        policy,
        start=data.start,
        end=data.start + timedelta(minutes=1),
        now=now,
        exclude_appointment_id=appointment.id,
    )
    found = engine.slot_at(
        loaded.calendar,
        engine_type(row, buffers),
        rules_of(policy, deps.settings),
        now=now,
        start=data.start,
        provider_id=data.provider_id or appointment.provider_id,
        operatory_id=data.operatory_id,
    )
    if isinstance(found, engine.Refusal) and data.provider_id is None:
        # The same provider cannot: anyone who takes the type may.
        found = engine.slot_at(
            loaded.calendar,
            engine_type(row, buffers),
            rules_of(policy, deps.settings),
            now=now,
            start=data.start,
            operatory_id=data.operatory_id,
        )
    if isinstance(found, engine.Refusal):
        raise refusal_conflict(found)
    hold = await repository.hold_of_appointment(session, tenant_id, appointment.id)
    await claims.release_appointment(session, tenant_id, appointment.id)
    pairs = sorted(found.pairs(), key=lambda p: p[1] != appointment.operatory_id)
    for provider_id, operatory_id in pairs:
        try:
            await claims.claim(
                session,
                tenant_id=tenant_id,
                location_id=location.id,
                provider_id=provider_id,
                operatory_id=operatory_id,
                span_start=found.start_utc - timedelta(minutes=buffers.before),
                span_end=found.end_utc + timedelta(minutes=buffers.after),
                owner_start=found.start_utc,
                hold_id=hold.id if hold else None,
                appointment_id=appointment.id,
                hold_expires_at=None,
                now=now,
            )
        except claims.ClaimTaken:
            continue
        break
    else:
        raise BookingConflict("taken", f"{found.start_local.isoformat()} was just taken.")
    previous_start, previous_end = appointment.start_at, appointment.end_at
    appointment.start_at, appointment.end_at = found.start_utc, found.end_utc
    appointment.provider_id, appointment.operatory_id = provider_id, operatory_id
    appointment.updated_at = now
    await session.flush()
    await enqueue_writeback(
        session,
        tenant_id=tenant_id,
        location_id=location.id,
        kind="appointment_update",
        payload={
            "appointment_id": appointment.id,
            "pms_appointment_id": _pms_reference(appointment),
            "start_at": appointment.start_at.isoformat(),
            "end_at": appointment.end_at.isoformat(),
            "provider_id": provider_id,
            "operatory_id": operatory_id,
            "previous_start_at": previous_start.isoformat(),
        },
    )
    await record_event(
        session,
        tenant_id=tenant_id,
        type="booking.rescheduled",
        location_id=location.id,
        occurred_at=now,
        data={
            "appointment_id": appointment.id,
            "previous_start": previous_start,
            "previous_end": previous_end,
            **slot_data(appointment, location.timezone),
        },
    )
    await cache.calendar_changed(session, tenant_id, location.id)
    return appointment_out(appointment)


async def cancel(
    session: AsyncSession,
    principal: Principal,
    appointment_id: str,
    data: CancelIn,
    now: datetime,
) -> AppointmentOut:
    """Cancel an appointment; cancelling a cancelled one answers it unchanged."""
    appointment = await _appointment(session, principal, appointment_id)
    if appointment.status == "cancelled":
        return appointment_out(appointment)
    if appointment.status in ("completed", "broken", "no_show"):
        raise BookingConflict(
            "appointment_closed", f"Appointment {appointment_id} is {appointment.status}."
        )
    location = await require_location(session, principal, appointment.location_id)
    appointment.status = "cancelled"
    appointment.updated_at = now
    await claims.release_appointment(session, location.tenant_id, appointment.id)
    await session.flush()
    await enqueue_writeback(
        session,
        tenant_id=location.tenant_id,
        location_id=location.id,
        kind="appointment_cancel",
        payload={
            "appointment_id": appointment.id,
            "pms_appointment_id": _pms_reference(appointment),
            "reason": data.reason,
        },
    )
    await record_event(
        session,
        tenant_id=location.tenant_id,
        type="booking.cancelled",
        location_id=location.id,
        occurred_at=now,
        data={
            "appointment_id": appointment.id,
            "reason": data.reason,
            **slot_data(appointment, location.timezone),
        },
    )
    await cache.calendar_changed(session, location.tenant_id, location.id)
    return appointment_out(appointment)


async def expire_holds(session: AsyncSession, tenant_id: str, now: datetime) -> int:
    """Expire the tenant's lapsed holds: free their claims, say `booking.expired`. Rows
    another run holds are skipped, so concurrent runs never expire a hold twice."""
    holds = await repository.lapsed_holds(session, tenant_id, now)
    zones: dict[str, str] = {}
    for hold in holds:
        if hold.location_id not in zones:
            location = await tenancy_repository.get_location(
                session, tenant_id, hold.location_id, None
            )
            zones[hold.location_id] = location.timezone if location else "UTC"
        previous = hold.status
        hold.status, hold.expired_at = "expired", now
        await claims.release_hold(session, tenant_id, hold.id)
        await record_event(
            session,
            tenant_id=tenant_id,
            type="booking.expired",
            location_id=hold.location_id,
            occurred_at=now,
            data={
                "hold_id": hold.id,
                "expired_at": now,
                "previous_status": previous,
                **slot_data(hold, zones[hold.location_id]),
            },
        )
    await session.flush()
    for location_id in zones:
        await cache.calendar_changed(session, tenant_id, location_id)
    return len(holds)
