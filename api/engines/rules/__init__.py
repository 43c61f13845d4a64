"""Segment rules: a versioned JSON language, its SQL compiler and its explainer.

    rule = parse_rule({"version": 1, "rule": {"all": [...]}})      # or RuleInvalid(errors)
    query = compile_rule(rule, tenant_id=..., locations=[LocationDay(id, today, tz), ...])
        # query.sql / query.params: ONE statement returning (patient_id, location_id)
    flags = compile_flags([rule_a, rule_b], tenant_id=..., locations=[...])
        # one scan: (patient_id, location_id, rule_0, rule_1) for every patient
    sql, params = patient_condition(rule, "r")   # the bare condition over `p` and `t`
    explanation = explain(rule, PatientSnapshot(...), today)   # .matched, .root.as_dict()

The language (fields, types, operators, qualifiers) is documented in catalog.py; pure
code, no I/O: the segments service loads data and runs the SQL.
"""

from api.engines.rules.catalog import FIELDS, FIELDS_BY_NAME, OPERATORS, FieldSpec, Qualifier
from api.engines.rules.compiler import (
    CompiledQuery,
    LocationDay,
    compile_flags,
    compile_rule,
    patient_condition,
)
from api.engines.rules.explain import (
    ExplainedNode,
    Explanation,
    explain,
    jsonable,
    matches,
    months_before,
)
from api.engines.rules.model import (
    AppointmentRecord,
    CommunicationRecord,
    Group,
    HouseholdMember,
    LedgerRecord,
    Node,
    PatientSnapshot,
    Predicate,
    ProcedureRecord,
    Qualifiers,
    RecallRecord,
    Rule,
    RuleError,
    RuleInvalid,
    TreatmentPlanRecord,
)
from api.engines.rules.parse import parse_rule

__all__ = [
    "FIELDS",
    "FIELDS_BY_NAME",
    "OPERATORS",
    "AppointmentRecord",
    "CommunicationRecord",
    "CompiledQuery",
    "ExplainedNode",
    "Explanation",
    "FieldSpec",
    "Group",
    "HouseholdMember",
    "LedgerRecord",
    "LocationDay",
    "Node",
    "PatientSnapshot",
    "Predicate",
    "ProcedureRecord",
    "Qualifier",
    "Qualifiers",
    "RecallRecord",
    "Rule",
    "RuleError",
    "RuleInvalid",
    "TreatmentPlanRecord",
    "compile_flags",
    "compile_rule",
    "explain",
    "jsonable",
    "matches",
    "months_before",
    "parse_rule",
    "patient_condition",
]
