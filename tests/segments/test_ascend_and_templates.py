"""Coverage: every Dentrix Ascend campaign filter and every built-in template, on a
crafted practice, returns exactly the patients it should (SQL and explainer agree)."""

from __future__ import annotations

import pytest

from api.segments.templates import TEMPLATES, TEMPLATES_BY_KEY
from tests.segments.conftest import day, doc, p, patient


def _appt(ext: str, who: str, offset: int) -> dict:
    start = f"{day(offset)}T15:00:00Z"
    return {
        "external_id": ext,
        "patient_external_id": who,
        "start_at": start,
        "end_at": start.replace("15:00", "16:00"),
        "status": "scheduled",
    }


def _recall(who: str, kind: str, offset: int) -> dict:
    return {
        "external_id": f"r-{who}",
        "patient_external_id": who,
        "recall_type": kind,
        "due_date": day(offset),
    }


def _proc(ext: str, who: str, code: str, status: str, **kw) -> dict:
    return {"external_id": ext, "patient_external_id": who, "code": code, "status": status} | kw


@pytest.fixture
async def practice_chart(make_mirror):
    m = await make_mirror()
    await m.load("providers", [{"external_id": "GK", "kind": "dentist", "name": "Dr. Grace Kim"}])
    await m.load(
        "patients",
        [
            patient("recall_due"),
            patient("recall_booked"),
            patient("recall_future"),
            patient("lapsed", last_visit_date=day(-450)),
            patient("lapsed_booked", last_visit_date=day(-450)),
            patient("dormant", last_visit_date=day(-800)),
            patient(
                "newbie",
                first_visit_date=day(-20),
                last_visit_date=day(-20),
                primary_provider_external_id="GK",
            ),
            patient("plan_open"),
            patient("plan_partly"),
            patient("balance_due"),
            patient("balance_only"),
            *(patient(f"{k}_{n}") for k in ("pro", "perio") for n in (7, 10, 14)),
            patient("accepted"),
            patient("prep"),
            patient("seated"),
            patient("fam_active", household_id="H9"),
            patient("fam_inactive", household_id="H9", status="inactive"),
        ],
    )
    await m.load("appointments", [_appt("a1", "recall_booked", 3), _appt("a2", "lapsed_booked", 3)])
    recalls = [
        _recall("recall_due", "prophy", -20),
        _recall("recall_booked", "prophy", -20),
        _recall("recall_future", "prophy", 20),
        _recall("balance_due", "prophy", -5),
    ]
    for kind in ("pro", "perio"):
        for months, offset in ((7, -213), (10, -300), (14, -430)):
            recalls.append(
                _recall(f"{kind}_{months}", "prophy" if kind == "pro" else "perio", offset)
            )
    await m.load("recalls", recalls)
    await m.load(
        "treatment-plans",
        [
            {
                "external_id": "tp1",
                "patient_external_id": "plan_open",
                "name": "C",
                "status": "proposed",
            },
            {
                "external_id": "tp2",
                "patient_external_id": "plan_partly",
                "name": "C",
                "status": "proposed",
            },
        ],
    )
    await m.load(
        "procedures",
        [
            _proc(
                "x1", "plan_open", "D2740", "proposed", fee="1300", treatment_plan_external_id="tp1"
            ),
            _proc(
                "x2",
                "plan_partly",
                "D2740",
                "accepted",
                fee="1300",
                treatment_plan_external_id="tp2",
            ),
            _proc(
                "x3",
                "plan_partly",
                "D2950",
                "proposed",
                fee="200",
                treatment_plan_external_id="tp2",
            ),
            _proc("x4", "accepted", "D2391", "accepted", fee="180"),
            _proc("x5", "prep", "D2799", "completed", completed_date=day(-30)),
            _proc("x6", "seated", "D2799", "completed", completed_date=day(-60)),
            _proc("x7", "seated", "D2750", "completed", completed_date=day(-30)),
        ],
    )
    await m.load(
        "ledger",
        [
            {"external_id": "L1", "guarantor_external_id": "balance_due", "balance": "120"},
            {"external_id": "L2", "guarantor_external_id": "balance_only", "balance": "120"},
        ],
    )
    return m


EXPECTED = {
    "due_for_recall": {
        "recall_due",
        "balance_due",
        "pro_7",
        "pro_10",
        "pro_14",
        "perio_7",
        "perio_10",
        "perio_14",
    },
    "lapsed": {"lapsed"},
    "open_treatment_plan": {"plan_open"},
    "new_patient": {"newbie"},
    "balance_and_due": {"balance_due"},
    "winback_prophy_6_9": {"pro_7"},
    "winback_prophy_9_12": {"pro_10"},
    "winback_prophy_12_plus": {"pro_14"},
    "winback_perio_6_9": {"perio_7"},
    "winback_perio_9_12": {"perio_10"},
    "winback_perio_12_plus": {"perio_14"},
    "accepted_unscheduled_treatment": {"accepted", "plan_partly"},
    "incomplete_crown": {"prep"},
    "dormant_18_months": {"dormant"},
    "household_inactive_members": {"fam_active"},
}


def test_every_template_has_an_expectation():
    assert set(EXPECTED) == set(TEMPLATES_BY_KEY)
    assert len(TEMPLATES) == len(TEMPLATES_BY_KEY)


@pytest.mark.parametrize("key", sorted(EXPECTED))
async def test_template_returns_its_patients(practice_chart, key):
    assert await practice_chart.both(TEMPLATES_BY_KEY[key].rule) == EXPECTED[key]


