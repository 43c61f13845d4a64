"""Local wall-clock time in a location's IANA zone, mapped to whole UTC epoch seconds.

The engine computes on integers ("instants": seconds since 1970-01-01T00:00Z) and turns
them back into aware datetimes only for its answers. DST rules, decided once:

- A wall-clock time the clock skips (spring forward) resolves to the instant the clock
  jumps past it: on 2026-03-08 in New York, 02:30 resolves to 03:00 EDT.
- A wall-clock time the clock shows twice (fall back) resolves, as the start of an
  interval, to its first occurrence and, as the end, to its last. An interval therefore
  runs from the first moment the clock shows its start to the last moment it shows its
  end: 01:30-03:30 lasts 1 hour on 2026-03-08 and 3 hours on 2026-11-01 in New York.
- The slot grid is every instant whose wall-clock reading is a whole number of steps
  after local midnight: skipped readings have no slot, repeated readings have two
  (01:30 EDT and 01:30 EST), each with its own offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DAY = 86_400


def zone_for(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def seconds_floor(moment: datetime) -> int:
    delta = moment - EPOCH
    return delta.days * DAY + delta.seconds


def seconds_ceil(moment: datetime) -> int:
    delta = moment - EPOCH
    return delta.days * DAY + delta.seconds + (1 if delta.microseconds else 0)


def utc_at(instant: int) -> datetime:
    return EPOCH + timedelta(seconds=instant)


def _wall_seconds(wall: datetime) -> int:
    """A naive wall-clock datetime as seconds on the same scale (no zone applied)."""
    days = wall.toordinal() - _EPOCH_ORDINAL
    return days * DAY + wall.hour * 3600 + wall.minute * 60 + wall.second


def _reading(zone: ZoneInfo, instant: int) -> datetime:
    return utc_at(instant).astimezone(zone).replace(tzinfo=None)


def instants_reading(zone: ZoneInfo, wall: datetime) -> list[int]:
    """The instants at which the clock shows `wall`: none (skipped), one, or two (repeated)."""
    found: list[int] = []
    for fold in (0, 1):
        instant = seconds_floor(wall.replace(tzinfo=zone, fold=fold))
        if instant not in found and _reading(zone, instant) == wall:
            found.append(instant)
    found.sort()
    return found


def _first_instant_past(zone: ZoneInfo, wall: datetime) -> int:
    """For a skipped wall time: the first instant whose reading is at or after it."""
    low, high = sorted(seconds_floor(wall.replace(tzinfo=zone, fold=f)) for f in (0, 1))
    while low < high:
        middle = (low + high) // 2
        if _reading(zone, middle) >= wall:
            high = middle
        else:
            low = middle + 1
    return high


def resolve_wall(zone: ZoneInfo, wall: datetime, *, last: bool = False) -> int:
    """The instant for a wall-clock time, by the rules in the module docstring."""
    found = instants_reading(zone, wall)
    if found:
        return found[-1] if last else found[0]
    return _first_instant_past(zone, wall)


@dataclass(frozen=True, slots=True)
class LocalDay:
    """One local date in a zone. offset is set when a single UTC offset holds all day
    (the common case, computed with integer arithmetic); None sends the day through the
    general DST rules above."""

    zone: ZoneInfo
    day: date
    offset: int | None

    def instant(self, at: time, *, last: bool = False) -> int:
        wall = datetime.combine(self.day, at)
        if self.offset is not None:
            return _wall_seconds(wall) - self.offset
        return resolve_wall(self.zone, wall, last=last)

    def first_instant(self) -> int:
        return self.instant(time())

    def grid(self, step_minutes: int) -> list[int]:
        """Instants whose reading is midnight + k * step on this date, ascending."""
        step = step_minutes * 60
        if self.offset is not None:
            midnight = _wall_seconds(datetime.combine(self.day, time())) - self.offset
            return list(range(midnight, midnight + DAY, step))
        return list(_transition_day_grid(self.zone, self.day, step))


@lru_cache(maxsize=256)
def _transition_day_grid(zone: ZoneInfo, day: date, step: int) -> tuple[int, ...]:
    """The grid of a day with a UTC offset change, reading by reading (cached: it is slow)."""
    midnight_wall = datetime.combine(day, time())
    points: list[int] = []
    for elapsed in range(0, DAY, step):
        points.extend(instants_reading(zone, midnight_wall + timedelta(seconds=elapsed)))
    return tuple(sorted(points))


@lru_cache(maxsize=4096)
def local_day(zone: ZoneInfo, day: date) -> LocalDay:
    midnight = datetime.combine(day, time())
    following = midnight + timedelta(days=1)
    offsets = {
        zone.utcoffset(moment.replace(fold=fold))
        for moment in (midnight, following)
        for fold in (0, 1)
    }
    if len(offsets) == 1:
        (only,) = offsets
        if only is not None:
            return LocalDay(zone, day, int(only.total_seconds()))
    return LocalDay(zone, day, None)


def local_date_of(zone: ZoneInfo, instant: int) -> date:
    return utc_at(instant).astimezone(zone).date()


def local_days(zone: ZoneInfo, first_instant: int, last_instant: int) -> list[LocalDay]:
    """The local dates that the instants [first_instant, last_instant] fall on."""
    first = local_date_of(zone, first_instant)
    last = local_date_of(zone, last_instant)
    count = (last - first).days + 1
    return [local_day(zone, first + timedelta(days=n)) for n in range(count)]


def on_grid(zone: ZoneInfo, moment: datetime, step_minutes: int) -> bool:
    """Whether an instant's wall-clock reading is a whole number of steps after midnight."""
    local = moment.astimezone(zone)
    if local.second or local.microsecond:
        return False
    return (local.hour * 60 + local.minute) % step_minutes == 0


def local_dates_to_utc(first: date, last: date, time_zone: str) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in the zone, as aware UTC datetimes.

    Both dates are inclusive local dates; a midnight the clock skips resolves forward.
    """
    if last < first:
        raise ValueError(f"last date {last} is before first date {first}")
    zone = zone_for(time_zone)
    start = local_day(zone, first).first_instant()
    end = local_day(zone, last + timedelta(days=1)).first_instant()
    return utc_at(start), utc_at(end)
