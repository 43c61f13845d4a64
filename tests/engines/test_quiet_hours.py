"""Quiet hours: a deferred message waits for the first local instant outside the window,
on ordinary and DST days alike (property-tested against a minute-by-minute walk)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from api.engines.quiet_hours import QuietHours, next_allowed

ZONES = [
    "America/Chicago",
    "America/New_York",
    "America/Denver",
    "America/Phoenix",
    "Europe/London",
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Pacific/Auckland",
]
# Around the 2026 DST changes of both hemispheres, and an ordinary stretch.
INSTANTS = st.one_of(
    st.datetimes(datetime(2026, 3, 6), datetime(2026, 3, 31)),
    st.datetimes(datetime(2026, 4, 1), datetime(2026, 4, 8)),
    st.datetimes(datetime(2026, 9, 25), datetime(2026, 10, 6)),
    st.datetimes(datetime(2026, 10, 30), datetime(2026, 11, 3)),
    st.datetimes(datetime(2026, 6, 1), datetime(2026, 6, 3)),
).map(lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC))
CLOCK = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


def _quiet_at(instant: datetime, zone: str, window: QuietHours) -> bool:
    return window.contains(instant.astimezone(ZoneInfo(zone)).time())


@settings(max_examples=150, deadline=None)
@given(now=INSTANTS, zone=st.sampled_from(ZONES), start=CLOCK, end=CLOCK)
def test_the_deferral_is_the_first_instant_outside_the_window(now, zone, start, end):
    window = QuietHours(start, end)
    allowed = next_allowed(now, zone, window)
    if not _quiet_at(now, zone, window):
        assert allowed is None
        return
    assert allowed is not None and allowed > now
    assert not _quiet_at(allowed, zone, window)
    assert allowed - now <= timedelta(days=2)
    # Every minute before it is still quiet: nothing earlier would have been allowed.
    walk = now
    while walk + timedelta(minutes=1) < allowed:
        walk += timedelta(minutes=1)
        assert _quiet_at(walk, zone, window), walk


def test_an_evening_message_waits_for_the_morning_in_local_time():
    window = QuietHours(time(21), time(8))
    # 22:30 in Chicago on 2026-11-22 (CST, UTC-6): 08:00 CST next day is 14:00 UTC.
    evening = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)
    assert next_allowed(evening, "America/Chicago", window) == datetime(
        2026, 11, 23, 14, tzinfo=UTC
    )
    # The same evening before the spring change: 08:00 is CDT (UTC-5) the next morning.
    march = datetime(2026, 3, 8, 4, 30, tzinfo=UTC)  # 22:30 CST on 7 March
    assert next_allowed(march, "America/Chicago", window) == datetime(2026, 3, 8, 13, tzinfo=UTC)
    assert next_allowed(datetime(2026, 11, 23, 16, tzinfo=UTC), "America/Chicago", window) is None


def test_a_window_end_inside_the_spring_gap_opens_when_the_clock_jumps():
    # 02:30 does not exist in Chicago on 2026-03-08: the clock jumps from 02:00 to 03:00.
    window = QuietHours(time(1), time(2, 30))
    at_one_thirty = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert next_allowed(at_one_thirty, "America/Chicago", window) == datetime(
        2026, 3, 8, 8, tzinfo=UTC
    )


def test_an_empty_window_never_defers():
    assert (
        next_allowed(datetime(2026, 1, 1, tzinfo=UTC), "UTC", QuietHours(time(9), time(9))) is None
    )
    assert next_allowed(datetime(2026, 1, 1, tzinfo=UTC), "UTC", None) is None
