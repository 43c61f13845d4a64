"""The explainer: the same rule evaluated in Python over one patient's snapshot.

    explanation = explain(rule, snapshot, today)   # today: the patient's location's date
    explanation.matched, explanation.root.as_dict()

Every node is evaluated (no short-circuit), so each predicate reports its verdict and
the value it observed. The semantics are the compiler's (compiler.py), written again over
plain data; property tests hold the two in agreement.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from api.engines.rules import catalog as c
from api.engines.rules.model import (
    Node,
    PatientSnapshot,
    Predicate,
    ProcedureRecord,
    Qualifiers,
    Rule,
)


@dataclass(frozen=True)
class ExplainedNode:
    pointer: str
    kind: str  # all, any, not, predicate
    result: bool
    field: str | None = None
    op: str | None = None
    value: Any = None
    observed: Any = None
    children: tuple[ExplainedNode, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pointer": self.pointer, "kind": self.kind, "result": self.result}
        if self.kind == "predicate":
            out.update(field=self.field, op=self.op, value=self.value, observed=self.observed)
        else:
            out["children"] = [child.as_dict() for child in self.children]
        return out


@dataclass(frozen=True)
class Explanation:
    matched: bool
    root: ExplainedNode


def months_before(day: dt.date, months: int) -> dt.date:
    """`day - N months` as PostgreSQL computes it (the day clamps to the month's end)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, Qualifiers):
        return {k: jsonable(v) for k, v in value.values}
    return value


def _age(birthdate: dt.date | None, today: dt.date) -> int | None:
    if birthdate is None:
        return None
    before_birthday = (today.month, today.day) < (birthdate.month, birthdate.day)
    return today.year - birthdate.year - (1 if before_birthday else 0)


def scalar_value(name: str, p: PatientSnapshot, today: dt.date) -> Any:
    """The patient-level value of a non-existence field (what SCALAR_SQL computes)."""
    if name == "age":
        return _age(p.birthdate, today)
    if name == "next_appointment_date":
        days = [
            a.local_date
            for a in p.appointments
            if a.status in c.BOOKED_APPOINTMENT_STATUSES and a.local_date >= today
        ]
        return min(days, default=None)
    if name == "next_recall_due_date":
        dues = [r.due_date for r in p.recalls if not r.disabled and r.due_date is not None]
        return min(dues, default=None)
    if name == "balance":
        return sum((entry.balance for entry in p.ledger), Decimal(0))
    if name == "in_collections":
        return any(entry.in_collections for entry in p.ledger)
    if name == "household_has_inactive_members":
        return p.household_id is not None and any(
            m.status == "inactive" for m in p.household if m.id != p.id
        )
    return getattr(p, name)


def _compare_scalar(spec: c.FieldSpec, op: str, v: Any, x: Any, today: dt.date) -> bool:
    if spec.type == "string":
        if op == "unknown":
            return v is None or v.strip(" ") == ""
        if v is None:
            return False
        if op == "has_value":
            return bool(v.strip(" "))
        text, needle = v.lower(), str(x).lower()
        checks: dict[str, Callable[[], bool]] = {
            "equals": lambda: text == needle,
            "starts_with": lambda: text.startswith(needle),
            "ends_with": lambda: text.endswith(needle),
            "contains": lambda: needle in text,
            "not_contains": lambda: needle not in text,
        }
        return checks[op]()
    if spec.type == "date" and op in ("is_empty", "has_value"):
        return (v is None) == (op == "is_empty")
    if v is None:
        return False
    if spec.type in ("number", "money"):
        number = Decimal(v)
        if op == "between":
            return bool(x[0] <= number <= x[1])
        outcomes: dict[str, bool] = {
            "eq": number == x,
            "ne": number != x,
            "gt": number > x,
            "gte": number >= x,
            "lt": number < x,
            "lte": number <= x,
        }
        return outcomes[op]
    if spec.type == "date":
        if op == "on":
            return bool(v == x)
        if op == "before":
            return bool(v < x)
        if op == "after":
            return bool(v > x)
        if op == "between":
            return bool(x[0] <= v <= x[1])
        if op == "more_than_days_ago":
            return bool(v < today - dt.timedelta(days=x))
        if op == "less_than_days_ago":
            return bool(today - dt.timedelta(days=x) < v <= today)
        if op == "within_next_days":
            return bool(today <= v <= today + dt.timedelta(days=x))
        if op == "more_than_months_ago":
            return bool(v < months_before(today, x))
        return bool(months_before(today, x) < v <= today)
    if spec.type == "enum":
        return (v in x) == (op == "in")
    return bool(v == x)


def _code_matches(code: str, q: Qualifiers, codes: str, prefixes: str) -> bool:
    if q.get(codes) is None and q.get(prefixes) is None:
        return True
    upper = code.upper()
    return upper in q.strings(codes) or any(upper.startswith(x) for x in q.strings(prefixes))


def _procedures(
    p: PatientSnapshot, q: Qualifiers, default: tuple[str, ...]
) -> list[ProcedureRecord]:
    statuses = q.strings("statuses") or default
    return [
        pr
        for pr in p.procedures
        if pr.status in statuses and _code_matches(pr.code, q, "codes", "code_prefixes")
    ]


def _ids(records: Iterable[Any]) -> list[str]:
    return sorted(str(r.id) for r in records)


def existence(name: str, q: Qualifiers, p: PatientSnapshot, today: dt.date) -> tuple[bool, Any]:
    """(any matching records?, what was observed) for an existence field."""
    if name == "future_appointment":
        within = q.get("within_days")
        found = [
            a
            for a in p.appointments
            if a.status in c.BOOKED_APPOINTMENT_STATUSES
            and a.local_date >= today
            and (q.get("provider_ids") is None or a.provider_id in q.strings("provider_ids"))
            and (
                q.get("appointment_type_ids") is None
                or a.appointment_type_id in q.strings("appointment_type_ids")
            )
            and (not isinstance(within, int) or a.local_date <= today + dt.timedelta(within))
        ]
        return bool(found), {"appointment_ids": _ids(found)}
    if name == "overdue_hygiene":
        days = q.get("days")
        reference = today - dt.timedelta(days=days if isinstance(days, int) else 0)
        due = str(q.get("due") or "before")
        more, less = q.get("overdue_more_than_months"), q.get("overdue_less_than_months")
        found_recalls = [
            r
            for r in p.recalls
            if not r.disabled
            and r.due_date is not None
            and (
                q.get("recall_types") is None or r.recall_type.lower() in q.strings("recall_types")
            )
            and {"on": r.due_date == reference, "before": r.due_date < reference}.get(
                due, r.due_date > reference
            )
            and (not isinstance(more, int) or r.due_date < months_before(today, more))
            and (not isinstance(less, int) or r.due_date > months_before(today, less))
        ]
        return bool(found_recalls), {"recall_ids": _ids(found_recalls)}
    if name in ("unscheduled_treatment", "incomplete_treatment"):
        default = (
            c.UNSCHEDULED_PROCEDURE_STATUSES
            if name == "unscheduled_treatment"
            else c.INCOMPLETE_PROCEDURE_STATUSES
        )
        procedures = _procedures(p, q, default)
        total = sum((pr.fee for pr in procedures), Decimal(0))
        minimum = q.get("min_total_fee")
        ok = bool(procedures) and (not isinstance(minimum, Decimal) or total >= minimum)
        return ok, {"procedure_ids": _ids(procedures), "total_fee": str(total)}
    if name == "open_treatment_plan":
        return _open_plans(q, p)
    if name == "completed_without_followup":
        age = q.get("completed_more_than_days_ago")
        done = [pr for pr in p.procedures if pr.status == "completed" and pr.completed_date]
        firsts = [
            a
            for a in done
            if _code_matches(a.code, q, "codes", "code_prefixes")
            and (not isinstance(age, int) or a.completed_date < today - dt.timedelta(days=age))  # type: ignore[operator]
            and not any(
                b.id != a.id
                and b.completed_date >= a.completed_date  # type: ignore[operator]
                and _code_matches(b.code, q, "followup_codes", "followup_code_prefixes")
                for b in done
            )
        ]
        return bool(firsts), {"procedure_ids": _ids(firsts)}
    within = q.get("within_days")
    kinds = q.strings("kinds")
    contacts = [
        cl
        for cl in p.communications
        if (q.get("channels") is None or cl.channel in q.strings("channels"))
        and (q.get("kinds") is None or (cl.kind is not None and cl.kind.lower() in kinds))
        and (q.get("directions") is None or cl.direction in q.strings("directions"))
        and (not isinstance(within, int) or cl.local_date >= today - dt.timedelta(days=within))
    ]
    return bool(contacts), {"communication_ids": _ids(contacts)}


def _open_plans(q: Qualifiers, p: PatientSnapshot) -> tuple[bool, Any]:
    statuses = q.strings("statuses") or c.OPEN_PLAN_STATUSES
    minimum = q.get("min_total_fee")
    found: list[str] = []
    fees: dict[str, str] = {}
    for plan in p.treatment_plans:
        if plan.status not in statuses:
            continue
        procedures = [pr for pr in p.procedures if pr.treatment_plan_id == plan.id]
        open_fee = sum((pr.fee for pr in procedures if pr.status != "completed"), Decimal(0))
        fees[plan.id] = str(open_fee)
        if isinstance(minimum, Decimal) and open_fee < minimum:
            continue
        accepted = any(pr.status in c.ACCEPTED_PROCEDURE_STATUSES for pr in procedures)
        if q.get("nothing_accepted") is True and accepted:
            continue
        found.append(plan.id)
    return bool(found), {"treatment_plan_ids": sorted(found), "open_fees": fees}


def _predicate(pred: Predicate, p: PatientSnapshot, today: dt.date) -> ExplainedNode:
    spec = c.FIELDS_BY_NAME[pred.field]
    if spec.type == "existence":
        assert isinstance(pred.value, Qualifiers)
        found, observed = existence(pred.field, pred.value, p, today)
        result = found if pred.op == "exists" else not found
    else:
        observed = scalar_value(pred.field, p, today)
        result = _compare_scalar(spec, pred.op, observed, pred.value, today)
    return ExplainedNode(
        pointer=pred.pointer,
        kind="predicate",
        result=result,
        field=pred.field,
        op=pred.op,
        value=jsonable(pred.value),
        observed=jsonable(observed),
    )


def _node(node: Node, p: PatientSnapshot, today: dt.date) -> ExplainedNode:
    if isinstance(node, Predicate):
        return _predicate(node, p, today)
    children = tuple(_node(child, p, today) for child in node.children)
    results = [child.result for child in children]
    if node.kind == "not":
        result = not results[0]
    else:
        result = all(results) if node.kind == "all" else any(results)
    return ExplainedNode(pointer=node.pointer, kind=node.kind, result=result, children=children)


def explain(rule: Rule, patient: PatientSnapshot, today: dt.date) -> Explanation:
    """Every node's verdict for one patient; `today` is the patient's location's date."""
    root = _node(rule.root, patient, today)
    return Explanation(matched=root.result, root=root)


def matches(rule: Rule, patient: PatientSnapshot, today: dt.date) -> bool:
    return explain(rule, patient, today).matched
