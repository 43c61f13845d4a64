"""The slot search: every bookable start in a range, with who and where can take it.

A start s on the grid is offered with the pair (provider, operatory) when:
- the appointment [s, s + duration) lies inside one working span of the provider on the
  local date of s (exceptions applied, touching intervals merged). Buffers may extend
  outside working hours: an 08:00 cleaning with a 10-minute buffer before is fine;
- the buffered window [s - buffer_before, s + duration + buffer_after) overlaps no busy
  interval (appointment, hold or block) of the provider, of the operatory, or of the
  whole location;
- now + min notice <= s < now + horizon, and start <= s < end of the requested range;
- the appointment type allows both, and the request names that provider or none.

Cost: each busy interval and working span becomes a range of grid positions by bisect
once; providers then subtract sorted range lists, and operatories share one bitmask
timeline, so the work grows with intervals and offered slots, not slots x busy.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta

from api.engines.slots.intervals import (
    MaskTimeline,
    Range,
    merge,
    positions_between,
    positions_strictly_between,
    subtract,
)
from api.engines.slots.localtime import (
    local_days,
    seconds_ceil,
    seconds_floor,
    utc_at,
    zone_for,
)
from api.engines.slots.model import (
    AppointmentType,
    BookingRules,
    Candidate,
    LocationCalendar,
    Refusal,
    Slot,
    require_aware,
)
from api.engines.slots.policy import (
    Bookable,
    bookable,
    earliest_start,
    horizon_end,
    working_spans,
)

_WINDOW = timedelta(days=7)


def find_slots(
    calendar: LocationCalendar,
    appointment_type: AppointmentType,
    rules: BookingRules,
    *,
    now: datetime,
    start: datetime,
    end: datetime,
    provider_id: str | None = None,
) -> list[Slot] | Refusal:
    """Bookable slots starting in [start, end), sorted by start.

    provider_id None means any provider who takes the appointment type. A refusal comes
    back instead of slots when the request itself cannot be booked online
    (not_self_bookable, provider_not_allowed, operatory_not_allowed).
    """
    require_aware("now", now)
    require_aware("start", start)
    require_aware("end", end)
    allowed = bookable(calendar, appointment_type, provider_id)
    if isinstance(allowed, Refusal):
        return allowed
    low = max(seconds_ceil(start), seconds_ceil(earliest_start(now, rules)))
    high = min(seconds_ceil(end), seconds_ceil(horizon_end(now, rules)))
    if low >= high:
        return []
    return _search(calendar, appointment_type, rules, allowed, low, high)


def next_available(
    calendar: LocationCalendar,
    appointment_type: AppointmentType,
    rules: BookingRules,
    *,
    now: datetime,
    after: datetime | None = None,
    provider_id: str | None = None,
) -> Slot | Refusal | None:
    """The first slot starting at or after `after` (default: now) within the horizon.

    Searches a week at a time, so a free calendar answers after one small search.
    """
    require_aware("now", now)
    if after is not None:
        require_aware("after", after)
    window_start = now if after is None else max(after, now)
    limit = horizon_end(now, rules)
    while True:
        window_end = min(window_start + _WINDOW, limit)
        found = find_slots(
            calendar,
            appointment_type,
            rules,
            now=now,
            start=window_start,
            end=window_end,
            provider_id=provider_id,
        )
        if isinstance(found, Refusal) or found:
            return found if isinstance(found, Refusal) else found[0]
        if window_end >= limit:
            return None
        window_start = window_end


def _search(
    calendar: LocationCalendar,
    appointment_type: AppointmentType,
    rules: BookingRules,
    allowed: Bookable,
    low: int,
    high: int,
) -> list[Slot]:
    zone = zone_for(calendar.time_zone)
    days = local_days(zone, low, high - 1)
    full_grid: list[int] = []
    for day in days:
        full_grid.extend(day.grid(rules.step_minutes))
    grid = full_grid[bisect_left(full_grid, low) : bisect_left(full_grid, high)]
    if not grid:
        return []

    duration = appointment_type.duration_minutes * 60
    provider_busy, operatory_busy, location_busy = _busy_positions(
        calendar, allowed, grid, duration, appointment_type
    )
    operatories = MaskTimeline(
        len(allowed.operatory_ids), [merge(ranges + location_busy) for ranges in operatory_busy]
    )
    operatory_sets: dict[int, tuple[str, ...]] = {}
    offered: list[list[Candidate] | None] = [None] * len(grid)
    for number, provider in enumerate(allowed.providers):
        in_hours: list[Range] = []
        for day in days:
            for span_start, span_end in working_spans(provider, day):
                first, stop = positions_between(grid, span_start, span_end - duration)
                if first < stop:
                    in_hours.append((first, stop))
        free = subtract(in_hours, merge(provider_busy[number] + location_busy))
        candidates: dict[int, Candidate] = {}
        for free_low, free_high in free:
            for run_low, run_high, mask in operatories.runs(free_low, free_high):
                if not mask:
                    continue
                candidate = candidates.get(mask)
                if candidate is None:
                    ids = operatory_sets.get(mask)
                    if ids is None:
                        ids = _members(allowed.operatory_ids, mask)
                        operatory_sets[mask] = ids
                    candidate = candidates[mask] = Candidate(provider.provider_id, ids)
                for position in range(run_low, run_high):
                    entry = offered[position]
                    if entry is None:
                        offered[position] = [candidate]
                    else:
                        entry.append(candidate)

    length = timedelta(seconds=duration)
    slots: list[Slot] = []
    for position, entry in enumerate(offered):
        if entry is None:
            continue
        start_utc = utc_at(grid[position])
        end_utc = start_utc + length
        slots.append(
            Slot(
                start_utc,
                end_utc,
                start_utc.astimezone(zone),
                end_utc.astimezone(zone),
                tuple([candidate.provider_id for candidate in entry]),
                tuple(entry),
            )
        )
    return slots


def _busy_positions(
    calendar: LocationCalendar,
    allowed: Bookable,
    grid: list[int],
    duration: int,
    appointment_type: AppointmentType,
) -> tuple[list[list[Range]], list[list[Range]], list[Range]]:
    """Grid positions each busy interval rules out, per provider, operatory and location.

    A start s is ruled out by busy [b0, b1) when the buffered window overlaps it:
    s - buffer_before < b1 and b0 < s + duration + buffer_after.
    """
    before = appointment_type.buffer_before_minutes * 60
    after = appointment_type.buffer_after_minutes * 60
    provider_index = {p.provider_id: n for n, p in enumerate(allowed.providers)}
    operatory_index = {o: n for n, o in enumerate(allowed.operatory_ids)}
    provider_busy: list[list[Range]] = [[] for _ in allowed.providers]
    operatory_busy: list[list[Range]] = [[] for _ in allowed.operatory_ids]
    location_busy: list[Range] = []
    first, last = grid[0], grid[-1]
    for busy in calendar.busy:
        if busy.end <= busy.start:
            continue
        low = seconds_floor(busy.start) - duration - after
        high = seconds_ceil(busy.end) + before
        if high <= first or low >= last:
            continue
        if busy.provider_id is None and busy.operatory_id is None:
            location_busy.append(positions_strictly_between(grid, low, high))
            continue
        provider_number = None
        if busy.provider_id is not None:
            provider_number = provider_index.get(busy.provider_id)
        operatory_number = None
        if busy.operatory_id is not None:
            operatory_number = operatory_index.get(busy.operatory_id)
        if provider_number is None and operatory_number is None:
            continue
        positions = positions_strictly_between(grid, low, high)
        if provider_number is not None:
            provider_busy[provider_number].append(positions)
        if operatory_number is not None:
            operatory_busy[operatory_number].append(positions)
    return provider_busy, operatory_busy, merge(location_busy)


def _members(operatory_ids: tuple[str, ...], mask: int) -> tuple[str, ...]:
    return tuple(operatory for n, operatory in enumerate(operatory_ids) if mask >> n & 1)
