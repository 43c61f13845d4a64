"""Every operator of every field type, compiled to SQL and run on real PostgreSQL over a
hand-built chart (tests/segments/chart.py); the explainer must agree on each patient."""

from __future__ import annotations

import pytest

from tests.segments.chart import load_chart
from tests.segments.conftest import day, doc, p

ALL = {"ana", "ben", "cal", "dee", "eve"}


@pytest.fixture
async def chart(make_mirror):
    mirror = await make_mirror()
    await load_chart(mirror)
    return mirror


async def _check(mirror, cases):
    for predicate, expected in cases:
        assert await mirror.both(doc(predicate)) == expected, predicate


async def test_number_and_money_operators(chart):
    await _check(
        chart,
        [
            (p("age", "eq", 35), {"ana"}),  # birthday tomorrow
            (p("age", "ne", 35), {"ben"}),  # no birthdate matches nothing
            (p("age", "gt", 35), {"ben"}),  # 36 today
            (p("age", "gte", 35), {"ana", "ben"}),
            (p("age", "lt", 36), {"ana"}),
            (p("age", "lte", 36), {"ana", "ben"}),
            (p("age", "between", [36, 40]), {"ben"}),
            (p("balance", "gt", 200), {"ana", "ben"}),  # ben through his guarantor
            (p("balance", "eq", 0), {"cal", "eve"}),  # no ledger row is $0
            (p("balance", "ne", "310.00"), {"cal", "dee", "eve"}),
            (p("balance", "gte", 310), {"ana", "ben"}),
            (p("balance", "lt", 0.01), {"cal", "eve"}),
            (p("balance", "lte", 50), {"cal", "dee", "eve"}),
            (p("balance", "between", [1, 100]), {"dee"}),
        ],
    )


async def test_date_operators_use_the_location_today(chart):
    await _check(
        chart,
        [
            (p("last_visit_date", "on", day(-100)), {"ana"}),
            (p("last_visit_date", "before", day(-100)), {"ben"}),
            (p("last_visit_date", "after", day(-400)), {"ana"}),
            (p("last_visit_date", "between", [day(-400), day(-100)]), {"ana", "ben"}),
            (p("last_visit_date", "more_than_days_ago", 100), {"ben"}),
            (p("last_visit_date", "more_than_days_ago", 99), {"ana", "ben"}),
            (p("last_visit_date", "less_than_days_ago", 101), {"ana"}),
            (p("last_visit_date", "more_than_months_ago", 13), {"ben"}),
            (p("last_visit_date", "less_than_months_ago", 4), {"ana"}),
            (p("last_visit_date", "is_empty"), {"cal", "dee", "eve"}),
            (p("last_visit_date", "has_value"), {"ana", "ben"}),
            (p("first_visit_date", "less_than_days_ago", 90), {"ben"}),
            # dee's 03:00Z appointment is tonight in Chicago; cal's 05:00Z was last night.
            (p("next_appointment_date", "on", day(0)), {"dee"}),
            (p("next_appointment_date", "within_next_days", 5), {"dee"}),
            (p("next_appointment_date", "within_next_days", 10), {"ana", "dee"}),
            (p("next_appointment_date", "is_empty"), {"ben", "cal", "eve"}),
            (p("next_recall_due_date", "within_next_days", 30), {"ana"}),
            (p("next_recall_due_date", "before", day(0)), {"ben", "cal", "dee"}),
        ],
    )


async def test_string_operators_are_case_insensitive(chart):
    await _check(
        chart,
        [
            (p("primary_provider_name", "equals", "dr. ana okafor"), {"ana"}),
            (p("primary_provider_name", "starts_with", "DR."), {"ana"}),
            (p("primary_provider_name", "ends_with", "gienist"), {"ben"}),
            (p("primary_provider_name", "contains", "ana"), {"ana"}),
            (p("primary_provider_name", "not_contains", "okafor"), {"ben"}),
            (p("primary_provider_name", "unknown"), {"cal", "dee", "eve"}),
            (p("primary_provider_name", "has_value"), {"ana", "ben"}),
            (p("email", "contains", "ben.lee"), {"ben"}),
            (p("email", "unknown"), {"cal", "dee", "eve"}),
        ],
    )


async def test_enum_and_boolean_operators(chart):
    await _check(
        chart,
        [
            (p("status", "in", ["active"]), {"ana", "ben", "dee"}),
            (p("status", "not_in", ["active", "inactive"]), {"eve"}),
            (p("communication_preference", "in", ["email"]), {"dee"}),
            (p("location_id", "in", [chart.location_id]), ALL),
            (p("location_id", "not_in", [chart.location_id]), set()),
            (p("sms_consent", "is", True), {"ana"}),
            (p("sms_consent", "is", False), {"ben", "cal", "dee", "eve"}),
            (p("in_collections", "is", True), {"dee"}),
            (p("household_has_inactive_members", "is", True), {"ana", "ben"}),
            (p("household_has_inactive_members", "is", False), {"cal", "dee", "eve"}),
        ],
    )
    provider = await chart.id_of("providers", "DR1")
    await _check(chart, [(p("primary_provider_id", "not_in", [provider]), {"ben"})])


