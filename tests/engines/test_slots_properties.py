"""Property tests: random schedules and busy time around DST days, held against a
minute-by-minute oracle and against check_slot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    check_slot,
    find_slots,
    local_dates_to_utc,
)
from tests.engines.slots_support import MinuteOracle

ZONES_AND_DAYS = [
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Europe/London", date(2026, 3, 29)),
    ("Europe/London", date(2026, 10, 25)),
    ("Australia/Sydney", date(2026, 4, 5)),
    ("Australia/Sydney", date(2026, 10, 4)),
    ("Asia/Kolkata", date(2026, 6, 8)),
    ("UTC", date(2026, 6, 8)),
]
PROVIDERS = ("dr_a", "dr_b", "hyg_c")
OPERATORIES = ("op1", "op2", "op3")


@dataclass(frozen=True)
class Scenario:
    calendar: LocationCalendar
    kind: AppointmentType
    rules: BookingRules
    now: datetime
    start: datetime
    end: datetime
    provider_id: str | None


@st.composite
def working_hours(draw: st.DrawFn) -> tuple[Hours, ...]:
    result = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 2]))):
        begin = draw(st.integers(0, 280)) * 5
        length = draw(st.integers(1, 120)) * 5
        end = min(begin + length, 23 * 60 + 55)
        if end > begin:
            result.append(Hours(time(begin // 60, begin % 60), time(end // 60, end % 60)))
    return tuple(result)


@st.composite
def providers(draw: st.DrawFn, first_day: date) -> tuple[Provider, ...]:
    count = draw(st.integers(1, 3))
    result = []
    for provider_id in PROVIDERS[:count]:
        week = tuple(draw(working_hours()) for _ in range(7))
        offsets = draw(st.sets(st.integers(0, 2), max_size=2))
        exceptions = tuple(
            DateException(first_day + timedelta(days=n), draw(working_hours()))
            for n in sorted(offsets)
        )
        result.append(Provider(provider_id, week, exceptions))
    return tuple(result)


def allowed(ids: tuple[str, ...]) -> st.SearchStrategy[frozenset[str]]:
    """Mostly "any" (empty), sometimes a subset that may name ids the location lacks."""
    subsets = st.frozensets(st.sampled_from(ids), min_size=1, max_size=2)
    return st.one_of(st.just(frozenset[str]()), st.just(frozenset[str]()), subsets)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    zone, dst_day = draw(st.sampled_from(ZONES_AND_DAYS))
    first_day = dst_day - timedelta(days=1)
    start, end = local_dates_to_utc(first_day, dst_day + timedelta(days=1), zone)
    staff = draw(providers(first_day))
    operatories = OPERATORIES[: draw(st.integers(1, 3))]
    ids = [p.provider_id for p in staff]
    busy = []
    for _ in range(draw(st.integers(0, 12))):
        busy_start = start + timedelta(minutes=draw(st.integers(-120, 3 * 24 * 60)))
        busy_end = busy_start + timedelta(minutes=draw(st.integers(0, 240)))
        who = draw(st.sampled_from([*ids, None, "dr_elsewhere"]))
        where = draw(st.sampled_from([*operatories, None, None]))
        busy.append(Busy(busy_start, busy_end, who, where))
    kind = AppointmentType(
        duration_minutes=draw(st.integers(1, 24)) * 5,
        allowed_provider_ids=draw(allowed(PROVIDERS)),
        allowed_operatory_ids=draw(allowed(OPERATORIES)),
        self_bookable=draw(st.sampled_from([True] * 9 + [False])),
        buffer_before_minutes=draw(st.sampled_from([0, 0, 5, 10, 15])),
        buffer_after_minutes=draw(st.sampled_from([0, 0, 5, 10, 30])),
    )
    rules = BookingRules(
        min_notice_minutes=draw(st.sampled_from([0, 0, 30, 120, 24 * 60])),
        horizon_days=draw(st.sampled_from([0, 1, 2, 4, 4, 4])),
        step_minutes=draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60])),
    )
    now = start + timedelta(minutes=draw(st.integers(-2 * 24 * 60, 24 * 60)))
    provider_id = draw(st.sampled_from([None, None, None, *ids, "dr_elsewhere"]))
    calendar = LocationCalendar(zone, staff, operatories, tuple(busy))
    return Scenario(calendar, kind, rules, now, start, end, provider_id)


def run(case: Scenario) -> list[Slot] | Refusal:
    return find_slots(
        case.calendar,
        case.kind,
        case.rules,
        now=case.now,
        start=case.start,
        end=case.end,
        provider_id=case.provider_id,
    )


def check(case: Scenario, start: datetime) -> Refusal | None:
    return check_slot(
        case.calendar,
        case.kind,
        case.rules,
        now=case.now,
        start=start,
        provider_id=case.provider_id,
    )


def expected_refusal(case: Scenario) -> RefusalReason | None:
    kind = case.kind
    if not kind.self_bookable:
        return RefusalReason.NOT_SELF_BOOKABLE
    if not any(
        kind.allows_provider(p.provider_id) and case.provider_id in (None, p.provider_id)
        for p in case.calendar.providers
    ):
        return RefusalReason.PROVIDER_NOT_ALLOWED
    if not any(kind.allows_operatory(o) for o in case.calendar.operatory_ids):
        return RefusalReason.OPERATORY_NOT_ALLOWED
    return None


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_slots_equal_a_minute_by_minute_oracle(case: Scenario) -> None:
    found = run(case)
    oracle = MinuteOracle(case.calendar, case.start, case.end)
    grid = oracle.grid(case.start, case.end, case.rules.step_minutes)
    if isinstance(found, Refusal):
        assert found.reason is expected_refusal(case)
        return
    assert expected_refusal(case) is None
    earliest = case.now + timedelta(minutes=case.rules.min_notice_minutes)
    horizon = case.now + timedelta(days=case.rules.horizon_days)
    expected = {
        g: pairs
        for g in grid
        if earliest <= g < horizon
        for pairs in [oracle.free_pairs(g, case.kind, case.provider_id)]
        if pairs
    }
    assert {slot.start_utc: set(slot.pairs()) for slot in found} == expected


@PROPERTY
@given(scenarios())
def test_offered_slots_are_on_the_grid_in_hours_and_clear_of_busy_time(case: Scenario) -> None:
    found = run(case)
    if isinstance(found, Refusal):
        return
    kind = case.kind
    oracle = MinuteOracle(case.calendar, case.start, case.end)
    providers = {p.provider_id: p for p in case.calendar.providers}
    assert [s.start_utc for s in found] == sorted({s.start_utc for s in found})
    for slot in found:
        wall = slot.start_local
        assert wall.utcoffset() == slot.start_utc.astimezone(oracle.zone).utcoffset()
        assert (wall.hour * 60 + wall.minute) % case.rules.step_minutes == 0
        assert wall.second == 0 and wall.microsecond == 0
        assert slot.end_utc - slot.start_utc == timedelta(minutes=kind.duration_minutes)
        assert case.start <= slot.start_utc < case.end
        window_start = slot.start_utc - timedelta(minutes=kind.buffer_before_minutes)
        window_end = slot.end_utc + timedelta(minutes=kind.buffer_after_minutes)
        for provider_id, operatory_id in slot.pairs():
            assert kind.allows_provider(provider_id) and kind.allows_operatory(operatory_id)
            assert oracle.in_hours(providers[provider_id], slot.start_utc, kind.duration_minutes)
            for busy in case.calendar.busy:
                # An empty interval [t, t) occupies no time.
                overlaps = busy.start < min(busy.end, window_end) and busy.end > window_start
                applies = (busy.provider_id, busy.operatory_id) == (None, None) or (
                    busy.provider_id == provider_id or busy.operatory_id == operatory_id
                )
                assert not (overlaps and applies), (slot, busy)


@PROPERTY
@given(scenarios(), st.lists(st.integers(0, 3 * 24 * 60 - 1), max_size=8))
def test_check_slot_agrees_with_the_slot_list(case: Scenario, extra_minutes: list[int]) -> None:
    found = run(case)
    oracle = MinuteOracle(case.calendar, case.start, case.end)
    candidates = oracle.grid(case.start, case.end, case.rules.step_minutes)
    candidates += [case.start + timedelta(minutes=m) for m in extra_minutes]
    if isinstance(found, Refusal):
        assert all(check(case, start) == found for start in candidates)
        return
    offered = {slot.start_utc for slot in found}
    for start in candidates:
        refusal = check(case, start)
        assert (refusal is None) == (start in offered), (start, refusal)
