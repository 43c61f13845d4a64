"""check_slot / slot_at (each refusal reason) and next_available."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from api.engines.slots import (
    AppointmentType,
    BookingRules,
    Busy,
    DateException,
    Refusal,
    RefusalReason,
    Slot,
    check_slot,
    next_available,
    slot_at,
)
from tests.engines.slots_support import NEW_YORK, calendar, every_day, local

NOW = local(NEW_YORK, "2026-06-08 07:00")
RULES = BookingRules(min_notice_minutes=120, horizon_days=14, step_minutes=15)
CLEANING = AppointmentType(duration_minutes=60, buffer_after_minutes=15)
CAL = calendar(
    [every_day("dr_a", "08:00-12:00"), every_day("dr_b", "08:00-17:00")],
    ["op1", "op2"],
    [
        Busy(
            local(NEW_YORK, "2026-06-08 13:00"), local(NEW_YORK, "2026-06-08 14:00"), "dr_b", "op1"
        ),
        Busy(local(NEW_YORK, "2026-06-08 14:00"), local(NEW_YORK, "2026-06-08 15:00"), "dr_b"),
    ],
)


def at(text: str) -> datetime:
    return local(NEW_YORK, f"2026-06-08 {text}")


@pytest.mark.parametrize(
    ("start", "kind", "provider_id", "operatory_id", "reason"),
    [
        (at("10:00"), AppointmentType(60, self_bookable=False), None, None, "not_self_bookable"),
        (at("10:00"), CLEANING, "dr_zz", None, "provider_not_allowed"),
        (
            at("10:00"),
            AppointmentType(60, allowed_provider_ids=frozenset({"dr_b"})),
            "dr_a",
            None,
            "provider_not_allowed",
        ),
        (at("10:00"), CLEANING, None, "op9", "operatory_not_allowed"),
        (at("08:45"), CLEANING, None, None, "notice"),
        (NOW + timedelta(days=14), CLEANING, None, None, "horizon"),
        (at("10:05"), CLEANING, None, None, "off_grid"),
        (at("17:00"), CLEANING, None, None, "outside_hours"),
        (at("11:30"), CLEANING, "dr_a", None, "outside_hours"),
        (at("13:30"), CLEANING, "dr_b", None, "taken"),
        (at("12:00"), CLEANING, "dr_b", None, "taken"),  # only its buffer after overlaps 13:00
    ],
)
def test_each_refusal_reason(
    start: datetime,
    kind: AppointmentType,
    provider_id: str | None,
    operatory_id: str | None,
    reason: str,
) -> None:
    refusal = check_slot(
        CAL,
        kind,
        RULES,
        now=NOW,
        start=start,
        provider_id=provider_id,
        operatory_id=operatory_id,
    )
    assert refusal is not None
    assert refusal.reason == reason
    assert refusal.detail


def test_bookable_start_returns_none_and_slot_at_lists_candidates() -> None:
    assert check_slot(CAL, CLEANING, RULES, now=NOW, start=at("10:00")) is None
    slot = slot_at(CAL, CLEANING, RULES, now=NOW, start=at("10:00"))
    assert isinstance(slot, Slot)
    assert slot.provider_ids == ("dr_a", "dr_b")
    assert set(slot.pairs()) == {("dr_a", "op1"), ("dr_a", "op2"), ("dr_b", "op1"), ("dr_b", "op2")}
    assert slot.start_local.isoformat() == "2026-06-08T10:00:00-04:00"


def test_a_busy_operatory_leaves_the_other_one() -> None:
    cal = calendar(
        [every_day("dr_a", "08:00-17:00")],
        ["op1", "op2"],
        [Busy(at("13:00"), at("14:00"), "dr_other", "op1")],
    )
    slot = slot_at(cal, CLEANING, RULES, now=NOW, start=at("13:00"))
    assert isinstance(slot, Slot)
    assert slot.pairs() == (("dr_a", "op2"),)
    refusal = check_slot(cal, CLEANING, RULES, now=NOW, start=at("13:00"), operatory_id="op1")
    assert refusal is not None and refusal.reason is RefusalReason.TAKEN


def test_a_location_block_refuses_every_pair() -> None:
    cal = calendar([every_day("dr_a", "08:00-17:00")], busy=[Busy(at("12:00"), at("13:00"))])
    refusal = check_slot(cal, CLEANING, RULES, now=NOW, start=at("12:30"))
    assert refusal is not None and refusal.reason is RefusalReason.TAKEN


def test_start_in_another_zone_is_the_same_instant() -> None:
    start_utc = at("10:00").astimezone(UTC)
    assert check_slot(CAL, CLEANING, RULES, now=NOW, start=start_utc) is None


def test_next_available_skips_taken_and_closed_days() -> None:
    monday = date(2026, 6, 8)
    days_off = [DateException(monday + timedelta(days=n)) for n in range(1, 10)]
    cal = calendar(
        [every_day("dr_a", "08:00-10:00", exceptions=days_off)],
        busy=[Busy(at("08:00"), at("10:00"), "dr_a", "op1")],
    )
    found = next_available(cal, CLEANING, RULES, now=NOW)
    assert isinstance(found, Slot)
    assert found.start_local.isoformat() == "2026-06-18T08:00:00-04:00"


def test_next_available_from_a_given_instant_and_by_provider() -> None:
    found = next_available(CAL, CLEANING, RULES, now=NOW, after=at("11:00"), provider_id="dr_b")
    assert isinstance(found, Slot)
    assert found.start_local.strftime("%H:%M") == "11:00"
    assert found.provider_ids == ("dr_b",)
    first = next_available(CAL, CLEANING, RULES, now=NOW)
    assert isinstance(first, Slot)
    assert first.start_local.strftime("%H:%M") == "09:00"  # 07:00 + 120 minutes' notice


def test_next_available_is_none_when_nothing_is_open_within_the_horizon() -> None:
    cal = calendar(
        [every_day("dr_a", "08:00-09:00")], busy=[Busy(at("00:00"), NOW + timedelta(days=30))]
    )
    assert next_available(cal, CLEANING, RULES, now=NOW) is None


def test_next_available_passes_on_a_refusal() -> None:
    found = next_available(CAL, AppointmentType(30, self_bookable=False), RULES, now=NOW)
    assert isinstance(found, Refusal)
    assert found.reason is RefusalReason.NOT_SELF_BOOKABLE
