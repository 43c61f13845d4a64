"""Built-in segment templates: the five segments most practices automate first, and the
win-back segments (see the domain notes). Each is an ordinary rule document; creating a
segment from a template copies it, so later edits never change the template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Crown seated: the crown codes a completed prep (provisional crown, D2799) waits for.
CROWN_CODES = ["D2740", "D2750", "D2751", "D2752", "D2790", "D2791", "D2792", "D2794"]


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    description: str
    category: str
    refresh_cadence: str
    rule: dict[str, Any]


def _doc(*predicates: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "rule": {"all": list(predicates)}}


def _p(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


ACTIVE = _p("status", "in", ["active"])
NO_FUTURE_APPOINTMENT = _p("future_appointment", "not_exists", {})


def _winback(recall_type: str, low: int, high: int | None) -> Template:
    window = f"{low}-{high}" if high else f"{low}+"
    overdue: dict[str, Any] = {"recall_types": [recall_type], "overdue_more_than_months": low}
    if high:
        overdue["overdue_less_than_months"] = high
    label = "prophy" if recall_type == "prophy" else "perio maintenance"
    return Template(
        key=f"winback_{recall_type}_{low}_{high or 'plus'}",
        name=f"Win-back: {label} overdue {window} months",
        description=f"Active patients whose {label} recall is {window} months overdue and "
        "who have no future appointment.",
        category="win-back",
        refresh_cadence="daily",
        rule=_doc(ACTIVE, _p("overdue_hygiene", "exists", overdue), NO_FUTURE_APPOINTMENT),
    )


TEMPLATES: tuple[Template, ...] = (
    Template(
        key="due_for_recall",
        name="Due for recall",
        description="Active patients whose recall date has passed, with no future appointment.",
        category="recall",
        refresh_cadence="daily",
        rule=_doc(ACTIVE, _p("overdue_hygiene", "exists", {}), NO_FUTURE_APPOINTMENT),
    ),
    Template(
        key="lapsed",
        name="Lapsed / reactivation",
        description="Last visit 13 to 24 months ago, no future appointment.",
        category="reactivation",
        refresh_cadence="weekly",
        rule=_doc(
            _p("last_visit_date", "more_than_months_ago", 13),
            _p("last_visit_date", "less_than_months_ago", 24),
            NO_FUTURE_APPOINTMENT,
        ),
    ),
    Template(
        key="open_treatment_plan",
        name="Open treatment plan",
        description="A proposed treatment plan of which nothing is accepted yet ($0 accepted).",
        category="treatment",
        refresh_cadence="weekly",
        rule=_doc(
            _p(
                "open_treatment_plan",
                "exists",
                {"statuses": ["proposed"], "nothing_accepted": True},
            )
        ),
    ),
    Template(
        key="new_patient",
        name="New patient (0-90 days)",
        description="First visit within the last 90 days.",
        category="onboarding",
        refresh_cadence="daily",
        rule=_doc(_p("first_visit_date", "less_than_days_ago", 90)),
    ),
    Template(
        key="balance_and_due",
        name="Balance + due",
        description="Ledger balance over $0 and a recall due.",
        category="recall",
        refresh_cadence="weekly",
        rule=_doc(_p("balance", "gt", 0), _p("overdue_hygiene", "exists", {})),
    ),
    _winback("prophy", 6, 9),
    _winback("prophy", 9, 12),
    _winback("prophy", 12, None),
    _winback("perio", 6, 9),
    _winback("perio", 9, 12),
    _winback("perio", 12, None),
    Template(
        key="accepted_unscheduled_treatment",
        name="Accepted but unscheduled treatment",
        description="Treatment the patient accepted that has no appointment yet.",
        category="win-back",
        refresh_cadence="daily",
        rule=_doc(_p("unscheduled_treatment", "exists", {"statuses": ["accepted"]})),
    ),
    Template(
        key="incomplete_crown",
        name="Incomplete treatment: crown prep without seat",
        description="A completed crown prep (provisional crown, D2799) with no crown "
        f"({', '.join(CROWN_CODES)}) completed on or after it.",
        category="win-back",
        refresh_cadence="daily",
        rule=_doc(
            _p(
                "completed_without_followup",
                "exists",
                {"codes": ["D2799"], "followup_codes": CROWN_CODES},
            )
        ),
    ),
    Template(
        key="dormant_18_months",
        name="Dormant 18+ months",
        description="Last visit more than 18 months ago, no future appointment.",
        category="win-back",
        refresh_cadence="weekly",
        rule=_doc(_p("last_visit_date", "more_than_months_ago", 18), NO_FUTURE_APPOINTMENT),
    ),
    Template(
        key="household_inactive_members",
        name="Households with inactive members",
        description="Active patients with an inactive member in their household, to reach "
        "the family through someone who still comes in.",
        category="win-back",
        refresh_cadence="weekly",
        rule=_doc(ACTIVE, _p("household_has_inactive_members", "is", True)),
    ),
)

TEMPLATES_BY_KEY: dict[str, Template] = {t.key: t for t in TEMPLATES}
