"""Rule -> ONE SQL query (text and bound parameters) that PostgreSQL runs over the mirror.

    compiled = compile_rule(rule, tenant_id="ten_...", locations=[LocationDay(...), ...])
    rows = session.execute(text(compiled.sql), compiled.params)  # (patient_id, location_id)

The query reads `patients p` joined to the per-location list of "today"s
(`unnest(:location_ids, :location_todays, :location_zones) AS t(location_id, today, tz)`),
which is also the location filter: only patients of the listed locations can match.
Related records are `EXISTS` / aggregate subqueries correlated on
`(tenant_id, patient_id)`, the leading columns of the mirror's indexes. Tombstoned rows
(`deleted_at`) never count. Values are always bound parameters, never SQL text; every
predicate under a `not` is `COALESCE(..., FALSE)`, so `not` is an exact complement (no SQL
NULLs). Elsewhere a NULL already filters a row out exactly like FALSE, so predicates stay
bare there: a bare `EXISTS` / `NOT EXISTS` in the WHERE clause is what lets PostgreSQL
plan a hashed semi- or anti-join instead of one sub-query per patient (COALESCE hides
it), and a bare comparison can use an index.
The explainer (explain.py) implements the same semantics in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from api.engines.rules import catalog as c
from api.engines.rules.model import Group, Node, Predicate, Qualifiers, Rule


@dataclass(frozen=True)
class LocationDay:
    """A location the query covers, with its local date and IANA time zone."""

    location_id: str
    today: dt.date
    time_zone: str


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: dict[str, object]


class _Params:
    def __init__(self, prefix: str = "r") -> None:
        self.values: dict[str, object] = {}
        self.prefix = prefix

    def add(self, value: object, sql_type: str) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = list(value) if isinstance(value, tuple) else value
        return f"CAST(:{name} AS {sql_type})"


_COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_DATE_COMPARE = {"on": "=", "before": "<", "after": ">"}


def _day_start(local_date: str) -> str:
    """The instant the location's day `local_date` begins: `local date of x >= D` is
    `x >= _day_start(D)`, a range an index on x can serve (the date of x is not)."""
    return f"(CAST({local_date} AS timestamp) AT TIME ZONE t.tz)"


def _months_ago(params: _Params, months: int) -> str:
    return f"CAST(t.today - make_interval(months => {params.add(months, 'integer')}) AS date)"


def _scalar(
    pred: Predicate, spec: c.FieldSpec, params: _Params, expression: str | None = None
) -> str:
    e = expression or c.SCALAR_SQL[pred.field]
    op, v = pred.op, pred.value
    if spec.type in ("number", "money"):
        if op == "between":
            assert isinstance(v, tuple)
            return f"{e} BETWEEN {params.add(v[0], 'numeric')} AND {params.add(v[1], 'numeric')}"
        return f"{e} {_COMPARE[op]} {params.add(v, 'numeric')}"
    if spec.type == "date":
        if op in _DATE_COMPARE:
            return f"{e} {_DATE_COMPARE[op]} {params.add(v, 'date')}"
        if op == "between":
            assert isinstance(v, tuple)
            return f"{e} BETWEEN {params.add(v[0], 'date')} AND {params.add(v[1], 'date')}"
        if op == "is_empty":
            return f"{e} IS NULL"
        if op == "has_value":
            return f"{e} IS NOT NULL"
        if op == "more_than_days_ago":
            return f"{e} < t.today - {params.add(v, 'integer')}"
        if op == "less_than_days_ago":
            return f"({e} > t.today - {params.add(v, 'integer')} AND {e} <= t.today)"
        if op == "within_next_days":
            return f"({e} >= t.today AND {e} <= t.today + {params.add(v, 'integer')})"
        assert isinstance(v, int)
        if op == "more_than_months_ago":
            return f"{e} < {_months_ago(params, v)}"
        return f"({e} > {_months_ago(params, v)} AND {e} <= t.today)"
    if spec.type == "string":
        if op == "unknown":
            return f"({e} IS NULL OR btrim({e}) = '')"
        if op == "has_value":
            return f"btrim({e}) <> ''"
        assert isinstance(v, str)
        needle = params.add(v.lower(), "text")
        if op == "equals":
            return f"lower({e}) = {needle}"
        if op == "starts_with":
            return f"starts_with(lower({e}), {needle})"
        if op == "ends_with":
            return f"right(lower({e}), char_length({needle})) = {needle}"
        if op == "contains":
            return f"strpos(lower({e}), {needle}) > 0"
        return f"strpos(lower({e}), {needle}) = 0"
    if spec.type == "enum":
        listed = f"{e} = ANY({params.add(v, 'text[]')})"
        return listed if op == "in" else f"NOT ({listed})"
    return f"{e} = {params.add(v, 'boolean')}"


def _codes_sql(alias: str, q: Qualifiers, codes: str, prefixes: str, params: _Params) -> str:
    """`alias.code` is one of `codes` or starts with one of `prefixes` ('' when neither)."""
    parts = []
    if q.get(codes) is not None:
        parts.append(f"upper({alias}.code) = ANY({params.add(q.strings(codes), 'text[]')})")
    if q.get(prefixes) is not None:
        patterns = tuple(f"{p}%" for p in q.strings(prefixes))
        parts.append(f"upper({alias}.code) LIKE ANY({params.add(patterns, 'text[]')})")
    return f" AND ({' OR '.join(parts)})" if parts else ""


def _of_patient(table: str, alias: str) -> str:
    return (
        f"FROM {table} {alias} WHERE {alias}.tenant_id = p.tenant_id "
        f"AND {alias}.patient_id = p.id AND {alias}.deleted_at IS NULL"
    )


def _statuses(q: Qualifiers, default: tuple[str, ...], alias: str, params: _Params) -> str:
    statuses = q.strings("statuses") or default
    return f" AND {alias}.status = ANY({params.add(statuses, 'text[]')})"


def _exists(pred: Predicate, params: _Params) -> tuple[str, bool]:
    """The related-records test, and whether it can be NULL (a SUM over no rows)."""
    q = pred.value
    assert isinstance(q, Qualifiers)
    name = pred.field
    if name == "future_appointment":
        sql = _of_patient(c.APPOINTMENTS, "a")
        # "Its local date is today or later", as a range on start_at the index can use.
        sql += (
            f" AND a.status IN ('scheduled', 'confirmed') AND a.start_at >= {_day_start('t.today')}"
        )
        if q.get("provider_ids") is not None:
            sql += f" AND a.provider_id = ANY({params.add(q.strings('provider_ids'), 'text[]')})"
        if q.get("appointment_type_ids") is not None:
            types = params.add(q.strings("appointment_type_ids"), "text[]")
            sql += f" AND a.appointment_type_id = ANY({types})"
        if q.get("within_days") is not None:
            ahead = params.add(q.get("within_days"), "integer")
            sql += f" AND a.start_at < {_day_start(f't.today + {ahead} + 1')}"
        return f"EXISTS (SELECT 1 {sql})", False
    if name == "overdue_hygiene":
        sql = _of_patient(c.RECALLS, "r") + " AND NOT r.disabled AND r.due_date IS NOT NULL"
        if q.get("recall_types") is not None:
            types = params.add(q.strings("recall_types"), "text[]")
            sql += f" AND lower(r.recall_type) = ANY({types})"
        due = str(q.get("due") or "before")
        days = q.get("days")
        sql += f" AND r.due_date {_DATE_COMPARE[due]} t.today - {params.add(days or 0, 'integer')}"
        more, less = q.get("overdue_more_than_months"), q.get("overdue_less_than_months")
        if isinstance(more, int):
            sql += f" AND r.due_date < {_months_ago(params, more)}"
        if isinstance(less, int):
            sql += f" AND r.due_date > {_months_ago(params, less)}"
        return f"EXISTS (SELECT 1 {sql})", False
    if name in ("unscheduled_treatment", "incomplete_treatment"):
        default = (
            c.UNSCHEDULED_PROCEDURE_STATUSES
            if name == "unscheduled_treatment"
            else c.INCOMPLETE_PROCEDURE_STATUSES
        )
        sql = _of_patient(c.PROCEDURES, "pr") + _statuses(q, default, "pr", params)
        sql += _codes_sql("pr", q, "codes", "code_prefixes", params)
        if q.get("min_total_fee") is not None:
            return (
                f"(SELECT SUM(pr.fee) {sql}) >= {params.add(q.get('min_total_fee'), 'numeric')}",
                True,
            )
        return f"EXISTS (SELECT 1 {sql})", False
    if name == "open_treatment_plan":
        sql = _of_patient(c.TREATMENT_PLANS, "tp") + _statuses(
            q, c.OPEN_PLAN_STATUSES, "tp", params
        )
        plan_procedures = (
            f"FROM {c.PROCEDURES} pp WHERE pp.tenant_id = tp.tenant_id "
            "AND pp.patient_id = tp.patient_id AND pp.treatment_plan_id = tp.id "
            "AND pp.deleted_at IS NULL"
        )
        if q.get("min_total_fee") is not None:
            fee = params.add(q.get("min_total_fee"), "numeric")
            sql += (
                f" AND (SELECT COALESCE(SUM(pp.fee), 0) {plan_procedures} "
                f"AND pp.status <> 'completed') >= {fee}"
            )
        if q.get("nothing_accepted") is True:
            accepted = params.add(c.ACCEPTED_PROCEDURE_STATUSES, "text[]")
            sql += f" AND NOT EXISTS (SELECT 1 {plan_procedures} AND pp.status = ANY({accepted}))"
        return f"EXISTS (SELECT 1 {sql})", False
    if name == "completed_without_followup":
        sql = _of_patient(c.PROCEDURES, "pa")
        sql += " AND pa.status = 'completed' AND pa.completed_date IS NOT NULL"
        sql += _codes_sql("pa", q, "codes", "code_prefixes", params)
        age = q.get("completed_more_than_days_ago")
        if isinstance(age, int):
            sql += f" AND pa.completed_date < t.today - {params.add(age, 'integer')}"
        followup = (
            f"FROM {c.PROCEDURES} pb WHERE pb.tenant_id = pa.tenant_id "
            "AND pb.patient_id = pa.patient_id AND pb.deleted_at IS NULL "
            "AND pb.status = 'completed' AND pb.completed_date IS NOT NULL "
            "AND pb.id <> pa.id AND pb.completed_date >= pa.completed_date"
        )
        followup += _codes_sql("pb", q, "followup_codes", "followup_code_prefixes", params)
        return f"EXISTS (SELECT 1 {sql} AND NOT EXISTS (SELECT 1 {followup}))", False
    # contacted
    sql = _of_patient(c.COMMUNICATIONS, "cl")
    if q.get("channels") is not None:
        sql += f" AND cl.channel = ANY({params.add(q.strings('channels'), 'text[]')})"
    if q.get("kinds") is not None:
        sql += f" AND lower(cl.kind) = ANY({params.add(q.strings('kinds'), 'text[]')})"
    if q.get("directions") is not None:
        sql += f" AND cl.direction = ANY({params.add(q.strings('directions'), 'text[]')})"
    if q.get("within_days") is not None:
        back = params.add(q.get("within_days"), "integer")
        sql += f" AND cl.contacted_at >= {_day_start(f't.today - {back}')}"
    return f"EXISTS (SELECT 1 {sql})", False


_ZERO_HOLDS = {
    "eq": lambda x: x == 0,
    "ne": lambda x: x != 0,
    "gt": lambda x: x < 0,
    "gte": lambda x: x <= 0,
    "lt": lambda x: x > 0,
    "lte": lambda x: x >= 0,
}


def _balance(pred: Predicate, spec: c.FieldSpec, params: _Params) -> str:
    """The guarantor's balance compared, as uncorrelated sub-queries PostgreSQL runs once
    (hashed): the guarantors whose live ledger rows sum to a matching balance, or, when a
    balance of 0 matches too, also the patients with no ledger row at all. A sub-query per
    patient (and under row-level security, a sequential scan of the ledger per patient,
    since COALESCE cannot drive its index) is what this avoids."""
    guarantor = "COALESCE(p.guarantor_id, p.id)"
    live = f"FROM {c.LEDGER} l WHERE l.tenant_id = :tenant_id AND l.deleted_at IS NULL"
    summed = _scalar(pred, spec, params, "SUM(l.balance)")
    matching = (
        f"{guarantor} IN (SELECT l.guarantor_id {live} GROUP BY l.guarantor_id HAVING {summed})"
    )
    v = pred.value
    if pred.op == "between":
        assert isinstance(v, tuple)
        zero_matches = v[0] <= 0 <= v[1]  # type: ignore[operator]
    else:
        zero_matches = bool(_ZERO_HOLDS[pred.op](v))
    if not zero_matches:
        return f"({matching})"
    return f"({matching} OR {guarantor} NOT IN (SELECT l.guarantor_id {live}))"


def _node(node: Node, params: _Params, exact: bool = False) -> str:
    """`exact`: under a `not`, where a NULL must read as FALSE before it is negated."""
    if isinstance(node, Group):
        if node.kind == "not":
            return f"(NOT {_node(node.children[0], params, exact=True)})"
        parts = [_node(child, params, exact) for child in node.children]
        if not parts:
            return "TRUE" if node.kind == "all" else "FALSE"
        return "(" + (" AND " if node.kind == "all" else " OR ").join(parts) + ")"
    spec = c.FIELDS_BY_NAME[node.field]
    if spec.type == "existence":
        found, nullable = _exists(node, params)
        if nullable:
            found = f"COALESCE({found}, FALSE)"
        return found if node.op == "exists" else f"(NOT {found})"
    if node.field == "balance":
        return _balance(node, spec, params)
    condition = _scalar(node, spec, params)
    return f"COALESCE({condition}, FALSE)" if exact else f"({condition})"


def patient_condition(
    rule: Rule, param_prefix: str = "r", *, exact: bool = False
) -> tuple[str, dict[str, object]]:
    """The rule as a boolean SQL expression over `p` (patients) and `t` (location_id,
    today, tz), with its parameters named `{param_prefix}0`, `{param_prefix}1`, ...

    For a WHERE clause (NULL filters like FALSE); `exact=True` for a value that must be
    TRUE or FALSE, never NULL (a selected column)."""
    params = _Params(param_prefix)
    return _node(rule.root, params, exact), params.values


_FROM = (
    f"FROM {c.PATIENTS} p "
    "JOIN unnest(CAST(:location_ids AS text[]), CAST(:location_todays AS date[]), "
    "CAST(:location_zones AS text[])) AS t(location_id, today, tz) "
    "ON t.location_id = p.location_id "
    "WHERE p.tenant_id = :tenant_id AND p.deleted_at IS NULL"
)
# One location (the usual case): `t` is a row of plain values, which PostgreSQL pulls up
# into the query, so `t.today` and `t.tz` plan as constants (index ranges, estimates)
# instead of columns of a joined function.
_FROM_ONE = (
    f"FROM {c.PATIENTS} p, (SELECT (CAST(:location_ids AS text[]))[1] AS location_id, "
    "(CAST(:location_todays AS date[]))[1] AS today, "
    "(CAST(:location_zones AS text[]))[1] AS tz) AS t "
    "WHERE p.location_id = t.location_id "
    "AND p.tenant_id = :tenant_id AND p.deleted_at IS NULL"
)


def _from(locations: Sequence[LocationDay]) -> str:
    return _FROM_ONE if len(locations) == 1 else _FROM


def _with_locations(
    sql: str, params: dict[str, object], tenant_id: str, locations: Sequence[LocationDay]
) -> CompiledQuery:
    params.update(
        tenant_id=tenant_id,
        location_ids=[loc.location_id for loc in locations],
        location_todays=[loc.today for loc in locations],
        location_zones=[loc.time_zone for loc in locations],
    )
    return CompiledQuery(sql, params)


def compile_rule(
    rule: Rule,
    *,
    tenant_id: str,
    locations: Sequence[LocationDay],
    extra_columns: Sequence[str] = (),
    extra_params: dict[str, object] | None = None,
) -> CompiledQuery:
    """One query returning `(patient_id, location_id)` of every live patient of the
    tenant, at one of `locations`, that matches the rule.

    `extra_columns` are further `expression AS name` items over `p` and `t` (with their
    own `extra_params`), computed in the same scan: audiences add their suppression
    flags this way instead of joining the matches back to `patients`."""
    condition, params = patient_condition(rule)
    columns = ", ".join(["p.id AS patient_id", "p.location_id AS location_id", *extra_columns])
    sql = f"SELECT {columns} {_from(locations)} AND {condition}"
    params.update(extra_params or {})
    return _with_locations(sql, params, tenant_id, locations)


def compile_flags(
    rules: Sequence[Rule], *, tenant_id: str, locations: Sequence[LocationDay]
) -> CompiledQuery:
    """One scan evaluating several rules: a row per live patient of `locations` with
    `patient_id`, `location_id` and a boolean `rule_<i>` per rule (in order)."""
    params: dict[str, object] = {}
    flags = []
    for i, rule in enumerate(rules):
        condition, values = patient_condition(rule, f"r{i}_", exact=True)
        params.update(values)
        flags.append(f"{condition} AS rule_{i}")
    columns = ", ".join(["p.id AS patient_id", "p.location_id AS location_id", *flags])
    return _with_locations(f"SELECT {columns} {_from(locations)}", params, tenant_id, locations)
