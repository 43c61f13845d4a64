"""Hypothesis strategies: random mirror rows for a small practice, and random rules (any
field, any operator, values drawn from pools that the rows also use, so predicates hit)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from api.engines.rules import FIELDS, FieldSpec
from tests.segments.conftest import day

# Few distinct values, so random dates land on the operators' boundaries.
OFFSETS = st.sampled_from(
    [-800, -400, -366, -365, -300, -213, -200, -100, -90, -60, -30, -14, -10, -1, 0, 1, 10, 30]
)
DAY_COUNTS = st.sampled_from([0, 1, 10, 14, 30, 60, 90, 100, 200, 365, 400])
MONTH_COUNTS = st.sampled_from([0, 1, 3, 6, 7, 9, 12, 13, 24])
CODES = ["D2740", "D2799", "D2750", "D1110", "d4341"]
FEES = ["0", "100", "650", "1300"]
RECALL_TYPES = ["prophy", "perio", "Fluoride"]
KINDS = [None, "statement", "recall", "Marketing"]
MONEY = [-20, 0, 100, 150, 200, "250.5", 1000, 1300, 1950]
STRINGS = ["dr", "ana", "a", "hy", "x.com", "bob", "Lee", "+1512"]


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _date() -> st.SearchStrategy[str]:
    return OFFSETS.map(day)


def _moment() -> st.SearchStrategy[str]:
    # Any hour: the location's time zone decides which local date it falls on.
    return st.tuples(OFFSETS, st.integers(0, 23)).map(lambda t: f"{day(t[0])}T{t[1]:02d}:30:00Z")


@st.composite
def practices(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    count = draw(st.integers(2, 8))
    names = [f"p{i}" for i in range(count)]
    rows: dict[str, list[dict[str, Any]]] = {
        k: []
        for k in (
            "patients",
            "appointments",
            "recalls",
            "treatment-plans",
            "procedures",
            "ledger",
            "communications",
        )
    }
    for i, name in enumerate(names):
        rows["patients"].append(
            {
                "external_id": name,
                "first_name": draw(st.sampled_from(["Ana", "Bob", "Cy"])),
                "last_name": "Lee",
                "status": draw(st.sampled_from(["active", "inactive", "archived", "deceased"])),
                "birthdate": draw(
                    _maybe(
                        st.sampled_from(
                            ["1990-11-23", "1990-11-24", "2010-02-28", "2012-02-29", "1950-01-01"]
                        )
                    )
                ),
                "email": draw(_maybe(st.sampled_from(["ana@x.com", "Bob@y.org"]))),
                "mobile": draw(_maybe(st.just("+15125550100"))),
                "communication_preference": draw(
                    st.sampled_from(["sms", "email", "phone", "none"])
                ),
                "sms_consent": draw(st.booleans()),
                "email_consent": draw(st.booleans()),
                "household_id": draw(_maybe(st.sampled_from(["H1", "H2"]))),
                "guarantor_external_id": draw(_maybe(st.sampled_from(names[: i + 1]))),
                "primary_provider_external_id": draw(_maybe(st.sampled_from(["P1", "P2"]))),
                "first_visit_date": draw(_maybe(_date())),
                "last_visit_date": draw(_maybe(_date())),
            }
        )
        for j in range(draw(st.integers(0, 2))):
            start = draw(_moment())
            rows["appointments"].append(
                {
                    "external_id": f"{name}-a{j}",
                    "patient_external_id": name,
                    "provider_external_id": draw(_maybe(st.sampled_from(["P1", "P2"]))),
                    "appointment_type_external_id": draw(_maybe(st.just("T1"))),
                    "start_at": start,
                    "end_at": start.replace(":30:00Z", ":59:00Z"),
                    "status": draw(
                        st.sampled_from(
                            ["scheduled", "confirmed", "completed", "cancelled", "broken"]
                        )
                    ),
                }
            )
        for j in range(draw(st.integers(0, 2))):
            rows["recalls"].append(
                {
                    "external_id": f"{name}-r{j}",
                    "patient_external_id": name,
                    "recall_type": draw(st.sampled_from(RECALL_TYPES)),
                    "due_date": draw(_maybe(_date())),
                    "disabled": draw(st.booleans()),
                }
            )
        plans = [f"{name}-t{j}" for j in range(draw(st.integers(0, 2)))]
        for plan in plans:
            rows["treatment-plans"].append(
                {
                    "external_id": plan,
                    "patient_external_id": name,
                    "name": "Plan",
                    "status": draw(
                        st.sampled_from(["proposed", "accepted", "rejected", "completed"])
                    ),
                }
            )
        for j in range(draw(st.integers(0, 3))):
            rows["procedures"].append(
                {
                    "external_id": f"{name}-x{j}",
                    "patient_external_id": name,
                    "treatment_plan_external_id": draw(_maybe(st.sampled_from(plans)))
                    if plans
                    else None,
                    "code": draw(st.sampled_from(CODES)),
                    "fee": draw(st.sampled_from(FEES)),
                    "status": draw(
                        st.sampled_from(["proposed", "accepted", "scheduled", "completed"])
                    ),
                    "completed_date": draw(_maybe(_date())),
                }
            )
        if draw(st.booleans()):
            rows["ledger"].append(
                {
                    "external_id": f"{name}-l",
                    "guarantor_external_id": name,
                    "balance": str(draw(st.sampled_from(MONEY))),
                    "in_collections": draw(st.booleans()),
                }
            )
        for j in range(draw(st.integers(0, 2))):
            rows["communications"].append(
                {
                    "external_id": f"{name}-c{j}",
                    "patient_external_id": name,
                    "channel": draw(st.sampled_from(["sms", "email", "phone", "letter"])),
                    "direction": draw(st.sampled_from(["outbound", "inbound"])),
                    "contacted_at": draw(_moment()),
                    "kind": draw(st.sampled_from(KINDS)),
                }
            )
    return rows


def _pair(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(strategy, strategy).map(lambda t: sorted(t, key=lambda v: Decimal(str(v))))


def _qualifier_value(q: Any, ids: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    pools: dict[str, list[Any]] = {
        "provider_ids": ids["providers"],
        "appointment_type_ids": ids["types"],
        "recall_types": ["prophy", "PERIO", "fluoride"],
        "kinds": ["statement", "recall", "marketing"],
    }
    if q.kind in ("strings", "choices"):
        pool = pools.get(q.name) or list(q.choices)
        return st.lists(st.sampled_from(pool), min_size=1, max_size=2)
    if q.kind == "codes":
        return st.lists(
            st.sampled_from(["D2740", "D2799", "d27", "D1", "D4341"]), min_size=1, max_size=2
        )
    if q.kind == "int":
        if q.name == "days":
            return DAY_COUNTS | DAY_COUNTS.map(lambda n: -n)
        return MONTH_COUNTS if "months" in q.name else DAY_COUNTS
    if q.kind == "money":
        return st.sampled_from(MONEY)
    if q.kind == "bool":
        return st.booleans()
    return st.sampled_from(list(q.choices))


@st.composite
def predicates(draw: st.DrawFn, ids: dict[str, list[str]]) -> dict[str, Any]:
    spec: FieldSpec = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(spec.operators))
    value: Any = None
    if spec.type in ("number", "money"):
        ages = st.sampled_from([14, 15, 16, 35, 36, 37, 76])
        pool = ages if spec.name == "age" else st.sampled_from(MONEY)
        value = draw(_pair(pool)) if op == "between" else draw(pool)
    elif spec.type == "date":
        if op in ("more_than_months_ago", "less_than_months_ago"):
            value = draw(MONTH_COUNTS)
        elif op in ("more_than_days_ago", "less_than_days_ago", "within_next_days"):
            value = draw(DAY_COUNTS)
        elif op == "between":
            value = sorted(draw(st.tuples(_date(), _date())))
        elif op not in ("is_empty", "has_value"):
            value = draw(_date())
    elif spec.type == "string":
        if op not in ("unknown", "has_value"):
            value = draw(st.sampled_from(STRINGS))
    elif spec.type == "enum":
        pool = list(spec.enum_values) or (
            ids["locations"] if spec.name == "location_id" else ids["providers"]
        )
        value = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2))
    elif spec.type == "boolean":
        value = draw(st.booleans())
    else:
        chosen = draw(st.lists(st.sampled_from(spec.qualifiers), unique=True, max_size=3))
        names = {q.name for q in chosen}
        if spec.requires_one_of and not names & set(spec.requires_one_of):
            chosen.append(spec.qualifier(spec.requires_one_of[0]))
        value = {q.name: draw(_qualifier_value(q, ids)) for q in chosen}
    return {"field": spec.name, "op": op, "value": value}


def rules(ids: dict[str, list[str]]) -> st.SearchStrategy[dict[str, Any]]:
    node = st.recursive(
        predicates(ids),
        lambda children: st.one_of(
            st.lists(children, max_size=3).map(lambda c: {"all": c}),
            st.lists(children, max_size=3).map(lambda c: {"any": c}),
            children.map(lambda c: {"not": c}),
        ),
        max_leaves=6,
    )
    return node.map(lambda n: {"version": 1, "rule": n})
