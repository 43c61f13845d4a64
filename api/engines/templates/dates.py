"""Dates the way a location writes them: US offices "December 1, 2026", most others
"1 December 2026" (the location's country decides; its zone decides which day it is)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_FIRST = frozenset({"US", "PH", "FM", "MH", "PW"})


def local_date(instant: datetime, time_zone: str) -> date:
    return instant.astimezone(ZoneInfo(time_zone)).date()


def format_date(day: date, country: str | None) -> str:
    month = _MONTHS[day.month - 1]
    if (country or "US").upper() in _MONTH_FIRST:
        return f"{month} {day.day}, {day.year}"
    return f"{day.day} {month} {day.year}"
