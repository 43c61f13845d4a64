"""The availability engine's inputs, read from the practice mirror and the booking tables.

One location's calendar for a window: providers (weekly hours, dated exceptions), active
operatories, and everything busy in the window: provider and operatory blocks, every
appointment that is not cancelled (with its type's buffers: an online booking occupies its
buffers, and its calendar claims cover them too, so the engine and the claims agree) and
every hold that has not expired. Rules come from the location's booking policy, or the
settings defaults.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from api.booking import repository
from api.booking.models import BookingPolicy
from api.core.errors import ValidationProblem
from api.core.settings import BookingSettings
from api.engines import slots as engine
from api.practice.models import AppointmentType, Operatory, Provider, ScheduleEntry
from api.tenancy.models import Location

# Busy intervals are read this far beyond the searched window (buffers, overnight blocks).
MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Buffers:
    before: int = 0
    after: int = 0


class PolicyRules(Protocol):
    """The parts of a booking policy the engine's rules come from (a `BookingPolicy`, or
    the same columns read without the ORM)."""

    @property
    def min_notice_minutes(self) -> int | None: ...
    @property
    def horizon_days(self) -> int | None: ...
    @property
    def step_minutes(self) -> int | None: ...


def rules_of(policy: PolicyRules | None, settings: BookingSettings) -> engine.BookingRules:
    def pick(value: int | None, default: int) -> int:
        return default if value is None else value

    return engine.BookingRules(
        min_notice_minutes=pick(
            policy.min_notice_minutes if policy else None, settings.default_min_notice_minutes
        ),
        horizon_days=pick(policy.horizon_days if policy else None, settings.default_horizon_days),
        step_minutes=pick(policy.step_minutes if policy else None, settings.default_step_minutes),
    )


def buffers_of(policy: BookingPolicy | None, appointment_type_id: str | None) -> Buffers:
    if policy is None or appointment_type_id is None:
        return Buffers()
    entry: dict[str, Any] = (policy.type_buffers or {}).get(appointment_type_id) or {}
    return Buffers(int(entry.get("before", 0)), int(entry.get("after", 0)))


async def require_type(
    session: AsyncSession, tenant_id: str, location_id: str, type_id: str, field: str
) -> AppointmentType:
    found = await repository.appointment_type(session, tenant_id, location_id, type_id)
    if found is None:
        raise unknown_type(location_id, type_id, field)
    return found


def unknown_type(location_id: str, type_id: str, field: str) -> ValidationProblem:
    return ValidationProblem(
        f"There is no appointment type {type_id} at location {location_id}.",
        errors=[{"field": field, "message": "unknown appointment type at this location"}],
    )


def engine_type(row: AppointmentType, buffers: Buffers) -> engine.AppointmentType:
    return engine.AppointmentType(
        duration_minutes=row.duration_minutes,
        allowed_provider_ids=frozenset(row.provider_ids or ()),
        allowed_operatory_ids=frozenset(row.operatory_ids or ()),
        self_bookable=row.self_bookable,
        buffer_before_minutes=buffers.before,
        buffer_after_minutes=buffers.after,
    )


@dataclass(frozen=True)
class LoadedCalendar:
    calendar: engine.LocationCalendar
    # The soonest expiry among the holds read: cached answers must not outlive it.
    next_hold_expiry: datetime | None


def _providers(
    provider_ids: list[str], entries: list[ScheduleEntry]
) -> tuple[engine.Provider, ...]:
    weekly: dict[str, dict[int, list[engine.Hours]]] = defaultdict(lambda: defaultdict(list))
    exceptions: dict[str, dict[date, list[engine.Hours]]] = defaultdict(dict)
    for entry in entries:
        if entry.provider_id is None:
            continue
        if entry.kind == "weekly" and entry.weekday is not None:
            assert entry.start_time is not None and entry.end_time is not None
            weekly[entry.provider_id][entry.weekday].append(
                engine.Hours(entry.start_time, entry.end_time)
            )
        elif entry.kind == "exception" and entry.date is not None:
            day = exceptions[entry.provider_id].setdefault(entry.date, [])
            if not entry.is_off and entry.start_time and entry.end_time:
                day.append(engine.Hours(entry.start_time, entry.end_time))
    return tuple(
        engine.Provider.weekly(
            provider_id,
            {
                day: sorted(hours, key=lambda h: h.start)
                for day, hours in weekly[provider_id].items()
            },
            [
                engine.DateException(on, tuple(sorted(hours, key=lambda h: h.start)))
                for on, hours in sorted(exceptions[provider_id].items())
            ],
        )
        for provider_id in provider_ids
    )


async def load_calendar(
    session: AsyncSession,
    location: Location,
    policy: BookingPolicy | None,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    exclude_appointment_id: str | None = None,
) -> LoadedCalendar:
    """The calendar for slots starting in [start, end)."""
    tenant_id, location_id = location.tenant_id, location.id
    window_start, window_end = start - MARGIN, end + MARGIN
    zone = ZoneInfo(location.timezone)
    first_day = window_start.astimezone(zone).date()
    last_day = window_end.astimezone(zone).date()
    providers = await repository.live_resources(session, Provider, tenant_id, location_id)
    operatories = await repository.live_resources(session, Operatory, tenant_id, location_id)
    entries = await repository.schedule_entries(
        session, tenant_id, location_id, first_day, last_day, window_start, window_end
    )
    busy: list[engine.Busy] = [
        engine.Busy(e.start_at, e.end_at, e.provider_id, e.operatory_id)
        for e in entries
        if e.kind == "block" and e.start_at and e.end_at
    ]
    for appointment in await repository.busy_appointments(
        session, tenant_id, location_id, window_start, window_end, exclude_appointment_id
    ):
        if appointment.provider_id is None and appointment.operatory_id is None:
            continue  # occupies nobody in particular; never a block on the whole office
        buffers = buffers_of(policy, appointment.appointment_type_id)
        busy.append(
            engine.Busy(
                appointment.start_at - timedelta(minutes=buffers.before),
                appointment.end_at + timedelta(minutes=buffers.after),
                appointment.provider_id,
                appointment.operatory_id,
            )
        )
    holds = await repository.active_holds(
        session, tenant_id, location_id, window_start, window_end, now
    )
    for hold in holds:
        if hold.appointment_id is not None:
            continue  # confirmed: its appointment is read above
        busy.append(
            engine.Busy(
                hold.start_at - timedelta(minutes=hold.buffer_before_minutes),
                hold.end_at + timedelta(minutes=hold.buffer_after_minutes),
                hold.provider_id,
                hold.operatory_id,
            )
        )
    calendar = engine.LocationCalendar(
        time_zone=location.timezone,
        providers=_providers([p.id for p in providers], entries),
        operatory_ids=tuple(o.id for o in operatories),
        busy=tuple(busy),
    )
    expiries = [h.hold_expires_at for h in holds]
    return LoadedCalendar(calendar, min(expiries) if expiries else None)
