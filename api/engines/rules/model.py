"""The rule AST, the snapshot of one patient the explainer reads, and rule errors.

A rule document is versioned JSON: `{"version": 1, "rule": <node>}` where a node is a
group (`{"all": [...]}`, `{"any": [...]}`, `{"not": <node>}`) or a predicate
(`{"field": ..., "op": ..., "value": ...}`). Every parsed node keeps the JSON pointer
(RFC 6901) of where it sits in the document, so errors and explanations can point at it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

GroupKind = Literal["all", "any", "not"]

Scalar = str | int | bool | Decimal | dt.date


@dataclass(frozen=True)
class Qualifiers:
    """The options of an existence predicate (e.g. `{"codes": ["D2740"], "min_total_fee":
    1200}`), validated against the field's qualifier list; absent options are None."""

    values: tuple[tuple[str, Scalar | tuple[Scalar, ...]], ...] = ()

    def get(self, name: str) -> Scalar | tuple[Scalar, ...] | None:
        for key, value in self.values:
            if key == name:
                return value
        return None

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.get(name)
        return tuple(str(v) for v in value) if isinstance(value, tuple) else ()


# A predicate's value after validation: numbers become Decimal, dates `date`, relative
# amounts `int`, enum lists `tuple[str, ...]`, existence qualifiers a `Qualifiers`.
Value = Scalar | tuple[Scalar, ...] | Qualifiers | None


@dataclass(frozen=True)
class Predicate:
    field: str
    op: str
    value: Value
    pointer: str


@dataclass(frozen=True)
class Group:
    kind: GroupKind
    children: tuple[Node, ...]
    pointer: str


Node = Predicate | Group


@dataclass(frozen=True)
class Rule:
    version: int
    root: Node


@dataclass(frozen=True)
class RuleError:
    pointer: str
    message: str


class RuleInvalid(ValueError):
    """The document is not a valid rule; `errors` point into it."""

    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__("; ".join(f"{e.pointer or '/'}: {e.message}" for e in errors))
        self.errors = errors


# --- the snapshot of one patient (what the service loads for the explainer) --------------


@dataclass(frozen=True)
class AppointmentRecord:
    id: str
    status: str
    local_date: dt.date  # the start's date in the location's time zone
    provider_id: str | None = None
    appointment_type_id: str | None = None


@dataclass(frozen=True)
class RecallRecord:
    id: str
    recall_type: str
    due_date: dt.date | None
    disabled: bool = False


@dataclass(frozen=True)
class TreatmentPlanRecord:
    id: str
    status: str


@dataclass(frozen=True)
class ProcedureRecord:
    id: str
    code: str
    status: str
    fee: Decimal
    treatment_plan_id: str | None = None
    completed_date: dt.date | None = None


@dataclass(frozen=True)
class CommunicationRecord:
    id: str
    channel: str
    direction: str
    local_date: dt.date  # contacted_at's date in the location's time zone
    kind: str | None = None


@dataclass(frozen=True)
class LedgerRecord:
    balance: Decimal
    in_collections: bool = False


@dataclass(frozen=True)
class HouseholdMember:
    """Another live patient of the same location with the same `household_id`."""

    id: str
    status: str


@dataclass(frozen=True)
class PatientSnapshot:
    """One patient and the related live (not tombstoned) records the rules can reach.

    `ledger` holds the accounts of the patient's guarantor (the patient itself when it
    has none); `primary_provider_name` is null when the provider is unknown."""

    id: str
    location_id: str
    first_name: str
    last_name: str
    status: str
    communication_preference: str = "sms"
    sms_consent: bool = False
    email_consent: bool = False
    email: str | None = None
    mobile: str | None = None
    birthdate: dt.date | None = None
    first_visit_date: dt.date | None = None
    last_visit_date: dt.date | None = None
    primary_provider_id: str | None = None
    primary_provider_name: str | None = None
    household_id: str | None = None
    appointments: tuple[AppointmentRecord, ...] = ()
    recalls: tuple[RecallRecord, ...] = ()
    treatment_plans: tuple[TreatmentPlanRecord, ...] = ()
    procedures: tuple[ProcedureRecord, ...] = ()
    communications: tuple[CommunicationRecord, ...] = ()
    ledger: tuple[LedgerRecord, ...] = ()
    household: tuple[HouseholdMember, ...] = field(default=())
