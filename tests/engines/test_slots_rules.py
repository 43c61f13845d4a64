"""One test per slot rule, on an ordinary (non-DST) Monday in New York."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from api.engines.slots import (
    AppointmentType,
    BookingRules,
    Busy,
    DateException,
    Hours,
    LocationCalendar,
    Provider,
    Refusal,
    RefusalReason,
    Slot,
    find_slots,
    local_dates_to_utc,
)
from tests.engines.slots_support import NEW_YORK, calendar, every_day, hours, local, starts

MONDAY = date(2026, 6, 8)
NOW = local(NEW_YORK, "2026-06-01 09:00")
CLEANING = AppointmentType(duration_minutes=60)
RULES = BookingRules(min_notice_minutes=0, horizon_days=90, step_minutes=30)


def at(text: str) -> str:
    return f"2026-06-08 {text}"


def appointment(start: str, end: str, provider: str | None, operatory: str | None) -> Busy:
    return Busy(local(NEW_YORK, at(start)), local(NEW_YORK, at(end)), provider, operatory)


def search(
    cal: LocationCalendar,
    kind: AppointmentType = CLEANING,
    rules: BookingRules = RULES,
    provider_id: str | None = None,
    day: date = MONDAY,
) -> list[Slot]:
    start, end = local_dates_to_utc(day, day, cal.time_zone)
    found = find_slots(cal, kind, rules, now=NOW, start=start, end=end, provider_id=provider_id)
    assert not isinstance(found, Refusal), found
    return found


def test_slots_fill_each_working_interval_on_the_step_grid() -> None:
    found = search(calendar([every_day("dr_a", "08:00-10:00", "13:00-14:30")]))
    assert starts(found) == ["08:00", "08:30", "09:00", "13:00", "13:30"]
    first = found[0]
    assert first.start_local.isoformat() == "2026-06-08T08:00:00-04:00"
    assert first.start_utc.isoformat() == "2026-06-08T12:00:00+00:00"
    assert first.end_utc - first.start_utc == timedelta(minutes=60)
    assert first.provider_ids == ("dr_a",)
    assert first.pairs() == (("dr_a", "op1"),)


def test_touching_intervals_form_one_span() -> None:
    found = search(calendar([every_day("dr_a", "08:00-09:00", "09:00-10:00")]))
    assert starts(found) == ["08:00", "08:30", "09:00"]


def test_grid_is_anchored_at_local_midnight_not_at_the_start_of_hours() -> None:
    found = search(calendar([every_day("dr_a", "08:10-10:00")]))
    assert starts(found) == ["08:30", "09:00"]


def test_appointment_occupies_both_its_provider_and_its_operatory() -> None:
    cal = calendar(
        [every_day("dr_a", "08:00-10:00"), every_day("dr_b", "08:00-10:00")],
        ["op1", "op2"],
        [appointment("08:00", "09:00", "dr_a", "op1")],
    )
    by_start = {slot.start_local.strftime("%H:%M"): slot for slot in search(cal)}
    assert by_start["08:00"].pairs() == (("dr_b", "op2"),)
    assert by_start["08:30"].pairs() == (("dr_b", "op2"),)
    assert set(by_start["09:00"].pairs()) == {
        ("dr_a", "op1"),
        ("dr_a", "op2"),
        ("dr_b", "op1"),
        ("dr_b", "op2"),
    }


@pytest.mark.parametrize(
    ("busy", "expected"),
    [
        (appointment("09:00", "10:00", "dr_a", None), ["08:00", "10:00", "10:30", "11:00"]),
        (appointment("09:00", "10:00", None, "op1"), ["08:00", "10:00", "10:30", "11:00"]),
        (appointment("09:00", "10:00", None, None), ["08:00", "10:00", "10:30", "11:00"]),
        (appointment("09:00", "10:00", "dr_other", "op_other"), None),
    ],
    ids=["provider-block", "operatory-block", "location-block", "someone-else"],
)
def test_blocks_on_provider_operatory_and_location(busy: Busy, expected: list[str] | None) -> None:
    found = search(calendar([every_day("dr_a", "08:00-12:00")], ["op1"], [busy]))
    every_half_hour = ["08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00"]
    assert starts(found) == (expected or every_half_hour)


def test_buffers_must_be_free_but_may_extend_outside_working_hours() -> None:
    kind = AppointmentType(duration_minutes=60, buffer_before_minutes=15, buffer_after_minutes=15)
    cal = calendar(
        [every_day("dr_a", "08:00-12:00")], busy=[appointment("10:00", "10:30", "dr_a", "op9")]
    )
    # 08:00 is offered although its buffer starts at 07:45; 08:30 would end 09:30 and its
    # buffer at 09:45 is free; 09:00 ends 10:00 and its buffer overlaps the appointment.
    assert starts(search(cal, kind)) == ["08:00", "08:30", "11:00"]


def test_day_off_and_replacement_hours() -> None:
    off = DateException(MONDAY)
    short = DateException(MONDAY + timedelta(days=1), (hours("14:00-15:00"),))
    provider = every_day("dr_a", "08:00-12:00", exceptions=[off, short])
    cal = calendar([provider])
    assert search(cal) == []
    assert starts(search(cal, day=MONDAY + timedelta(days=1))) == ["14:00"]
    assert len(search(cal, day=MONDAY + timedelta(days=2))) == 7


def test_weekly_hours_follow_the_weekday() -> None:
    provider = Provider.weekly("dr_a", {0: [hours("08:00-09:00")], 1: [hours("15:00-16:00")]})
    cal = calendar([provider])
    assert starts(search(cal)) == ["08:00"]
    assert starts(search(cal, day=MONDAY + timedelta(days=1))) == ["15:00"]
    assert search(cal, day=MONDAY + timedelta(days=2)) == []


def test_minimum_notice_and_horizon() -> None:
    cal = calendar([every_day("dr_a", "08:00-12:00")])
    now = local(NEW_YORK, at("08:10"))
    rules = BookingRules(min_notice_minutes=60, horizon_days=1, step_minutes=30)
    start, end = local_dates_to_utc(MONDAY, MONDAY + timedelta(days=1), NEW_YORK)
    found = find_slots(cal, CLEANING, rules, now=now, start=start, end=end)
    assert not isinstance(found, Refusal)
    # Not before 09:10 today (notice), not at or after 08:10 tomorrow (horizon).
    assert [s.start_local.strftime("%d %H:%M") for s in found] == [
        "08 09:30",
        "08 10:00",
        "08 10:30",
        "08 11:00",
        "09 08:00",
    ]


def test_any_provider_versus_a_named_provider() -> None:
    cal = calendar([every_day("dr_a", "08:00-09:00"), every_day("dr_b", "10:00-11:00")])
    assert starts(search(cal)) == ["08:00", "10:00"]
    assert search(cal)[1].provider_ids == ("dr_b",)
    assert starts(search(cal, provider_id="dr_b")) == ["10:00"]


def test_allowed_providers_and_operatories_limit_the_candidates() -> None:
    cal = calendar(
        [every_day("dr_a", "08:00-09:00"), every_day("hyg_b", "08:00-09:00")], ["op1", "op2"]
    )
    kind = AppointmentType(
        duration_minutes=60,
        allowed_provider_ids=frozenset({"hyg_b"}),
        allowed_operatory_ids=frozenset({"op2", "op_elsewhere"}),
    )
    (only,) = search(cal, kind)
    assert only.pairs() == (("hyg_b", "op2"),)


def test_slots_in_a_range_start_inside_it_and_are_sorted() -> None:
    cal = calendar([every_day("dr_a", "08:00-12:00"), every_day("dr_b", "09:15-12:00")])
    start = local(NEW_YORK, at("09:00"))
    end = local(NEW_YORK, at("10:30"))
    rules = BookingRules(step_minutes=15)
    found = find_slots(cal, CLEANING, rules, now=NOW, start=start, end=end)
    assert not isinstance(found, Refusal)
    assert starts(found) == ["09:00", "09:15", "09:30", "09:45", "10:00", "10:15"]
    assert [s.provider_ids for s in found[:2]] == [("dr_a",), ("dr_a", "dr_b")]


@pytest.mark.parametrize(
    ("kind", "provider_id", "reason"),
    [
        (AppointmentType(60, self_bookable=False), None, RefusalReason.NOT_SELF_BOOKABLE),
        (AppointmentType(60), "dr_unknown", RefusalReason.PROVIDER_NOT_ALLOWED),
        (
            AppointmentType(60, allowed_provider_ids=frozenset({"dr_b"})),
            "dr_a",
            RefusalReason.PROVIDER_NOT_ALLOWED,
        ),
        (
            AppointmentType(60, allowed_operatory_ids=frozenset({"op_x"})),
            None,
            RefusalReason.OPERATORY_NOT_ALLOWED,
        ),
    ],
)
def test_requests_that_cannot_be_booked_online_get_a_reason(
    kind: AppointmentType, provider_id: str | None, reason: RefusalReason
) -> None:
    cal = calendar([every_day("dr_a", "08:00-12:00")])
    start, end = local_dates_to_utc(MONDAY, MONDAY, NEW_YORK)
    found = find_slots(cal, kind, RULES, now=NOW, start=start, end=end, provider_id=provider_id)
    assert isinstance(found, Refusal)
    assert found.reason is reason
    assert found.detail


def test_zero_length_and_unrelated_busy_intervals_take_nothing() -> None:
    cal = calendar(
        [every_day("dr_a", "08:00-09:00")],
        busy=[appointment("08:30", "08:30", "dr_a", "op1")],
    )
    assert starts(search(cal)) == ["08:00"]


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="end after"):
        Hours(time(10), time(9))
    with pytest.raises(ValueError, match="timezone-aware"):
        Busy(local(NEW_YORK, at("08:00")).replace(tzinfo=None), local(NEW_YORK, at("09:00")))
    with pytest.raises(ValueError, match="7 entries"):
        Provider("dr_a", ((),))
    with pytest.raises(ValueError, match="duration_minutes"):
        AppointmentType(duration_minutes=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        find_slots(
            calendar([]),
            CLEANING,
            RULES,
            now=NOW.replace(tzinfo=None),
            start=NOW,
            end=NOW,
        )


def test_local_dates_to_utc_gives_half_open_bounds() -> None:
    start, end = local_dates_to_utc(MONDAY, MONDAY + timedelta(days=6), NEW_YORK)
    assert start.isoformat() == "2026-06-08T04:00:00+00:00"
    assert end - start == timedelta(days=7)
    with pytest.raises(ValueError):
        local_dates_to_utc(MONDAY, MONDAY - timedelta(days=1), NEW_YORK)


def test_empty_calendar_location_has_no_provider() -> None:
    cal = LocationCalendar(NEW_YORK, (), ("op1",))
    start, end = local_dates_to_utc(MONDAY, MONDAY, NEW_YORK)
    found = find_slots(cal, CLEANING, RULES, now=NOW, start=start, end=end)
    assert isinstance(found, Refusal)
    assert found.reason is RefusalReason.PROVIDER_NOT_ALLOWED


def test_busy_time_with_fractions_of_a_second_still_blocks() -> None:
    ends_just_after_nine = local(NEW_YORK, at("09:00")) + timedelta(microseconds=1)
    cal = calendar(
        [every_day("dr_a", "08:00-11:00")],
        busy=[Busy(local(NEW_YORK, at("08:00")), ends_just_after_nine, "dr_a", "op1")],
    )
    assert starts(search(cal)) == ["09:30", "10:00"]
