"""The entities a bridge (or a connector, a CSV import, the demo generator) can push, and
how each row maps onto its table: plain columns by name, references by external id."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pydantic import BaseModel
from sqlalchemy import Table, UniqueConstraint
from sqlalchemy.dialects import postgresql

from api.core.db import Base
from api.practice import ingest_rows as rows
from api.practice import models


@dataclass(frozen=True)
class Reference:
    field: str  # the row field holding the external id(s)
    column: str  # our column holding the resolved id(s)
    table: str  # the referenced mirror table (same tenant and location)
    many: bool = False  # a list of external ids -> an array of our ids

    def is_self(self, table: str) -> bool:
        return self.table == table


@dataclass(frozen=True)
class EntitySpec:
    name: str  # as in the URL: /v1/sync/locations/{id}/{name}
    model: type[Base]
    id_kind: str  # api.core.ids.PREFIXES key
    row_model: type[rows.Row]
    references: tuple[Reference, ...] = ()

    @property
    def table(self) -> Table:
        return self.model.__table__  # type: ignore[return-value]

    @property
    def table_name(self) -> str:
        return self.table.name

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Row fields stored as they are (everything but the external ids)."""
        refs = {r.field for r in self.references}
        return tuple(f for f in self.row_model.model_fields if f != "external_id" and f not in refs)

    @cached_property
    def external_key(self) -> str:
        """The name of the table's (tenant_id, location_id, external_id) unique key."""
        (name,) = (
            str(c.name)
            for c in self.table.constraints
            if isinstance(c, UniqueConstraint)
            and [column.name for column in c.columns] == ["tenant_id", "location_id", "external_id"]
        )
        return name

    def pg_type(self, column: str) -> str:
        return str(self.table.c[column].type.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]


def _ref(field: str, table: str, *, many: bool = False) -> Reference:
    column = field.removesuffix("_external_ids").removesuffix("_external_id")
    return Reference(field, f"{column}_ids" if many else f"{column}_id", table, many)


PATIENT = _ref("patient_external_id", "patients")
PROVIDER = _ref("provider_external_id", "providers")
OPERATORY = _ref("operatory_external_id", "operatories")

ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        EntitySpec("providers", models.Provider, "provider", rows.ProviderRow),
        EntitySpec("operatories", models.Operatory, "operatory", rows.OperatoryRow),
        EntitySpec(
            "appointment-types",
            models.AppointmentType,
            "appointment_type",
            rows.AppointmentTypeRow,
            (
                _ref("provider_external_ids", "providers", many=True),
                _ref("operatory_external_ids", "operatories", many=True),
            ),
        ),
        EntitySpec(
            "patients",
            models.Patient,
            "patient",
            rows.PatientRow,
            (
                _ref("guarantor_external_id", "patients"),
                _ref("primary_provider_external_id", "providers"),
            ),
        ),
        EntitySpec(
            "schedules",
            models.ScheduleEntry,
            "schedule_entry",
            rows.ScheduleRow,
            (PROVIDER, OPERATORY),
        ),
        EntitySpec(
            "appointments",
            models.Appointment,
            "appointment",
            rows.AppointmentRow,
            (
                PATIENT,
                PROVIDER,
                OPERATORY,
                _ref("appointment_type_external_id", "appointment_types"),
            ),
        ),
        EntitySpec("recalls", models.Recall, "recall", rows.RecallRow, (PATIENT,)),
        EntitySpec(
            "treatment-plans",
            models.TreatmentPlan,
            "treatment_plan",
            rows.TreatmentPlanRow,
            (PATIENT,),
        ),
        EntitySpec(
            "procedures",
            models.Procedure,
            "procedure",
            rows.ProcedureRow,
            (PATIENT, PROVIDER, _ref("treatment_plan_external_id", "treatment_plans")),
        ),
        EntitySpec(
            "ledger",
            models.LedgerBalance,
            "ledger_balance",
            rows.LedgerRow,
            (_ref("guarantor_external_id", "patients"),),
        ),
        EntitySpec(
            "communications",
            models.CommunicationLog,
            "communication",
            rows.CommunicationRow,
            (PATIENT,),
        ),
        EntitySpec("opt-outs", models.OptOut, "opt_out", rows.OptOutRow, (PATIENT,)),
    )
}

# Push order that satisfies every reference (a full sync sends entities in this order).
ENTITY_ORDER: tuple[str, ...] = tuple(ENTITIES)


def row_model_of(entity: str) -> type[BaseModel]:
    return ENTITIES[entity].row_model