async def test_appointment_and_recall_existence(chart):
    dr1 = await chart.id_of("providers", "DR1")
    at1 = await chart.id_of("appointment_types", "AT1")
    await _check(
        chart,
        [
            (p("future_appointment", "exists", {}), {"ana", "dee"}),
            (p("future_appointment", "not_exists", {}), {"ben", "cal", "eve"}),
            (p("future_appointment", "exists", {"within_days": 5}), {"dee"}),
            (p("future_appointment", "exists", {"provider_ids": [dr1]}), {"ana"}),
            (p("future_appointment", "exists", {"appointment_type_ids": [at1]}), {"ana"}),
            (p("overdue_hygiene", "exists", {}), {"ben", "cal", "dee"}),
            (p("overdue_hygiene", "exists", {"recall_types": ["prophy"]}), {"ben", "cal"}),
            (p("overdue_hygiene", "exists", {"recall_types": ["perio"]}), {"dee"}),
            (p("overdue_hygiene", "exists", {"due": "before", "days": 100}), {"ben", "dee"}),
            (p("overdue_hygiene", "exists", {"due": "on", "days": 10}), {"cal"}),
            (p("overdue_hygiene", "exists", {"due": "after", "days": 30}), {"ana", "cal"}),
            (p("overdue_hygiene", "exists", {"days": -31}), {"ana", "ben", "cal", "dee"}),
            (
                p(
                    "overdue_hygiene",
                    "exists",
                    {"overdue_more_than_months": 6, "overdue_less_than_months": 9},
                ),
                {"ben"},
            ),
            (p("overdue_hygiene", "exists", {"overdue_more_than_months": 12}), {"dee"}),
        ],
    )


async def test_treatment_existence(chart):
    await _check(
        chart,
        [
            (p("unscheduled_treatment", "exists", {}), {"ana", "ben"}),
            (p("unscheduled_treatment", "exists", {"statuses": ["accepted"]}), {"ben"}),
            (p("unscheduled_treatment", "exists", {"code_prefixes": ["D29"]}), {"ana"}),
            (p("unscheduled_treatment", "exists", {"codes": ["d2740"]}), {"ana", "ben"}),
            (p("unscheduled_treatment", "exists", {"min_total_fee": 1000}), {"ana"}),
            (
                p("unscheduled_treatment", "not_exists", {"min_total_fee": 1000}),
                {"ben", "cal", "dee", "eve"},
            ),
            (p("incomplete_treatment", "exists", {}), {"ben", "dee"}),
            (p("incomplete_treatment", "exists", {"code_prefixes": ["D43"]}), {"dee"}),
            (p("open_treatment_plan", "exists", {}), {"ana", "ben"}),
            (p("open_treatment_plan", "exists", {"min_total_fee": 1200}), {"ana"}),
            (p("open_treatment_plan", "exists", {"nothing_accepted": True}), {"ana"}),
            (p("open_treatment_plan", "exists", {"statuses": ["accepted"]}), {"ben"}),
            (
                p(
                    "completed_without_followup",
                    "exists",
                    {"codes": ["D2799"], "followup_codes": ["D2740"]},
                ),
                {"ben"},  # dee's crown (charted as d2740) was seated after the prep
            ),
            (
                p(
                    "completed_without_followup",
                    "exists",
                    {
                        "codes": ["D2799"],
                        "followup_code_prefixes": ["D27"],
                        "completed_more_than_days_ago": 60,
                    },
                ),
                set(),  # ben's prep is exactly 60 days old
            ),
        ],
    )


async def test_contact_existence_uses_local_dates(chart):
    await _check(
        chart,
        [
            (p("contacted", "exists", {"within_days": 14}), {"ana", "dee"}),
            (p("contacted", "exists", {"kinds": ["Statement"], "within_days": 30}), {"ana"}),
            (
                p("contacted", "not_exists", {"kinds": ["statement"], "within_days": 30}),
                {"ben", "cal", "dee", "eve"},
            ),
            (p("contacted", "exists", {"channels": ["sms"]}), {"ben"}),
            (p("contacted", "exists", {"directions": ["inbound"]}), {"dee"}),
            # 05:30Z today is 23:30 yesterday in Chicago.
            (p("contacted", "exists", {"within_days": 0}), set()),
            (p("contacted", "exists", {"within_days": 1}), {"dee"}),
        ],
    )


async def test_groups_nest_and_not_is_an_exact_complement(chart):
    balance = p("balance", "gt", 200)
    old_visit = p("last_visit_date", "more_than_days_ago", 99)
    assert await chart.both({"version": 1, "rule": {"all": []}}) == ALL
    assert await chart.both({"version": 1, "rule": {"any": []}}) == set()
    assert await chart.both({"version": 1, "rule": {"not": balance}}) == {"cal", "dee", "eve"}
    assert await chart.both({"version": 1, "rule": {"not": old_visit}}) == {"cal", "dee", "eve"}
    nested = {
        "any": [
            {"all": [balance, {"not": {"field": "age", "op": "gte", "value": 36}}]},
            {"not": {"any": [{"not": p("in_collections", "is", True)}]}},
        ]
    }
    assert await chart.both({"version": 1, "rule": nested}) == {"ana", "dee"}


async def test_tombstoned_rows_never_count(chart):
    await chart.load("appointments", [], deletes=["a4"])
    await chart.load("patients", [], deletes=["eve"])
    assert await chart.both(doc(p("future_appointment", "exists", {}))) == {"ana"}
    assert await chart.both(doc(p("status", "in", ["archived"]))) == set()


async def test_a_followup_on_the_same_day_completes_the_treatment(chart):
    rule = doc(
        p("completed_without_followup", "exists", {"codes": ["D2799"], "followup_codes": ["D2740"]})
    )
    assert await chart.both(rule) == {"ben"}
    seat = {
        "external_id": "x9",
        "patient_external_id": "ben",
        "code": "D2740",
        "fee": "900",
        "status": "completed",
        "completed_date": day(-60),
    }
    await chart.load("procedures", [seat])
    assert await chart.both(rule) == set()
