"""The rule language without a database: validation with JSON pointers, the catalog's
shape, month arithmetic, and explanations of a hand-made snapshot."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from api.engines.rules import (
    FIELDS,
    OPERATORS,
    AppointmentRecord,
    LedgerRecord,
    PatientSnapshot,
    RuleInvalid,
    explain,
    months_before,
    parse_rule,
)
from api.engines.rules.catalog import SCALAR_SQL


def _errors(document) -> list[tuple[str, str]]:
    with pytest.raises(RuleInvalid) as caught:
        parse_rule(document)
    return [(e.pointer, e.message) for e in caught.value.errors]


def test_every_field_has_operators_and_sql():
    for spec in FIELDS:
        assert spec.operators == OPERATORS[spec.type]
        if spec.type != "existence":
            assert spec.name in SCALAR_SQL, spec.name
        else:
            assert spec.qualifiers, spec.name


def test_errors_point_into_the_rule_document():
    document = {
        "version": 1,
        "rule": {
            "all": [
                {"field": "balance", "op": "gt", "value": 200},
                {"field": "status", "op": "in", "value": ["active"]},
                {"field": "balance", "op": "gt", "value": "lots"},
                {"any": [{"not": {"field": "nope", "op": "eq", "value": 1}}]},
                {
                    "field": "last_visit_date",
                    "op": "between",
                    "value": ["2026-02-01", "2026-01-01"],
                },
                {"field": "contacted", "op": "exists", "value": {"within": 3}},
                {"field": "age", "op": "like", "value": 3},
                {"field": "status", "op": "in", "value": ["active", "gone"]},
            ]
        },
    }
    pointers = [pointer for pointer, _ in _errors(document)]
    assert pointers == [
        "/rule/all/2/value",
        "/rule/all/3/any/0/not/field",
        "/rule/all/4/value/1",
        "/rule/all/5/value/within",
        "/rule/all/6/op",
        "/rule/all/7/value/1",
    ]


@pytest.mark.parametrize(
    ("document", "pointer"),
    [
        ({"rule": {"all": []}}, "/version"),
        ({"version": 2, "rule": {"all": []}}, "/version"),
        ({"version": 1}, "/rule"),
        ({"version": 1, "rule": {"all": {}}}, "/rule/all"),
        ({"version": 1, "rule": {"all": [], "any": []}}, "/rule"),
        ({"version": 1, "rule": {"field": "age", "op": "eq", "value": 1, "x": 1}}, "/rule/x"),
        ({"version": 1, "rule": {"field": "age", "op": "eq"}}, "/rule/value"),
        (
            {"version": 1, "rule": {"field": "last_visit_date", "op": "is_empty", "value": 3}},
            "/rule/value",
        ),
        (
            {
                "version": 1,
                "rule": {"field": "completed_without_followup", "op": "exists", "value": {}},
            },
            "/rule/value",
        ),
        (
            {
                "version": 1,
                "rule": {
                    "field": "unscheduled_treatment",
                    "op": "exists",
                    "value": {"codes": ["D27%"]},
                },
            },
            "/rule/value/codes/0",
        ),
        (
            {"version": 1, "rule": {"field": "sms_consent", "op": "is", "value": "yes"}},
            "/rule/value",
        ),
        ("not a rule", ""),
    ],
)
def test_invalid_documents(document, pointer):
    assert pointer in [p for p, _ in _errors(document)]


def test_depth_is_limited():
    node: dict = {"field": "age", "op": "gt", "value": 1}
    for _ in range(40):
        node = {"not": node}
    assert any("nest" in message for _, message in _errors({"version": 1, "rule": node}))


def test_months_before_clamps_like_postgres():
    assert months_before(dt.date(2026, 3, 31), 1) == dt.date(2026, 2, 28)
    assert months_before(dt.date(2024, 3, 31), 1) == dt.date(2024, 2, 29)
    assert months_before(dt.date(2026, 1, 15), 13) == dt.date(2024, 12, 15)
    assert months_before(dt.date(2026, 11, 23), 0) == dt.date(2026, 11, 23)


def test_explanation_reports_every_predicate_with_pointer_and_observed_value():
    today = dt.date(2026, 11, 23)
    snapshot = PatientSnapshot(
        id="pat_1",
        location_id="loc_1",
        first_name="Ana",
        last_name="Lee",
        status="active",
        last_visit_date=dt.date(2025, 9, 1),
        appointments=(AppointmentRecord("apt_1", "cancelled", dt.date(2026, 12, 1)),),
        ledger=(LedgerRecord(Decimal("120.50")),),
    )
    rule = parse_rule(
        {
            "version": 1,
            "rule": {
                "all": [
                    {"field": "balance", "op": "gt", "value": 200},
                    {"not": {"field": "future_appointment", "op": "exists", "value": {}}},
                    {"field": "last_visit_date", "op": "more_than_months_ago", "value": 13},
                ]
            },
        }
    )
    explanation = explain(rule, snapshot, today)
    tree = explanation.root.as_dict()
    assert explanation.matched is False
    assert tree["pointer"] == "/rule" and tree["result"] is False
    balance, no_future, last_visit = tree["children"]
    assert balance == {
        "pointer": "/rule/all/0",
        "kind": "predicate",
        "result": False,
        "field": "balance",
        "op": "gt",
        "value": "200",
        "observed": "120.50",
    }
    assert no_future["result"] is True
    assert no_future["children"][0]["observed"] == {"appointment_ids": []}
    assert last_visit["result"] is True and last_visit["observed"] == "2025-09-01"
