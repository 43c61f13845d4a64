"""Queries of the booking domain (tenant filter from `scoped`; RLS is the second wall)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.booking.models import ACTIVE_HOLD_STATUSES, BookingPolicy, BookingReport, Hold
from api.core.raw_reads import RawReads
from api.core.repository import scoped
from api.practice.models import (
    Appointment,
    AppointmentType,
    LocationSyncState,
    Operatory,
    Patient,
    Provider,
    ScheduleEntry,
    Writeback,
)
from api.tenancy.models import Location, Tenant

# Appointments that no longer occupy their time.
FREE_STATUSES = ("cancelled", "broken")


async def get_policy(
    session: AsyncSession, tenant_id: str, location_id: str
) -> BookingPolicy | None:
    stmt = scoped(BookingPolicy, tenant_id).where(BookingPolicy.location_id == location_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def bump_calendar_version(session: AsyncSession, tenant_id: str, location_id: str) -> None:
    stmt = (
        insert(BookingPolicy)
        .values(tenant_id=tenant_id, location_id=location_id, type_buffers={}, calendar_version=1)
        .on_conflict_do_update(
            index_elements=["tenant_id", "location_id"],
            set_={"calendar_version": BookingPolicy.calendar_version + 1},
        )
    )
    await session.execute(stmt)


async def upsert_policy(
    session: AsyncSession, tenant_id: str, location_id: str, values: dict[str, Any]
) -> BookingPolicy:
    stmt = (
        insert(BookingPolicy)
        .values(tenant_id=tenant_id, location_id=location_id, calendar_version=1, **values)
        .on_conflict_do_update(
            index_elements=["tenant_id", "location_id"],
            set_={
                **values,
                "calendar_version": BookingPolicy.calendar_version + 1,
                "updated_at": func.now(),
            },
        )
        .returning(BookingPolicy)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def sync_state(
    session: AsyncSession, tenant_id: str, location_id: str
) -> LocationSyncState | None:
    stmt = scoped(LocationSyncState, tenant_id).where(LocationSyncState.location_id == location_id)
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class SlotContext:
    location: Location
    stale_data_threshold_minutes: int
    sync: LocationSyncState | None
    policy: BookingPolicy | None
    appointment_type: AppointmentType | None


def _slot_context_statement() -> Select[
    Location, int, LocationSyncState, BookingPolicy, AppointmentType
]:
    return (
        select(
            Location,
            Tenant.stale_data_threshold_minutes,
            LocationSyncState,
            BookingPolicy,
            AppointmentType,
        )
        .join(Tenant, Tenant.id == Location.tenant_id)
        .outerjoin(
            LocationSyncState,
            (LocationSyncState.tenant_id == Location.tenant_id)
            & (LocationSyncState.location_id == Location.id),
        )
        .outerjoin(
            BookingPolicy,
            (BookingPolicy.tenant_id == Location.tenant_id)
            & (BookingPolicy.location_id == Location.id),
        )
        .outerjoin(
            AppointmentType,
            (AppointmentType.tenant_id == Location.tenant_id)
            & (AppointmentType.location_id == Location.id)
            & (AppointmentType.id == bindparam("type_id"))
            & AppointmentType.deleted_at.is_(None),
        )
        .where(
            Location.tenant_id == bindparam("tenant_id"), Location.id == bindparam("location_id")
        )
    )


# Built once: this runs on every slot request, cache hits included, and building the
# statement cost more than running it.
_SLOT_CONTEXT = _slot_context_statement()


async def slot_context(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    visible: frozenset[str] | None,
    type_id: str,
) -> SlotContext | None:
    """Everything a slot answer needs before the calendar, in one round trip: the
    location (None when the caller may not see it), the tenant's staleness threshold, the
    sync state (watermark and batch counters), the booking policy and the live type."""
    if visible is not None and location_id not in visible:
        return None
    params = {"tenant_id": tenant_id, "location_id": location_id, "type_id": type_id}
    row = (await session.execute(_SLOT_CONTEXT, params)).one_or_none()
    if row is None:
        return None
    location, threshold, sync, policy, appointment_type = row
    return SlotContext(location, threshold, sync, policy, appointment_type)


_SLOT_PROBE = "SELECT * FROM booking_slot_probe($1, $2, $3, $4, $5)"


async def slot_probe(
    reads: RawReads,
    *,
    access_token_hash: str | None,
    publishable_key: str | None,
    location_id: str,
    now: datetime,
    calendar_entities: Iterable[str],
) -> asyncpg.Record | None:
    """A credential's caller and the location's slot state in one statement (migration
    0015: the tenant comes from the credential, the location is read behind row-level
    security and the explicit tenant filter). No row: the credential is unknown, revoked
    or expired; a null `timezone`: the location is not the caller's tenant's."""
    return await reads.fetchrow(
        _SLOT_PROBE,
        access_token_hash,
        publishable_key,
        location_id,
        now,
        list(calendar_entities),
    )


# --- the calendar's parts ------------------------------------------------------------------


async def appointment_type(
    session: AsyncSession, tenant_id: str, location_id: str, type_id: str
) -> AppointmentType | None:
    stmt = scoped(AppointmentType, tenant_id).where(
        AppointmentType.location_id == location_id,
        AppointmentType.id == type_id,
        AppointmentType.deleted_at.is_(None),
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def self_bookable_types(
    session: AsyncSession, tenant_id: str, location_id: str
) -> list[AppointmentType]:
    stmt = (
        scoped(AppointmentType, tenant_id)
        .where(
            AppointmentType.location_id == location_id,
            AppointmentType.deleted_at.is_(None),
            AppointmentType.self_bookable,
        )
        .order_by(AppointmentType.name, AppointmentType.id)
    )
    return list((await session.execute(stmt)).scalars())


async def live_resources(
    session: AsyncSession, model: type[Provider] | type[Operatory], tenant_id: str, location_id: str
) -> list[Any]:
    stmt = (
        scoped(model, tenant_id)
        .where(model.location_id == location_id, model.deleted_at.is_(None), model.active)
        .order_by(model.id)
    )
    return list((await session.execute(stmt)).scalars())


async def schedule_entries(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    first_day: date,
    last_day: date,
    window_start: datetime,
    window_end: datetime,
) -> list[ScheduleEntry]:
    stmt = scoped(ScheduleEntry, tenant_id).where(
        ScheduleEntry.location_id == location_id,
        ScheduleEntry.deleted_at.is_(None),
        or_(
            ScheduleEntry.kind == "weekly",
            (ScheduleEntry.kind == "exception") & ScheduleEntry.date.between(first_day, last_day),
            (ScheduleEntry.kind == "block")
            & (ScheduleEntry.start_at < window_end)
            & (ScheduleEntry.end_at > window_start),
        ),
    )
    return list((await session.execute(stmt.order_by(ScheduleEntry.id))).scalars())


class BusyAppointment(NamedTuple):
    start_at: datetime
    end_at: datetime
    provider_id: str | None
    operatory_id: str | None
    appointment_type_id: str | None


async def busy_appointments(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    window_start: datetime,
    window_end: datetime,
    exclude_id: str | None = None,
) -> list[BusyAppointment]:
    """When and whom the appointments in the window occupy: only those columns, as plain
    rows (a month of a busy location is thousands of appointments, and building them as
    ORM objects held the event loop for ~30 ms of a ~50 ms slot computation)."""
    stmt = select(
        Appointment.start_at,
        Appointment.end_at,
        Appointment.provider_id,
        Appointment.operatory_id,
        Appointment.appointment_type_id,
    ).where(
        Appointment.tenant_id == tenant_id,
        Appointment.location_id == location_id,
        Appointment.deleted_at.is_(None),
        Appointment.status.not_in(FREE_STATUSES),
        Appointment.start_at < window_end,
        Appointment.end_at > window_start,
    )
    if exclude_id is not None:
        stmt = stmt.where(Appointment.id != exclude_id)
    return [BusyAppointment(*row) for row in await session.execute(stmt)]


async def active_holds(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[Hold]:
    stmt = scoped(Hold, tenant_id).where(
        Hold.location_id == location_id,
        Hold.status.in_(ACTIVE_HOLD_STATUSES),
        Hold.hold_expires_at > now,
        Hold.start_at < window_end,
        Hold.end_at > window_start,
    )
    return list((await session.execute(stmt)).scalars())


# --- holds and appointments ----------------------------------------------------------------


async def get_hold(
    session: AsyncSession,
    tenant_id: str,
    hold_id: str,
    visible: frozenset[str] | None,
    *,
    for_update: bool = False,
) -> Hold | None:
    stmt = scoped(Hold, tenant_id, visible).where(Hold.id == hold_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_appointment(
    session: AsyncSession,
    tenant_id: str,
    appointment_id: str,
    visible: frozenset[str] | None,
    *,
    for_update: bool = False,
) -> Appointment | None:
    stmt = scoped(Appointment, tenant_id, visible).where(
        Appointment.id == appointment_id, Appointment.deleted_at.is_(None)
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def hold_of_appointment(
    session: AsyncSession, tenant_id: str, appointment_id: str
) -> Hold | None:
    stmt = scoped(Hold, tenant_id).where(Hold.appointment_id == appointment_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lapsed_holds(
    session: AsyncSession, tenant_id: str, now: datetime, limit: int = 500
) -> list[Hold]:
    """Holds past their expiry that still say so, locked (skipping ones another run has)."""
    stmt = (
        scoped(Hold, tenant_id)
        .where(Hold.status.in_(ACTIVE_HOLD_STATUSES), Hold.hold_expires_at <= now)
        .order_by(Hold.hold_expires_at, Hold.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def tenants_with_lapsed_holds(session: AsyncSession, now: datetime) -> list[str]:
    """System query (every tenant) for the expiry fan-out."""
    stmt = (
        select(Hold.tenant_id)
        .where(Hold.status.in_(ACTIVE_HOLD_STATUSES), Hold.hold_expires_at <= now)
        .distinct()
    )
    return [row[0] for row in await session.execute(stmt)]


async def matching_patients(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    *,
    first_name: str,
    last_name: str,
    birthdate: date,
    mobile: str | None,
    email: str | None,
) -> list[Patient]:
    contact = []
    if mobile:
        contact.append(Patient.mobile == mobile)
    if email:
        contact.append(func.lower(Patient.email) == email.lower())
    if not contact:
        return []
    stmt = scoped(Patient, tenant_id).where(
        Patient.location_id == location_id,
        Patient.deleted_at.is_(None),
        func.lower(Patient.first_name) == first_name.strip().lower(),
        func.lower(Patient.last_name) == last_name.strip().lower(),
        Patient.birthdate == birthdate,
        or_(*contact),
    )
    return list((await session.execute(stmt.order_by(Patient.id))).scalars())


# --- the daily report ----------------------------------------------------------------------


async def holds_touching(
    session: AsyncSession, tenant_id: str, location_id: str, start: datetime, end: datetime
) -> list[Hold]:
    """Holds confirmed or sent to the front desk within [start, end)."""
    stmt = scoped(Hold, tenant_id).where(
        Hold.location_id == location_id,
        or_(
            Hold.confirmed_at.between(start, end) & (Hold.confirmed_at < end),
            Hold.exception_at.between(start, end) & (Hold.exception_at < end),
        ),
    )
    return list((await session.execute(stmt.order_by(Hold.id))).scalars())


async def creation_writebacks(
    session: AsyncSession, tenant_id: str, location_id: str, appointment_ids: Iterable[str]
) -> dict[str, Writeback]:
    ids = sorted(set(appointment_ids))
    if not ids:
        return {}
    stmt = scoped(Writeback, tenant_id).where(
        Writeback.location_id == location_id,
        Writeback.kind == "appointment_create",
        Writeback.payload["appointment_id"].astext.in_(ids),
    )
    return {w.payload["appointment_id"]: w for w in (await session.execute(stmt)).scalars()}


async def store_report(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    report_date: date,
    report: dict[str, Any],
    now: datetime,
) -> None:
    stmt = (
        insert(BookingReport)
        .values(
            tenant_id=tenant_id,
            location_id=location_id,
            report_date=report_date,
            report=report,
            generated_at=now,
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "location_id", "report_date"],
            set_={"report": report, "generated_at": now},
        )
    )
    await session.execute(stmt)


async def stored_report(
    session: AsyncSession, tenant_id: str, location_id: str, report_date: date
) -> BookingReport | None:
    stmt = scoped(BookingReport, tenant_id).where(
        BookingReport.location_id == location_id, BookingReport.report_date == report_date
    )
    return (await session.execute(stmt)).scalar_one_or_none()
