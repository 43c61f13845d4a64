"""The plain data the availability engine reads and returns.

Every value is frozen and explicit: datetimes are timezone-aware instants, working hours
are local wall-clock times in the location's IANA zone, durations are whole minutes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum


def require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _require_minutes(name: str, value: int, *, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum} minutes, got {value}")


@dataclass(frozen=True, slots=True)
class Hours:
    """One local wall-clock working interval [start, end) on a single day (no overnight)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working hours are local wall-clock times without tzinfo")
        if self.end <= self.start:
            raise ValueError(f"working hours must end after they start: {self.start}-{self.end}")


@dataclass(frozen=True, slots=True)
class DateException:
    """Replaces a provider's weekly hours on one local date; no hours means a day off."""

    on: date
    hours: tuple[Hours, ...] = ()


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider's weekly hours (index 0 = Monday ... 6 = Sunday) and dated exceptions."""

    provider_id: str
    weekly_hours: tuple[tuple[Hours, ...], ...]
    exceptions: tuple[DateException, ...] = ()
    _by_date: Mapping[date, tuple[Hours, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if len(self.weekly_hours) != 7:
            raise ValueError("weekly_hours needs exactly 7 entries, Monday first")
        by_date: dict[date, tuple[Hours, ...]] = {}
        for exception in self.exceptions:
            if exception.on in by_date:
                raise ValueError(f"two exceptions for {exception.on} ({self.provider_id})")
            by_date[exception.on] = exception.hours
        object.__setattr__(self, "_by_date", by_date)

    @classmethod
    def weekly(
        cls,
        provider_id: str,
        hours_by_weekday: Mapping[int, Sequence[Hours]],
        exceptions: Sequence[DateException] = (),
    ) -> Provider:
        """Build from {weekday: [Hours, ...]}; weekdays left out are days off."""
        if any(day not in range(7) for day in hours_by_weekday):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        week = tuple(tuple(hours_by_weekday.get(day, ())) for day in range(7))
        return cls(provider_id, week, tuple(exceptions))

    def hours_on(self, day: date) -> tuple[Hours, ...]:
        """The wall-clock hours that hold on a local date, after exceptions."""
        if day in self._by_date:
            return self._by_date[day]
        return self.weekly_hours[day.weekday()]


@dataclass(frozen=True, slots=True)
class Busy:
    """Time that cannot be booked, as aware instants [start, end).

    provider and operatory: an appointment or hold, occupying both;
    provider only: a provider block; operatory only: an operatory block;
    neither: a block on the whole location.
    """

    start: datetime
    end: datetime
    provider_id: str | None = None
    operatory_id: str | None = None

    def __post_init__(self) -> None:
        require_aware("Busy.start", self.start)
        require_aware("Busy.end", self.end)
        if self.end < self.start:
            raise ValueError(f"Busy ends before it starts: {self.start} > {self.end}")


@dataclass(frozen=True, slots=True)
class LocationCalendar:
    """One location: its IANA zone, providers, operatories and everything already booked."""

    time_zone: str
    providers: tuple[Provider, ...]
    operatory_ids: tuple[str, ...]
    busy: tuple[Busy, ...] = ()


@dataclass(frozen=True, slots=True)
class AppointmentType:
    """What is being booked. Empty allowed_* sets mean "any at the location"."""

    duration_minutes: int
    allowed_provider_ids: frozenset[str] = frozenset()
    allowed_operatory_ids: frozenset[str] = frozenset()
    self_bookable: bool = True
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0

    def __post_init__(self) -> None:
        _require_minutes("duration_minutes", self.duration_minutes, minimum=1)
        _require_minutes("buffer_before_minutes", self.buffer_before_minutes, minimum=0)
        _require_minutes("buffer_after_minutes", self.buffer_after_minutes, minimum=0)

    def allows_provider(self, provider_id: str) -> bool:
        return not self.allowed_provider_ids or provider_id in self.allowed_provider_ids

    def allows_operatory(self, operatory_id: str) -> bool:
        return not self.allowed_operatory_ids or operatory_id in self.allowed_operatory_ids


@dataclass(frozen=True, slots=True)
class BookingRules:
    """The location's online-booking rules. The slot grid is anchored at local midnight."""

    min_notice_minutes: int = 0
    horizon_days: int = 90
    step_minutes: int = 15

    def __post_init__(self) -> None:
        _require_minutes("min_notice_minutes", self.min_notice_minutes, minimum=0)
        _require_minutes("step_minutes", self.step_minutes, minimum=1)
        if self.horizon_days < 0:
            raise ValueError(f"horizon_days must not be negative, got {self.horizon_days}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider who can take a slot and the operatories free with them, in calendar order."""

    provider_id: str
    operatory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable start. end - start is the appointment's real elapsed duration (buffers
    excluded). start_local / end_local carry the location's UTC offset (isoformat() gives
    e.g. 2026-11-01T01:30:00-05:00)."""

    start_utc: datetime
    end_utc: datetime
    start_local: datetime
    end_local: datetime
    provider_ids: tuple[str, ...]
    candidates: tuple[Candidate, ...]

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Every (provider_id, operatory_id) pair that can take this slot."""
        return tuple(
            (candidate.provider_id, operatory_id)
            for candidate in self.candidates
            for operatory_id in candidate.operatory_ids
        )


class RefusalReason(StrEnum):
    NOT_SELF_BOOKABLE = "not_self_bookable"
    PROVIDER_NOT_ALLOWED = "provider_not_allowed"
    OPERATORY_NOT_ALLOWED = "operatory_not_allowed"
    NOTICE = "notice"
    HORIZON = "horizon"
    OFF_GRID = "off_grid"
    OUTSIDE_HOURS = "outside_hours"
    TAKEN = "taken"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request cannot be booked online; detail is a sentence for people."""

    reason: RefusalReason
    detail: str
