"""Is one requested start bookable, and if not, why? For holds and bookings (409 answers).

Deliberately a separate, direct implementation of the rules in search.py (it scans the
busy intervals with datetimes instead of grid ranges): the property tests hold the two
to agreeing on every grid start, which checks both.

Reasons are tried in a fixed order, and the first that applies is returned:
not_self_bookable, provider_not_allowed, operatory_not_allowed, notice, horizon,
off_grid, outside_hours, taken.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.engines.slots.localtime import (
    local_date_of,
    local_day,
    on_grid,
    seconds_floor,
    zone_for,
)
from api.engines.slots.model import (
    AppointmentType,
    BookingRules,
    Candidate,
    LocationCalendar,
    Refusal,
    RefusalReason,
    Slot,
    require_aware,
)
from api.engines.slots.policy import (
    bookable,
    earliest_start,
    horizon_end,
    hours_text,
    working_spans,
)


def check_slot(
    calendar: LocationCalendar,
    appointment_type: AppointmentType,
    rules: BookingRules,
    *,
    now: datetime,
    start: datetime,
    provider_id: str | None = None,
    operatory_id: str | None = None,
) -> Refusal | None:
    """None when `start` is bookable (with that provider / operatory, if named)."""
    found = slot_at(
        calendar,
        appointment_type,
        rules,
        now=now,
        start=start,
        provider_id=provider_id,
        operatory_id=operatory_id,
    )
    return found if isinstance(found, Refusal) else None


def slot_at(
    calendar: LocationCalendar,
    appointment_type: AppointmentType,
    rules: BookingRules,
    *,
    now: datetime,
    start: datetime,
    provider_id: str | None = None,
    operatory_id: str | None = None,
) -> Slot | Refusal:
    """The slot at `start` with every candidate that can take it, or why there is none."""
    require_aware("now", now)
    require_aware("start", start)
    allowed = bookable(calendar, appointment_type, provider_id, operatory_id)
    if isinstance(allowed, Refusal):
        return allowed
    zone = zone_for(calendar.time_zone)
    start_utc = start.astimezone(UTC)
    start_local = start_utc.astimezone(zone)
    earliest = earliest_start(now, rules)
    if start_utc < earliest:
        return Refusal(
            RefusalReason.NOTICE,
            f"Online bookings need {rules.min_notice_minutes} minutes' notice; the earliest "
            f"start is {earliest.astimezone(zone).isoformat()}.",
        )
    limit = horizon_end(now, rules)
    if start_utc >= limit:
        return Refusal(
            RefusalReason.HORIZON,
            f"Online booking is open {rules.horizon_days} days ahead; starts must be before "
            f"{limit.astimezone(zone).isoformat()}.",
        )
    if not on_grid(zone, start_utc, rules.step_minutes):
        return Refusal(
            RefusalReason.OFF_GRID,
            f"Slots start every {rules.step_minutes} minutes from local midnight; "
            f"{start_local.isoformat()} is not one of them.",
        )

    end_utc = start_utc + timedelta(minutes=appointment_type.duration_minutes)
    begin = seconds_floor(start_utc)
    finish = begin + appointment_type.duration_minutes * 60
    day = local_day(zone, local_date_of(zone, begin))
    in_hours = [
        provider
        for provider in allowed.providers
        if any(low <= begin and finish <= high for low, high in working_spans(provider, day))
    ]
    if not in_hours:
        if len(allowed.providers) == 1:
            detail = f"{hours_text(allowed.providers[0], day.day)}; "
        else:
            detail = "No provider who takes this appointment type works "
        return Refusal(
            RefusalReason.OUTSIDE_HOURS,
            f"{detail}the appointment would run {start_local.isoformat()} to "
            f"{end_utc.astimezone(zone).isoformat()}.",
        )

    window_start = start_utc - timedelta(minutes=appointment_type.buffer_before_minutes)
    window_end = end_utc + timedelta(minutes=appointment_type.buffer_after_minutes)
    busy_providers: set[str] = set()
    busy_operatories: set[str] = set()
    for busy in calendar.busy:
        if busy.start >= busy.end or busy.start >= window_end or busy.end <= window_start:
            continue
        if busy.provider_id is None and busy.operatory_id is None:
            return Refusal(
                RefusalReason.TAKEN,
                f"The location is blocked around {start_local.isoformat()}.",
            )
        if busy.provider_id is not None:
            busy_providers.add(busy.provider_id)
        if busy.operatory_id is not None:
            busy_operatories.add(busy.operatory_id)
    free_operatories = tuple(o for o in allowed.operatory_ids if o not in busy_operatories)
    candidates = tuple(
        Candidate(provider.provider_id, free_operatories)
        for provider in in_hours
        if provider.provider_id not in busy_providers
    )
    if not candidates or not free_operatories:
        return Refusal(
            RefusalReason.TAKEN,
            f"{start_local.isoformat()} is already taken (buffers included).",
        )
    return Slot(
        start_utc,
        end_utc,
        start_local,
        end_utc.astimezone(zone),
        tuple(candidate.provider_id for candidate in candidates),
        candidates,
    )
