"""When a step falls due: on its local day at the cadence's send time, across DST changes,
never before the moment it is counted from."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from api.cadences.schemas import CadenceStep
from api.cadences.service import step_due_at

ZONES = [
    "America/Chicago",
    "America/New_York",
    "America/Denver",
    "America/Phoenix",
    "Pacific/Auckland",
]
SEND_AT = dt.time(10, 0)


@given(
    base=st.datetimes(
        min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2028, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    delay=st.integers(min_value=0, max_value=60),
    zone=st.sampled_from(ZONES),
    after=st.sampled_from(["enrollment", "previous_step"]),
)
def test_a_step_falls_on_its_local_day_at_the_send_time(base, delay, zone, after):
    step = CadenceStep(delay_days=delay, after=after, channel="call")
    due = step_due_at(step, base, base, SEND_AT, zone)
    tz = ZoneInfo(zone)
    assert due >= base
    local_base, local_due = base.astimezone(tz), due.astimezone(tz)
    assert local_due.date() == local_base.date() + dt.timedelta(days=delay)
    if due > base:
        assert local_due.time() == SEND_AT


def test_dst_changes_keep_the_local_send_time():
    step = CadenceStep(delay_days=3, channel="call")
    # Enrolled the Friday before US DST ends (Nov 1 2026): 10:00 CST is 16:00Z, not 15:00Z.
    enrolled = dt.datetime(2026, 10, 30, 14, 0, tzinfo=dt.UTC)
    assert step_due_at(step, enrolled, enrolled, SEND_AT, "America/Chicago") == dt.datetime(
        2026, 11, 2, 16, 0, tzinfo=dt.UTC
    )
    # And the spring change (Mar 8 2026): 10:00 CDT is 15:00Z.
    enrolled = dt.datetime(2026, 3, 6, 14, 0, tzinfo=dt.UTC)
    assert step_due_at(step, enrolled, enrolled, SEND_AT, "America/Chicago") == dt.datetime(
        2026, 3, 9, 15, 0, tzinfo=dt.UTC
    )


def test_a_same_day_step_after_the_send_time_is_due_at_once():
    step = CadenceStep(delay_days=0, channel="call")
    late = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.UTC)  # 16:00 in Chicago
    assert step_due_at(step, late, late, SEND_AT, "America/Chicago") == late
