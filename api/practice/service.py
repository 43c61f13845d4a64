"""Reading the practice mirror (REST and GraphQL call these). Every answer carries the
`data_as_of` of its location, and tombstoned rows never appear."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.core.errors import NotFound
from api.core.pagination import PageParams, page_of
from api.practice import freshness, repository
from api.practice.models import AppointmentType, Operatory, Provider
from api.practice.schemas import (
    AppointmentOut,
    AppointmentTypeOut,
    BalanceOut,
    OpenTreatmentOut,
    OperatoryOut,
    PatientDetailOut,
    PatientOut,
    ProcedureOut,
    ProviderOut,
    RecallOut,
    TreatmentPlanOut,
)

Out = TypeVar("Out", bound=BaseModel)

RESOURCES: dict[str, tuple[Any, type[BaseModel]]] = {
    "providers": (Provider, ProviderOut),
    "operatories": (Operatory, OperatoryOut),
    "appointment-types": (AppointmentType, AppointmentTypeOut),
}


async def _with_data_as_of(
    session: AsyncSession, tenant_id: str, rows: Iterable[Any], out: type[Out]
) -> list[Out]:
    rows = list(rows)
    as_of = await repository.sync_states(session, tenant_id, (r.location_id for r in rows))
    return [
        out.model_validate(r).model_copy(update={"data_as_of": as_of.get(r.location_id)})
        for r in rows
    ]


async def _visible_location(
    session: AsyncSession, principal: Principal, location_id: str | None
) -> None:
    if location_id is not None:
        await freshness.require_location(
            session, principal.tenant_id, location_id, principal.location_ids
        )


async def list_patients(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    location_id: str | None = None,
    status: str | None = None,
    updated_since: datetime | None = None,
) -> tuple[list[PatientOut], str | None]:
    await _visible_location(session, principal, location_id)
    rows = await repository.list_patients(
        session,
        principal.tenant_id,
        principal.location_ids,
        page,
        location_id=location_id,
        status=status,
        updated_since=updated_since,
    )
    items, cursor = page_of(rows, ["id"], page)
    return await _with_data_as_of(session, principal.tenant_id, items, PatientOut), cursor


async def get_patient(
    session: AsyncSession, principal: Principal, patient_id: str
) -> PatientDetailOut:
    tenant_id = principal.tenant_id
    patient = await repository.get_patient(session, tenant_id, principal.location_ids, patient_id)
    if patient is None:
        raise NotFound(f"There is no patient {patient_id}.")
    recalls = await repository.recalls_of(session, tenant_id, patient.id)
    procedures = await repository.open_procedures_of(session, tenant_id, patient.id)
    plans = await repository.open_plans_of(session, tenant_id, patient.id)
    ledger = await repository.ledger_of(session, tenant_id, patient.guarantor_id or patient.id)
    as_of = await freshness.data_as_of(session, tenant_id, patient.location_id)
    base = PatientOut.model_validate(patient).model_dump()
    return PatientDetailOut(
        **base | {"data_as_of": as_of},
        recalls=[RecallOut.model_validate(r) for r in recalls],
        open_treatment=OpenTreatmentOut(
            plans=[TreatmentPlanOut.model_validate(p) for p in plans],
            procedures=[ProcedureOut.model_validate(p) for p in procedures],
            total_fee=sum((p.fee for p in procedures), Decimal("0.00")),
        ),
        balance=BalanceOut.model_validate(ledger) if ledger else None,
    )


async def list_appointments(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    location_id: str | None = None,
    start_from: datetime | None = None,
    start_before: datetime | None = None,
    provider_id: str | None = None,
    patient_id: str | None = None,
    statuses: Iterable[str] = (),
) -> tuple[list[AppointmentOut], str | None]:
    await _visible_location(session, principal, location_id)
    rows = await repository.list_appointments(
        session,
        principal.tenant_id,
        principal.location_ids,
        page,
        location_id=location_id,
        start_from=start_from,
        start_before=start_before,
        provider_id=provider_id,
        patient_id=patient_id,
        statuses=statuses,
    )
    items, cursor = page_of(rows, ["start_at", "id"], page)
    return await _with_data_as_of(session, principal.tenant_id, items, AppointmentOut), cursor


async def list_resources(
    session: AsyncSession,
    principal: Principal,
    resource: str,
    page: PageParams,
    location_id: str | None = None,
) -> tuple[list[Any], str | None]:
    """Providers, operatories or appointment types."""
    model, out = RESOURCES[resource]
    await _visible_location(session, principal, location_id)
    rows = await repository.list_resources(
        session, model, principal.tenant_id, principal.location_ids, page, location_id
    )
    items, cursor = page_of(rows, ["id"], page)
    return await _with_data_as_of(session, principal.tenant_id, items, out), cursor