ASCEND = [
    # Last Visit: on, before, after, within a range
    (p("last_visit_date", "on", day(-20)), {"newbie"}),
    (p("last_visit_date", "before", day(-700)), {"dormant"}),
    (p("last_visit_date", "after", day(-25)), {"newbie"}),
    (p("last_visit_date", "between", [day(-500), day(-400)]), {"lapsed", "lapsed_booked"}),
    # Overdue For Hygiene: recare type, due on / before / after N days
    (
        p("overdue_hygiene", "exists", {"recall_types": ["perio"], "due": "before", "days": 250}),
        {"perio_10", "perio_14"},
    ),
    (
        p("overdue_hygiene", "exists", {"recall_types": ["prophy"], "due": "on", "days": 20}),
        {"recall_due", "recall_booked"},
    ),
    (
        p("overdue_hygiene", "exists", {"recall_types": ["prophy"], "due": "after", "days": 10}),
        {"recall_future", "balance_due"},
    ),
    # Has Unscheduled Treatment
    (p("unscheduled_treatment", "exists", {}), {"plan_open", "plan_partly", "accepted"}),
    # Patient Status
    (p("status", "in", ["inactive"]), {"fam_inactive"}),
    # Provider (by name: equal, starts with, ends with, contains, not contains, unknown, value)
    (p("primary_provider_name", "equals", "Dr. Grace Kim"), {"newbie"}),
    (p("primary_provider_name", "starts_with", "dr. g"), {"newbie"}),
    (p("primary_provider_name", "ends_with", "kim"), {"newbie"}),
    (p("primary_provider_name", "contains", "grace"), {"newbie"}),
    (p("primary_provider_name", "not_contains", "grace"), set()),
    (p("primary_provider_name", "has_value"), {"newbie"}),
    # Scheduled Appointment: has / has not
    (p("future_appointment", "exists", {}), {"recall_booked", "lapsed_booked"}),
    # Future Appointment: on, before, after, within a range
    (p("next_appointment_date", "on", day(3)), {"recall_booked", "lapsed_booked"}),
    (p("next_appointment_date", "before", day(3)), set()),
    (p("next_appointment_date", "after", day(2)), {"recall_booked", "lapsed_booked"}),
    (p("next_appointment_date", "between", [day(0), day(7)]), {"recall_booked", "lapsed_booked"}),
]


async def test_every_ascend_filter(practice_chart):
    everyone = await practice_chart.both(doc())
    assert len(everyone) == 22
    for predicate, expected in ASCEND:
        assert await practice_chart.both(doc(predicate)) == expected, predicate
    unscheduled = await practice_chart.both(doc(p("future_appointment", "not_exists", {})))
    assert unscheduled == everyone - {"recall_booked", "lapsed_booked"}
    unknown = await practice_chart.both(doc(p("primary_provider_name", "unknown")))
    assert unknown == everyone - {"newbie"}


async def test_balance_recall_and_no_statement_is_expressible(make_mirror):
    m = await make_mirror()
    await m.load("patients", [patient(x) for x in ("owes", "stated", "not_due", "small", "old")])
    await m.load(
        "ledger",
        [
            {"external_id": f"L-{x}", "guarantor_external_id": x, "balance": bal}
            for x, bal in (
                ("owes", "250"),
                ("stated", "250"),
                ("not_due", "250"),
                ("small", "150"),
                ("old", "900"),
            )
        ],
    )
    await m.load(
        "recalls",
        [_recall(x, "prophy", -40) for x in ("owes", "stated", "small", "old")]
        + [_recall("not_due", "prophy", 40)],
    )
    await m.load(
        "communications",
        [
            {
                "external_id": "c1",
                "patient_external_id": "stated",
                "channel": "email",
                "direction": "outbound",
                "contacted_at": f"{day(-10)}T15:00:00Z",
                "kind": "statement",
            },
            {
                "external_id": "c2",
                "patient_external_id": "old",
                "channel": "letter",
                "direction": "outbound",
                "contacted_at": f"{day(-45)}T15:00:00Z",
                "kind": "statement",
            },
            {
                "external_id": "c3",
                "patient_external_id": "owes",
                "channel": "sms",
                "direction": "outbound",
                "contacted_at": f"{day(-2)}T15:00:00Z",
                "kind": "recall",
            },
        ],
    )
    rule = doc(
        p("balance", "gt", 200),
        p("overdue_hygiene", "exists", {}),
        p("contacted", "not_exists", {"kinds": ["statement"], "within_days": 30}),
    )
    assert await m.both(rule) == {"owes", "old"}


async def test_open_plan_over_1200_and_no_contact_in_14_days_is_expressible(make_mirror):
    m = await make_mirror()
    names = ("quiet", "texted", "small", "long_ago")
    await m.load("patients", [patient(x) for x in names])
    await m.load(
        "treatment-plans",
        [
            {
                "external_id": f"tp-{x}",
                "patient_external_id": x,
                "name": "Plan",
                "status": "proposed",
            }
            for x in names
        ],
    )
    await m.load(
        "procedures",
        [
            _proc(
                f"x-{x}",
                x,
                "D2740",
                "proposed",
                fee="800" if x == "small" else "1300",
                treatment_plan_external_id=f"tp-{x}",
            )
            for x in names
        ],
    )
    await m.load(
        "communications",
        [
            {
                "external_id": "c1",
                "patient_external_id": "texted",
                "channel": "sms",
                "direction": "outbound",
                "contacted_at": f"{day(-5)}T15:00:00Z",
            },
            {
                "external_id": "c2",
                "patient_external_id": "long_ago",
                "channel": "sms",
                "direction": "outbound",
                "contacted_at": f"{day(-20)}T15:00:00Z",
            },
        ],
    )
    rule = doc(
        p("open_treatment_plan", "exists", {"min_total_fee": 1200}),
        p("contacted", "not_exists", {"within_days": 14}),
    )
    assert await m.both(rule) == {"quiet", "long_ago"}
