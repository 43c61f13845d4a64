"""The field catalog: every field a rule may name, its type, operators and options, and
(the one place they are written) the mirror's table and column names the compiler emits.

Field types and their operators:

* number, money: eq, ne, gt, gte, lt, lte, between ([low, high], inclusive)
* date: on, before, after, between ([first, last], inclusive), more_than_days_ago,
  less_than_days_ago, more_than_months_ago, less_than_months_ago, within_next_days,
  is_empty, has_value. "today" is the patient's location's local date.
* string: equals, starts_with, ends_with, contains, not_contains (case-insensitive),
  unknown (no value or blank), has_value
* enum: in, not_in (a list)
* boolean: is (true / false)
* existence (related records): exists, not_exists; the value is an object of the
  field's qualifiers (`{}` for none), each narrowing which records count.

A missing value (no last visit, no provider) satisfies no operator except is_empty /
unknown, and `not` of a predicate is its exact complement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["number", "money", "date", "string", "enum", "boolean", "existence"]
# strings: compared case-insensitively; choices: exact (from `choices` when listed, else
# ids); codes: procedure codes, upper-cased; choice: one of `choices`.
QualifierKind = Literal["strings", "codes", "choices", "int", "money", "bool", "choice"]

OPERATORS: dict[str, tuple[str, ...]] = {
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "between"),
    "money": ("eq", "ne", "gt", "gte", "lt", "lte", "between"),
    "date": (
        "on",
        "before",
        "after",
        "between",
        "more_than_days_ago",
        "less_than_days_ago",
        "more_than_months_ago",
        "less_than_months_ago",
        "within_next_days",
        "is_empty",
        "has_value",
    ),
    "string": (
        "equals",
        "starts_with",
        "ends_with",
        "contains",
        "not_contains",
        "unknown",
        "has_value",
    ),
    "enum": ("in", "not_in"),
    "boolean": ("is",),
    "existence": ("exists", "not_exists"),
}

PATIENT_STATUSES = ("active", "inactive", "archived", "deceased")
COMMUNICATION_PREFERENCES = ("sms", "email", "phone", "none")
CHANNELS = ("sms", "email", "phone", "letter")
DIRECTIONS = ("outbound", "inbound")
# Appointments that will happen (a tentative hold counts: the chair is taken).
BOOKED_APPOINTMENT_STATUSES = ("scheduled", "confirmed")
UNSCHEDULED_PROCEDURE_STATUSES = ("proposed", "accepted")
INCOMPLETE_PROCEDURE_STATUSES = ("accepted", "scheduled")
OPEN_PLAN_STATUSES = ("proposed", "accepted")
# A plan with any of these procedures has had something accepted.
ACCEPTED_PROCEDURE_STATUSES = ("accepted", "scheduled", "completed")
DUE_COMPARISONS = ("on", "before", "after")


@dataclass(frozen=True)
class Qualifier:
    name: str
    kind: QualifierKind
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    description: str
    enum_values: tuple[str, ...] = ()  # empty for an open enum (ids)
    qualifiers: tuple[Qualifier, ...] = ()
    # For existence fields: at least one of these qualifiers must be given.
    requires_one_of: tuple[str, ...] = ()

    @property
    def operators(self) -> tuple[str, ...]:
        return OPERATORS[self.type]

    def qualifier(self, name: str) -> Qualifier | None:
        return next((q for q in self.qualifiers if q.name == name), None)


_CODES = Qualifier("codes", "codes", "Only these CDT codes (e.g. D2740).")
_PREFIXES = Qualifier(
    "code_prefixes", "codes", "Only codes starting with one of these (a category, e.g. D27)."
)
_MIN_FEE = Qualifier(
    "min_total_fee", "money", "The matching procedures' fees must add up to at least this."
)


def _statuses(allowed: tuple[str, ...]) -> Qualifier:
    return Qualifier(
        "statuses", "choices", f"Only these statuses (default: {', '.join(allowed)}).", allowed
    )


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("status", "enum", "Patient status (Ascend: Patient Status).", PATIENT_STATUSES),
    FieldSpec("location_id", "enum", "The patient's location id."),
    FieldSpec("primary_provider_id", "enum", "The patient's primary provider id."),
    FieldSpec("primary_provider_name", "string", "The primary provider's name (Ascend: Provider)."),
    FieldSpec("first_name", "string", "First name."),
    FieldSpec("last_name", "string", "Last name."),
    FieldSpec("email", "string", "Email address."),
    FieldSpec("mobile", "string", "Mobile number (E.164)."),
    FieldSpec(
        "communication_preference",
        "enum",
        "How the patient prefers to be contacted.",
        COMMUNICATION_PREFERENCES,
    ),
    FieldSpec("sms_consent", "boolean", "The patient agreed to texts."),
    FieldSpec("email_consent", "boolean", "The patient agreed to emails."),
    FieldSpec("birthdate", "date", "Date of birth."),
    FieldSpec("age", "number", "Age in whole years on the location's today."),
    FieldSpec("first_visit_date", "date", "First visit (new patients)."),
    FieldSpec("last_visit_date", "date", "Last visit (Ascend: Last Visit)."),
    FieldSpec(
        "next_appointment_date",
        "date",
        "Local date of the next scheduled or confirmed appointment from today on "
        "(Ascend: Future Appointment); empty when none is booked.",
    ),
    FieldSpec(
        "next_recall_due_date", "date", "Earliest due date of the patient's enabled recalls."
    ),
    FieldSpec(
        "balance",
        "money",
        "The guarantor's ledger balance (the patient's own account when it has no "
        "guarantor); 0 without a ledger row.",
    ),
    FieldSpec("in_collections", "boolean", "The guarantor's account is in collections."),
    FieldSpec(
        "household_has_inactive_members",
        "boolean",
        "Another patient of the same household (PMS household id, same location) is inactive.",
    ),
    FieldSpec(
        "future_appointment",
        "existence",
        "A scheduled or confirmed appointment on or after today (Ascend: Scheduled Appointment).",
        qualifiers=(
            Qualifier("provider_ids", "choices", "With one of these providers."),
            Qualifier("appointment_type_ids", "choices", "Of one of these appointment types."),
            Qualifier("within_days", "int", "Starting no later than today + N days."),
        ),
    ),
    FieldSpec(
        "overdue_hygiene",
        "existence",
        "An enabled recall (recare) with a due date, compared with the date `days` days "
        "ago: `due` on, before (default) or after it; `days` defaults to 0 and may be "
        "negative (days from now). So `{}` means a recall due before today (Ascend: "
        "Overdue For Hygiene).",
        qualifiers=(
            Qualifier("recall_types", "strings", "Recare types, e.g. prophy, perio."),
            Qualifier("due", "choice", "on, before or after the reference date.", DUE_COMPARISONS),
            Qualifier("days", "int", "The reference date is today minus this many days."),
            Qualifier(
                "overdue_more_than_months", "int", "Due date earlier than today minus N months."
            ),
            Qualifier(
                "overdue_less_than_months", "int", "Due date later than today minus N months."
            ),
        ),
    ),
    FieldSpec(
        "unscheduled_treatment",
        "existence",
        "Planned procedures (proposed or accepted) without an appointment (Ascend: Has "
        "Unscheduled Treatment).",
        qualifiers=(_statuses(UNSCHEDULED_PROCEDURE_STATUSES), _CODES, _PREFIXES, _MIN_FEE),
    ),
    FieldSpec(
        "incomplete_treatment",
        "existence",
        "Accepted or scheduled procedures that are not completed yet.",
        qualifiers=(_statuses(INCOMPLETE_PROCEDURE_STATUSES), _CODES, _PREFIXES, _MIN_FEE),
    ),
    FieldSpec(
        "open_treatment_plan",
        "existence",
        "A proposed or accepted treatment plan; `min_total_fee` is one plan's fees of "
        "procedures not completed yet.",
        qualifiers=(
            _statuses(OPEN_PLAN_STATUSES),
            _MIN_FEE,
            Qualifier(
                "nothing_accepted",
                "bool",
                "true: none of the plan's procedures is accepted, scheduled or completed.",
            ),
        ),
    ),
    FieldSpec(
        "completed_without_followup",
        "existence",
        "A completed procedure (codes / code_prefixes) with no completed follow-up "
        "procedure (followup_codes / followup_code_prefixes) on or after its date, e.g. "
        "crown prep without seat.",
        qualifiers=(
            _CODES,
            _PREFIXES,
            Qualifier("followup_codes", "codes", "Codes of the follow-up procedure."),
            Qualifier("followup_code_prefixes", "codes", "Code prefixes of the follow-up."),
            Qualifier(
                "completed_more_than_days_ago", "int", "The first procedure is older than this."
            ),
        ),
        requires_one_of=("codes", "code_prefixes"),
    ),
    FieldSpec(
        "contacted",
        "existence",
        "A contact in the PMS communication log (local date of contact).",
        qualifiers=(
            Qualifier("channels", "choices", "On one of these channels.", CHANNELS),
            Qualifier("kinds", "strings", "Of one of these kinds (statement, recall, ...)."),
            Qualifier(
                "directions", "choices", "outbound and/or inbound (default both).", DIRECTIONS
            ),
            Qualifier("within_days", "int", "On or after today minus N days."),
        ),
    ),
)

FIELDS_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}

# --- the mirror as SQL: table names and the patient-level column expressions ------------
# `p` is the patient row, `t` the per-location (location_id, today, tz) row.

PATIENTS = "patients"
APPOINTMENTS = "appointments"
RECALLS = "recalls"
TREATMENT_PLANS = "treatment_plans"
PROCEDURES = "procedures"
LEDGER = "ledger_balances"
COMMUNICATIONS = "communication_log"
PROVIDERS = "providers"

_GUARANTOR_LEDGER = (
    f"FROM {LEDGER} l WHERE l.tenant_id = p.tenant_id "
    "AND l.guarantor_id = COALESCE(p.guarantor_id, p.id) AND l.deleted_at IS NULL"
)


def local_date(column: str) -> str:
    """A timestamptz column's date in the location's time zone."""
    return f"CAST({column} AT TIME ZONE t.tz AS date)"


SCALAR_SQL: dict[str, str] = {
    "status": "p.status",
    "location_id": "p.location_id",
    "primary_provider_id": "p.primary_provider_id",
    "primary_provider_name": (
        f"(SELECT pv.name FROM {PROVIDERS} pv WHERE pv.tenant_id = p.tenant_id "
        "AND pv.id = p.primary_provider_id AND pv.deleted_at IS NULL)"
    ),
    "first_name": "p.first_name",
    "last_name": "p.last_name",
    "email": "p.email",
    "mobile": "p.mobile",
    "communication_preference": "p.communication_preference",
    "sms_consent": "p.sms_consent",
    "email_consent": "p.email_consent",
    "birthdate": "p.birthdate",
    "age": (
        "(EXTRACT(YEAR FROM t.today) - EXTRACT(YEAR FROM p.birthdate) - CASE WHEN "
        "(EXTRACT(MONTH FROM t.today), EXTRACT(DAY FROM t.today)) < "
        "(EXTRACT(MONTH FROM p.birthdate), EXTRACT(DAY FROM p.birthdate)) THEN 1 ELSE 0 END)"
    ),
    "first_visit_date": "p.first_visit_date",
    "last_visit_date": "p.last_visit_date",
    "next_appointment_date": (
        f"(SELECT MIN({local_date('a.start_at')}) FROM {APPOINTMENTS} a "
        "WHERE a.tenant_id = p.tenant_id AND a.patient_id = p.id AND a.deleted_at IS NULL "
        "AND a.status IN ('scheduled', 'confirmed') "
        f"AND {local_date('a.start_at')} >= t.today)"
    ),
    "next_recall_due_date": (
        f"(SELECT MIN(r.due_date) FROM {RECALLS} r WHERE r.tenant_id = p.tenant_id "
        "AND r.patient_id = p.id AND r.deleted_at IS NULL AND NOT r.disabled)"
    ),
    "balance": f"(SELECT COALESCE(SUM(l.balance), 0) {_GUARANTOR_LEDGER})",
    # Uncorrelated (run once, hashed): a correlated `guarantor_id = COALESCE(...)` cannot
    # use the ledger's index under row-level security (COALESCE is not leak-proof).
    "in_collections": (
        "COALESCE(p.guarantor_id, p.id) IN (SELECT l.guarantor_id FROM "
        f"{LEDGER} l WHERE l.tenant_id = :tenant_id AND l.deleted_at IS NULL "
        "AND l.in_collections)"
    ),
    "household_has_inactive_members": (
        f"EXISTS (SELECT 1 FROM {PATIENTS} h WHERE h.tenant_id = p.tenant_id "
        "AND h.location_id = p.location_id AND h.household_id = p.household_id "
        "AND h.id <> p.id AND h.deleted_at IS NULL AND h.status = 'inactive')"
    ),
}
