"""Availability for online booking: pure functions over a location's calendar.

    find_slots(calendar, appointment_type, rules, *, now, start, end, provider_id=None)
        -> list[Slot] | Refusal
    next_available(calendar, appointment_type, rules, *, now, after=None, provider_id=None)
        -> Slot | Refusal | None
    slot_at(calendar, appointment_type, rules, *, now, start, provider_id=None,
            operatory_id=None) -> Slot | Refusal
    check_slot(...same as slot_at...) -> Refusal | None
    local_dates_to_utc(first, last, time_zone) -> (start_utc, end_utc)

"now" is always passed in; nothing here reads the clock. The rules are documented in
search.py (what makes a slot), localtime.py (DST) and check.py (refusal order).
"""

from api.engines.slots.check import check_slot, slot_at
from api.engines.slots.localtime import local_dates_to_utc
from api.engines.slots.model import (
    AppointmentType,
    BookingRules,
    Busy,
    Candidate,
    DateException,
    Hours,
    LocationCalendar,
    Provider,
    Refusal,
    RefusalReason,
    Slot,
)
from api.engines.slots.search import find_slots, next_available

__all__ = [
    "AppointmentType",
    "BookingRules",
    "Busy",
    "Candidate",
    "DateException",
    "Hours",
    "LocationCalendar",
    "Provider",
    "Refusal",
    "RefusalReason",
    "Slot",
    "check_slot",
    "find_slots",
    "local_dates_to_utc",
    "next_available",
    "slot_at",
]
