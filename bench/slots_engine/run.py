"""Time per call of the availability engine (pure CPython, no I/O).

    .venv/bin/python -m bench.slots_engine.run [--repeat 30] [--seed 7]

A New York location with 10 providers (Mon-Fri 08:00-12:00 and 13:00-17:00, Sat
08:00-13:00) and 12 operatories; a 60-minute appointment type with a 10-minute buffer
after, a 10-minute grid, 31 days starting on the DST day 2026-03-08. Calendars:

* free: nothing booked;
* busy: appointments (30/60/90 minutes, each in a free operatory) cover ~60% of every
  provider's working time, plus a lunch-hour location block on Fridays.

Prints the median (and min / max) wall time of find_slots over the whole month, of
next_available and of check_slot, over --repeat runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from api.engines.slots import (
    AppointmentType,
    BookingRules,
    Busy,
    Hours,
    LocationCalendar,
    Provider,
    Refusal,
    check_slot,
    find_slots,
    local_dates_to_utc,
    next_available,
)

ZONE = "America/New_York"
FIRST_DAY = date(2026, 3, 8)
DAYS = 31
NOW = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
KIND = AppointmentType(duration_minutes=60, buffer_after_minutes=10)
RULES = BookingRules(min_notice_minutes=120, horizon_days=60, step_minutes=10)


def hours(start: int, end: int) -> Hours:
    return Hours(datetime.min.replace(hour=start).time(), datetime.min.replace(hour=end).time())


def staff() -> tuple[tuple[Provider, ...], tuple[str, ...]]:
    weekday = [hours(8, 12), hours(13, 17)]
    week = {day: weekday for day in range(5)} | {5: [hours(8, 13)]}
    providers = tuple(Provider.weekly(f"prv_{n:02d}", week) for n in range(10))
    return providers, tuple(f"op_{n:02d}" for n in range(12))


def busy_calendar(
    providers: tuple[Provider, ...], operatories: tuple[str, ...], seed: int
) -> list[Busy]:
    """Fill ~60% of each provider's hours, each appointment in an operatory free then."""
    rng = random.Random(seed)
    zone = ZoneInfo(ZONE)
    taken: dict[str, list[tuple[datetime, datetime]]] = {o: [] for o in operatories}
    booked: list[Busy] = []
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        if day.weekday() == 4:
            lunch = datetime.combine(day, hours(12, 13).start, zone)
            booked.append(Busy(lunch, lunch + timedelta(hours=1)))
        for provider in providers:
            for interval in provider.hours_on(day):
                moment = datetime.combine(day, interval.start, zone).astimezone(UTC)
                close = datetime.combine(day, interval.end, zone).astimezone(UTC)
                while moment < close:
                    length = timedelta(minutes=rng.choice([30, 60, 90]))
                    end = min(moment + length, close)
                    if rng.random() < 0.6:
                        free = [
                            o
                            for o in operatories
                            if all(e <= moment or s >= end for s, e in taken[o])
                        ]
                        if free:
                            room = rng.choice(free)
                            taken[room].append((moment, end))
                            booked.append(Busy(moment, end, provider.provider_id, room))
                    moment = end
    return booked


def timed(label: str, call: Callable[[], object], repeat: int) -> object:
    result = call()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    print(
        f"{label:<46} median {statistics.median(runs):7.2f} ms"
        f"   min {min(runs):7.2f}   max {max(runs):7.2f}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    providers, operatories = staff()
    start, end = local_dates_to_utc(FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1), ZONE)
    busy = busy_calendar(providers, operatories, args.seed)
    provider_minutes = sum(
        (datetime.combine(date.min, h.end) - datetime.combine(date.min, h.start)).seconds // 60
        for p in providers
        for offset in range(DAYS)
        for h in p.hours_on(FIRST_DAY + timedelta(days=offset))
    )
    booked_minutes = sum((b.end - b.start).seconds // 60 for b in busy if b.provider_id)
    print(f"10 providers x 12 operatories x {DAYS} days, 10-minute grid, {ZONE} from {FIRST_DAY}")
    for label, calendar in [
        ("free calendar", LocationCalendar(ZONE, providers, operatories)),
        (
            f"busy calendar ({len(busy)} busy, {booked_minutes / provider_minutes:.0%} booked)",
            LocationCalendar(ZONE, providers, operatories, tuple(busy)),
        ),
    ]:
        print(label)
        slots = timed(
            "  find_slots, whole month, any provider",
            lambda c=calendar: find_slots(c, KIND, RULES, now=NOW, start=start, end=end),
            args.repeat,
        )
        assert not isinstance(slots, Refusal)
        assert isinstance(slots, list)
        pairs = sum(len(s.pairs()) for s in slots)
        print(f"  -> {len(slots)} slots, {pairs} (provider, operatory) pairs")
        timed(
            "  find_slots, whole month, one provider",
            lambda c=calendar: find_slots(
                c, KIND, RULES, now=NOW, start=start, end=end, provider_id="prv_03"
            ),
            args.repeat,
        )
        first = timed(
            "  next_available",
            lambda c=calendar: next_available(c, KIND, RULES, now=NOW),
            args.repeat,
        )
        probe = slots[len(slots) // 2].start_utc if slots else start
        timed(
            "  check_slot (one start)",
            lambda c=calendar, p=probe: check_slot(c, KIND, RULES, now=NOW, start=p),
            args.repeat,
        )
        print(f"  -> next available: {getattr(first, 'start_local', first)}")


if __name__ == "__main__":
    main()
