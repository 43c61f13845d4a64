"""GraphQL types and resolvers for the practice mirror: `patients`, `patient(id)` and
`appointments`. Thin: each resolver calls the same service function as its REST twin
(`GET /v1/patients`, `GET /v1/patients/{id}`, `GET /v1/appointments`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import strawberry

from api.core.errors import ValidationProblem
from api.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from api.graphql.context import Context
from api.graphql.permissions import requires_scopes
from api.practice import service
from api.practice.schemas import AppointmentOut, PatientDetailOut, PatientOut

Info = strawberry.Info[Context, None]
DATA_AS_OF = "The PMS time up to which this location's mirror is complete (sync watermark)."


@strawberry.type(description="A recare the patient is due for.")
class Recall:
    id: strawberry.ID
    external_id: str
    recall_type: str = strawberry.field(description="prophy, perio, fluoride, bitewings, ...")
    interval_months: int | None
    due_date: dt.date | None
    disabled: bool


@strawberry.type(description="A procedure proposed, accepted or scheduled, not yet completed.")
class OpenProcedure:
    id: strawberry.ID
    code: str = strawberry.field(description="CDT code, e.g. D0120.")
    description: str | None
    tooth: str | None
    surface: str | None
    fee: Decimal
    status: str
    planned_date: dt.date | None
    treatment_plan_id: strawberry.ID | None


@strawberry.type(description="A guarantor's account.")
class Balance:
    guarantor_id: strawberry.ID
    balance: Decimal
    in_collections: bool
    aging_0_30: Decimal
    aging_31_60: Decimal
    aging_61_90: Decimal
    aging_over_90: Decimal


@strawberry.type(description="A patient of the practice mirror.")
class Patient:
    id: strawberry.ID
    location_id: strawberry.ID
    external_id: str = strawberry.field(description="The PMS's id of the patient.")
    first_name: str
    last_name: str
    preferred_name: str | None
    birthdate: dt.date | None
    status: str = strawberry.field(description="active, inactive, archived or deceased.")
    email: str | None
    mobile: str | None = strawberry.field(description="E.164.")
    communication_preference: str
    sms_consent: bool
    email_consent: bool
    household_id: str | None
    guarantor_id: strawberry.ID | None
    primary_provider_id: strawberry.ID | None
    first_visit_date: dt.date | None
    last_visit_date: dt.date | None
    updated_at: dt.datetime
    data_as_of: dt.datetime | None = strawberry.field(description=DATA_AS_OF)

    @classmethod
    def from_out(cls, p: PatientOut) -> Patient:
        return cls(**{name: getattr(p, name) for name in PatientOut.model_fields})


@strawberry.type(description="A patient with recalls, open treatment and balance.")
class PatientDetail(Patient):
    recalls: list[Recall]
    open_procedures: list[OpenProcedure]
    open_treatment_total: Decimal
    balance: Balance | None

    @classmethod
    def from_detail(cls, p: PatientDetailOut) -> PatientDetail:
        base = {name: getattr(p, name) for name in PatientOut.model_fields}
        return cls(
            **base,
            recalls=[Recall(**r.model_dump()) for r in p.recalls],
            open_procedures=[
                OpenProcedure(**pr.model_dump(exclude={"external_id", "completed_date"}))
                for pr in p.open_treatment.procedures
            ],
            open_treatment_total=p.open_treatment.total_fee,
            balance=Balance(**p.balance.model_dump()) if p.balance else None,
        )


@strawberry.type(
    name="PmsAppointment",
    description="An appointment as mirrored from the PMS calendar (the booking domain's "
    "`Appointment` is an online booking).",
)
class Appointment:
    id: strawberry.ID
    location_id: strawberry.ID
    external_id: str
    patient_id: strawberry.ID
    provider_id: strawberry.ID | None
    operatory_id: strawberry.ID | None
    appointment_type_id: strawberry.ID | None
    start_at: dt.datetime
    end_at: dt.datetime
    status: str
    is_tentative: bool
    source: str
    updated_at: dt.datetime
    data_as_of: dt.datetime | None = strawberry.field(description=DATA_AS_OF)

    @classmethod
    def from_out(cls, a: AppointmentOut) -> Appointment:
        return cls(**{name: getattr(a, name) for name in AppointmentOut.model_fields})


@strawberry.type(description="One page of patients, ordered by id.")
class PatientConnection:
    nodes: list[Patient]
    next_cursor: str | None = strawberry.field(description="Pass as `after`; null at the end.")


@strawberry.type(name="PmsAppointmentConnection", description="One page of PMS appointments.")
class AppointmentConnection:
    nodes: list[Appointment]
    next_cursor: str | None = strawberry.field(description="Pass as `after`; null at the end.")


def _page(first: int, after: str | None) -> PageParams:
    if not 1 <= first <= MAX_LIMIT:
        raise ValidationProblem(
            f"`first` must be between 1 and {MAX_LIMIT}.",
            errors=[{"field": "first", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    return PageParams(limit=first, cursor=after)


def _rename_cursor(problem: ValidationProblem) -> None:
    for error in problem.errors:
        if error.field == "cursor":
            error.field = "after"


First = Annotated[int, strawberry.argument(description=f"Items per page (1 to {MAX_LIMIT}).")]
After = Annotated[str | None, strawberry.argument(description="`nextCursor` of the previous page.")]


@strawberry.type
class PracticeQuery:
    @strawberry.field(
        description="Patients of the practice mirror (as `GET /v1/patients`).",
        extensions=[requires_scopes("patients:read")],
    )
    async def patients(
        self,
        info: Info,
        first: First = DEFAULT_LIMIT,
        after: After = None,
        location_id: strawberry.ID | None = None,
        status: str | None = None,
        updated_since: dt.datetime | None = None,
    ) -> PatientConnection:
        page = _page(first, after)
        async with info.context.db() as session:
            try:
                items, cursor = await service.list_patients(
                    session,
                    info.context.principal,
                    page,
                    location_id=str(location_id) if location_id else None,
                    status=status,
                    updated_since=updated_since,
                )
            except ValidationProblem as problem:
                _rename_cursor(problem)
                raise
        return PatientConnection(nodes=[Patient.from_out(p) for p in items], next_cursor=cursor)

    @strawberry.field(
        description="One patient with recalls, open treatment and balance; another tenant's "
        "id answers null with NOT_FOUND.",
        extensions=[requires_scopes("patients:read")],
    )
    async def patient(self, info: Info, id: strawberry.ID) -> PatientDetail | None:
        async with info.context.db() as session:
            detail = await service.get_patient(session, info.context.principal, str(id))
        return PatientDetail.from_detail(detail)

    @strawberry.field(
        description="Appointments, ordered by start (as `GET /v1/appointments`).",
        extensions=[requires_scopes("schedule:read")],
    )
    async def appointments(
        self,
        info: Info,
        first: First = DEFAULT_LIMIT,
        after: After = None,
        location_id: strawberry.ID | None = None,
        start_from: dt.datetime | None = None,
        start_before: dt.datetime | None = None,
        provider_id: strawberry.ID | None = None,
        status: list[str] | None = None,
    ) -> AppointmentConnection:
        page = _page(first, after)
        async with info.context.db() as session:
            try:
                items, cursor = await service.list_appointments(
                    session,
                    info.context.principal,
                    page,
                    location_id=str(location_id) if location_id else None,
                    start_from=start_from,
                    start_before=start_before,
                    provider_id=str(provider_id) if provider_id else None,
                    statuses=status or (),
                )
            except ValidationProblem as problem:
                _rename_cursor(problem)
                raise
        return AppointmentConnection(
            nodes=[Appointment.from_out(a) for a in items], next_cursor=cursor
        )
