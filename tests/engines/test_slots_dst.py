"""DST days: New York 2026-03-08 / 2026-11-01, London 2026-03-29, Sydney 2026-04-05."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from api.engines.slots import (
    AppointmentType,
    BookingRules,
    Busy,
    LocationCalendar,
    Refusal,
    RefusalReason,
    Slot,
    check_slot,
    find_slots,
    local_dates_to_utc,
)
from api.engines.slots.localtime import LocalDay, local_day
from tests.engines.slots_support import NEW_YORK, calendar, every_day, iso_starts, local

SPRING_NY = date(2026, 3, 8)
FALL_NY = date(2026, 11, 1)
NOW = local(NEW_YORK, "2026-02-20 09:00")
HALF_HOUR = AppointmentType(duration_minutes=30)
STEP_30 = BookingRules(step_minutes=30, horizon_days=365)


def day_slots(
    cal: LocationCalendar, day: date, kind: AppointmentType = HALF_HOUR, step: int = 30
) -> list[Slot]:
    start, end = local_dates_to_utc(day, day, cal.time_zone)
    rules = BookingRules(step_minutes=step, horizon_days=365)
    found = find_slots(cal, kind, rules, now=NOW, start=start, end=end)
    assert not isinstance(found, Refusal), found
    return found


def test_spring_forward_interval_loses_an_hour() -> None:
    found = day_slots(calendar([every_day("dr_a", "01:30-03:30")]), SPRING_NY)
    assert iso_starts(found) == ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00"]
    # The 01:30 EST slot ends at 03:00 EDT: 30 real minutes.
    assert found[0].end_local.isoformat() == "2026-03-08T03:00:00-04:00"
    assert found[0].end_utc - found[0].start_utc == timedelta(minutes=30)


def test_spring_forward_skipped_times_have_no_slots_and_durations_are_real() -> None:
    cal = calendar([every_day("dr_a", "00:00-06:00")])
    found = day_slots(cal, SPRING_NY, AppointmentType(duration_minutes=60))
    walls = [slot.start_local.strftime("%H:%M") for slot in found]
    assert "02:00" not in walls and "02:30" not in walls
    assert walls == [
        "00:00",
        "00:30",
        "01:00",
        "01:30",
        "03:00",
        "03:30",
        "04:00",
        "04:30",
        "05:00",
    ]
    # 01:30 EST + 60 real minutes = 03:30 EDT on the wall.
    assert found[3].end_local.isoformat() == "2026-03-08T03:30:00-04:00"


def test_spring_forward_working_day_keeps_wall_clock_hours() -> None:
    found = day_slots(calendar([every_day("dr_a", "08:00-17:00")]), SPRING_NY, step=15)
    assert len(found) == 35
    assert found[0].start_local.isoformat() == "2026-03-08T08:00:00-04:00"
    assert found[0].start_utc.isoformat() == "2026-03-08T12:00:00+00:00"
    assert found[-1].start_local.isoformat() == "2026-03-08T16:30:00-04:00"


def test_fall_back_interval_gains_an_hour_and_repeated_times_appear_twice() -> None:
    found = day_slots(calendar([every_day("dr_a", "01:00-02:00")]), FALL_NY)
    # 01:00 EDT to 02:00 EST: two real hours; each repeated reading is a distinct slot.
    assert iso_starts(found) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
    ]
    assert found[1].end_local.isoformat() == "2026-11-01T01:00:00-05:00"


def test_fall_back_day_has_25_hourly_slots_in_a_whole_day() -> None:
    cal = calendar([every_day("dr_a", "00:00-23:59")])
    one_hour = AppointmentType(duration_minutes=60)
    assert len(day_slots(cal, FALL_NY, one_hour, step=60)) == 24
    assert len(day_slots(cal, FALL_NY - timedelta(days=7), one_hour, step=60)) == 23
    assert len(day_slots(cal, SPRING_NY, one_hour, step=60)) == 22


def test_busy_time_across_the_fall_back_hour_blocks_by_real_instants() -> None:
    busy_start = local(NEW_YORK, "2026-11-01 01:30", fold=1)  # 01:30 EST
    busy_end = local(NEW_YORK, "2026-11-01 02:00")
    busy = [Busy(busy_start, busy_end, "dr_a")]
    cal = calendar([every_day("dr_a", "01:00-02:00")], busy=busy)
    assert iso_starts(day_slots(cal, FALL_NY)) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
    ]


def test_local_day_bounds_on_dst_days() -> None:
    spring = local_dates_to_utc(SPRING_NY, SPRING_NY, NEW_YORK)
    fall = local_dates_to_utc(FALL_NY, FALL_NY, NEW_YORK)
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert fall[1] - fall[0] == timedelta(hours=25)


def test_london_spring_forward_on_a_ten_minute_grid() -> None:
    london = "Europe/London"
    cal = calendar([every_day("dr_a", "00:30-02:30")], zone=london)
    found = day_slots(cal, date(2026, 3, 29), AppointmentType(duration_minutes=20), step=10)
    # 00:30 GMT to 02:30 BST is one real hour; 01:00-01:59 does not exist.
    assert [s.start_local.strftime("%H:%M%z") for s in found] == [
        "00:30+0000",
        "00:40+0000",
        "00:50+0000",
        "02:00+0100",
        "02:10+0100",
    ]


def test_sydney_fall_back_repeats_the_two_oclock_hour() -> None:
    sydney = "Australia/Sydney"
    cal = calendar([every_day("dr_a", "02:00-03:00")], zone=sydney)
    found = day_slots(cal, date(2026, 4, 5), AppointmentType(duration_minutes=60), step=30)
    # 02:00 AEDT to 03:00 AEST: two real hours, so three one-hour starts.
    assert iso_starts(found) == [
        "2026-04-05T02:00:00+11:00",
        "2026-04-05T02:30:00+11:00",
        "2026-04-05T02:00:00+10:00",
    ]


def test_grid_follows_local_midnight_in_a_half_hour_offset_zone() -> None:
    kolkata = "Asia/Kolkata"
    cal = calendar([every_day("dr_a", "08:00-12:00")], zone=kolkata)
    hourly = BookingRules(step_minutes=60, horizon_days=365)
    on_the_hour = local(kolkata, "2026-06-08 09:00")
    half_past_utc = local(kolkata, "2026-06-08 08:30")  # 03:00 UTC, on a UTC hour
    assert check_slot(cal, HALF_HOUR, hourly, now=NOW, start=on_the_hour) is None
    refusal = check_slot(cal, HALF_HOUR, hourly, now=NOW, start=half_past_utc)
    assert refusal is not None and refusal.reason is RefusalReason.OFF_GRID


def test_dst_day_check_slot_names_the_right_reasons() -> None:
    cal = calendar([every_day("dr_a", "01:30-03:30")])
    assert (
        check_slot(cal, HALF_HOUR, STEP_30, now=NOW, start=local(NEW_YORK, "2026-03-08 03:00"))
        is None
    )
    late = check_slot(cal, HALF_HOUR, STEP_30, now=NOW, start=local(NEW_YORK, "2026-03-08 03:30"))
    assert late is not None and late.reason is RefusalReason.OUTSIDE_HOURS


def test_general_dst_path_matches_fixed_offset_path_on_ordinary_days() -> None:
    for zone_name, day in [(NEW_YORK, date(2026, 6, 8)), ("Australia/Sydney", date(2026, 1, 5))]:
        zone = ZoneInfo(zone_name)
        fast = local_day(zone, day)
        slow = LocalDay(zone, day, None)
        assert fast.offset is not None
        assert fast.grid(15) == slow.grid(15)
        for at in (time(0), time(8, 30), time(23, 45)):
            assert fast.instant(at) == slow.instant(at) == slow.instant(at, last=True)
