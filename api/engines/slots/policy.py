"""Checks that concern the request as a whole, shared by the search and the slot check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from api.engines.slots.intervals import merge
from api.engines.slots.localtime import LocalDay
from api.engines.slots.model import (
    AppointmentType,
    BookingRules,
    LocationCalendar,
    Provider,
    Refusal,
    RefusalReason,
)


@dataclass(frozen=True, slots=True)
class Bookable:
    """The providers and operatories a request may use, in calendar order."""

    providers: tuple[Provider, ...]
    operatory_ids: tuple[str, ...]


def bookable(
    calendar: LocationCalendar,
    appointment_type: AppointmentType,
    provider_id: str | None,
    operatory_id: str | None = None,
) -> Bookable | Refusal:
    if not appointment_type.self_bookable:
        return Refusal(
            RefusalReason.NOT_SELF_BOOKABLE,
            "This appointment type cannot be booked online; the practice books it directly.",
        )
    providers = tuple(
        provider
        for provider in calendar.providers
        if appointment_type.allows_provider(provider.provider_id)
        and (provider_id is None or provider.provider_id == provider_id)
    )
    if not providers:
        if provider_id is None:
            detail = "No provider at this location takes this appointment type."
        elif provider_id not in {p.provider_id for p in calendar.providers}:
            detail = f"Provider {provider_id} does not work at this location."
        else:
            detail = f"Provider {provider_id} does not take this appointment type."
        return Refusal(RefusalReason.PROVIDER_NOT_ALLOWED, detail)
    operatory_ids = tuple(
        operatory
        for operatory in calendar.operatory_ids
        if appointment_type.allows_operatory(operatory)
        and (operatory_id is None or operatory == operatory_id)
    )
    if not operatory_ids:
        if operatory_id is None:
            detail = "No operatory at this location is set up for this appointment type."
        else:
            detail = f"Operatory {operatory_id} is not available for this appointment type."
        return Refusal(RefusalReason.OPERATORY_NOT_ALLOWED, detail)
    return Bookable(providers, operatory_ids)


def earliest_start(now: datetime, rules: BookingRules) -> datetime:
    """Minimum notice: a slot may start at this instant or later."""
    return now + timedelta(minutes=rules.min_notice_minutes)


def horizon_end(now: datetime, rules: BookingRules) -> datetime:
    """Booking horizon: a slot must start before this instant (real elapsed days)."""
    return now + timedelta(days=rules.horizon_days)


def working_spans(provider: Provider, day: LocalDay) -> list[tuple[int, int]]:
    """The provider's working time on a local date as merged instant ranges [start, end).

    Intervals that touch or overlap are one span, so a slot may run across 12:00 when a
    provider works 08:00-12:00 and 12:00-17:00.
    """
    return merge(
        (day.instant(hours.start), day.instant(hours.end, last=True))
        for hours in provider.hours_on(day.day)
    )


def hours_text(provider: Provider, day: date) -> str:
    hours = provider.hours_on(day)
    if not hours:
        return f"{provider.provider_id} does not work on {day.isoformat()}"
    listed = ", ".join(f"{h.start:%H:%M}-{h.end:%H:%M}" for h in hours)
    return f"{provider.provider_id} works {listed} on {day.isoformat()}"
