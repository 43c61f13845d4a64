"""Quiet hours: the local hours of a location in which marketing messages wait.

    window = QuietHours(start=time(21), end=time(8))          # 21:00 to 08:00, local
    next_allowed(now_utc, "America/Chicago", window)          # None: send now
                                                              # else the UTC instant to send

Pure code over zoneinfo. Local wall time decides (so a DST change moves the UTC instant,
not the practice's evening), and a window end that does not exist on a spring-forward day
(02:30 in a gap) resolves to the first local instant after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @property
    def empty(self) -> bool:
        return self.start == self.end

    def contains(self, local: time) -> bool:
        """Is the local wall-clock time inside the window? (start inclusive, end exclusive;
        a start after the end wraps past midnight)."""
        local = local.replace(tzinfo=None)
        if self.empty:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def _local_instants(day: date, at: time, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the wall clock shows `at` on `day`: one, two on a
    fall-back day (the hour repeats), and in a spring-forward gap the first instant after
    the gap (when the clock reaches a later time)."""
    naive = datetime.combine(day, at.replace(tzinfo=None))
    found = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == naive:
            found.append(instant)
    if found:
        return sorted(set(found))
    # A gap: the wall clock never shows `at`; it jumps past it at the transition, which
    # lies between the two readings zoneinfo offers.
    earliest = min(naive.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
    while earliest.astimezone(zone).replace(tzinfo=None) < naive:
        earliest += timedelta(minutes=1)
    return [earliest]


def wall_clock_instant(local: datetime, time_zone: str) -> datetime:
    """The first UTC instant the location's clock shows `local` (naive), or the first after
    it when that wall time falls in a spring-forward gap."""
    return _local_instants(local.date(), local.time(), ZoneInfo(time_zone))[0]


def next_allowed(now: datetime, time_zone: str, window: QuietHours | None) -> datetime | None:
    """None when a message may go at `now`; else the first instant after `now` outside the
    window, in UTC."""
    if window is None or window.empty:
        return None
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    if not window.contains(local.timetz()):
        return None
    # The window ends at `end` today, or tomorrow when it wrapped past midnight and we are
    # in its evening part (or later still around a repeated hour): the nearest end wins.
    candidates = [
        *(t for t in _transitions(now, zone) if not window.contains(t.astimezone(zone).timetz())),
        *(
            instant
            for offset in (-1, 0, 1, 2)
            for instant in _local_instants(local.date() + timedelta(days=offset), window.end, zone)
            if instant > now and not window.contains(instant.astimezone(zone).timetz())
        ),
    ]
    return min(candidates)


def _transitions(now: datetime, zone: ZoneInfo, hours: int = 50) -> list[datetime]:
    """Instants within `hours` after `now` where the zone's offset changes: falling back
    can carry the wall clock out of a window before it reaches the window's end."""

    def offset(seconds: int) -> timedelta | None:
        return datetime.fromtimestamp(seconds, UTC).astimezone(zone).utcoffset()

    found = []
    start = int(now.timestamp())
    step = 15 * 60
    for low in range(start, start + hours * 3600, step):
        high = low + step
        if offset(low) != offset(high):
            # Bisect to the second at which the new offset starts.
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            found.append(datetime.fromtimestamp(high, UTC))
    return [t for t in found if t > now]
