"""Builders for slot-engine tests and a brute-force oracle that scans minute by minute."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from api.engines.slots import (
    AppointmentType,
    Busy,
    DateException,
    Hours,
    LocationCalendar,
    Provider,
    Slot,
)

NEW_YORK = "America/New_York"
MINUTE = timedelta(minutes=1)


def hours(text: str) -> Hours:
    """'08:00-12:00' -> Hours."""
    start, end = text.split("-")
    return Hours(time.fromisoformat(start), time.fromisoformat(end))


def every_day(provider_id: str, *spans: str, exceptions: Iterable[DateException] = ()) -> Provider:
    return Provider.weekly(
        provider_id, {day: [hours(s) for s in spans] for day in range(7)}, tuple(exceptions)
    )


def local(zone: str, text: str, fold: int = 0) -> datetime:
    """'2026-03-09 08:00' in the zone, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold)


def calendar(
    providers: Iterable[Provider],
    operatories: Iterable[str] = ("op1",),
    busy: Iterable[Busy] = (),
    zone: str = NEW_YORK,
) -> LocationCalendar:
    return LocationCalendar(zone, tuple(providers), tuple(operatories), tuple(busy))


def starts(slots: list[Slot]) -> list[str]:
    """Local wall-clock HH:MM of each slot (with offset when asked to disambiguate)."""
    return [slot.start_local.strftime("%H:%M") for slot in slots]


def iso_starts(slots: list[Slot]) -> list[str]:
    return [slot.start_local.isoformat() for slot in slots]


class MinuteOracle:
    """Answers the slot rules by scanning every minute instant; slow, obviously right.

    Working hours: an interval runs from the first minute whose local reading on that date
    is at or after its start, to the last minute reading exactly its end (or, if the clock
    skips the end, the first minute reading past it) - the engine's documented DST rule.
    """

    def __init__(self, calendar: LocationCalendar, first: datetime, last: datetime) -> None:
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.time_zone)
        scan_from = first.astimezone(UTC) - timedelta(days=2)
        count = int((last.astimezone(UTC) + timedelta(days=2) - scan_from) / MINUTE)
        self.minutes = [scan_from + n * MINUTE for n in range(count)]
        self.readings = [m.astimezone(self.zone).replace(tzinfo=None) for m in self.minutes]
        self.by_date: dict[date, list[tuple[datetime, datetime]]] = {}
        for minute, reading in zip(self.minutes, self.readings, strict=True):
            self.by_date.setdefault(reading.date(), []).append((minute, reading))
        self._spans: dict[tuple[str, date], list[tuple[datetime, datetime]]] = {}

    def grid(self, start: datetime, end: datetime, step: int) -> list[datetime]:
        return [
            m
            for m, r in zip(self.minutes, self.readings, strict=True)
            if start <= m < end and (r.hour * 60 + r.minute) % step == 0
        ]

    def spans(self, provider: Provider, day: date) -> list[tuple[datetime, datetime]]:
        key = (provider.provider_id, day)
        if key not in self._spans:
            self._spans[key] = [self._span(day, h) for h in provider.hours_on(day)]
        return self._spans[key]

    def _span(self, day: date, interval: Hours) -> tuple[datetime, datetime]:
        begin = datetime.combine(day, interval.start)
        end = datetime.combine(day, interval.end)
        on_day = self.by_date[day]
        first = next(m for m, r in on_day if r >= begin)
        exact = [m for m, r in on_day if r == end]
        last = exact[-1] if exact else next(m for m, r in on_day if r >= end)
        return first, last

    def in_hours(self, provider: Provider, start: datetime, minutes: int) -> bool:
        day = start.astimezone(self.zone).date()
        spans = self.spans(provider, day)
        return all(any(a <= start + n * MINUTE < b for a, b in spans) for n in range(minutes))

    def free_pairs(
        self,
        start: datetime,
        appointment_type: AppointmentType,
        provider_id: str | None,
    ) -> set[tuple[str, str]]:
        """(provider, operatory) pairs that can take `start`, ignoring notice and horizon."""
        kind = appointment_type
        window_start = start - timedelta(minutes=kind.buffer_before_minutes)
        window_end = start + timedelta(minutes=kind.duration_minutes + kind.buffer_after_minutes)
        overlapping = [
            b
            for b in self.calendar.busy
            if b.start < b.end and b.start < window_end and b.end > window_start
        ]
        if any(b.provider_id is None and b.operatory_id is None for b in overlapping):
            return set()
        busy_providers = {b.provider_id for b in overlapping}
        busy_operatories = {b.operatory_id for b in overlapping}
        return {
            (p.provider_id, o)
            for p in self.calendar.providers
            if kind.allows_provider(p.provider_id)
            and provider_id in (None, p.provider_id)
            and p.provider_id not in busy_providers
            and self.in_hours(p, start, kind.duration_minutes)
            for o in self.calendar.operatory_ids
            if kind.allows_operatory(o) and o not in busy_operatories
        }
