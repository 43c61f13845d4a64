"""REST: reading the practice mirror, and each location's sync status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Query

from api.core.clock import utcnow
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import SessionDep, api_router
from api.practice import freshness, service
from api.practice.dependencies import PatientsRead, ScheduleRead, SyncStatusReader
from api.practice.schemas import (
    AppointmentOut,
    AppointmentTypeOut,
    OperatoryOut,
    PatientDetailOut,
    PatientOut,
    ProviderOut,
    SyncStatusOut,
)

router = api_router("practice")

PageDep = Annotated[PageParams, Depends(page_params)]
LocationFilter = Annotated[str | None, Query(description="Only this location")]
AppointmentStatus = Literal["scheduled", "confirmed", "completed", "cancelled", "broken", "no_show"]


@router.get("/v1/patients", summary="List patients of the practice mirror")
async def list_patients(
    principal: PatientsRead,
    session: SessionDep,
    page: PageDep,
    location_id: LocationFilter = None,
    status: Annotated[Literal["active", "inactive", "archived", "deceased"] | None, Query()] = None,
    updated_since: Annotated[
        datetime | None,
        Query(description="Only patients changed at or after this time (RFC 3339)"),
    ] = None,
) -> Page[PatientOut]:
    items, cursor = await service.list_patients(
        session,
        principal,
        page,
        location_id=location_id,
        status=status,
        updated_since=updated_since,
    )
    return Page(data=items, next_cursor=cursor)


@router.get(
    "/v1/patients/{patient_id}", summary="One patient with recalls, open treatment and balance"
)
async def get_patient(
    patient_id: str, principal: PatientsRead, session: SessionDep
) -> PatientDetailOut:
    return await service.get_patient(session, principal, patient_id)


@router.get("/v1/appointments", summary="List appointments, ordered by start")
async def list_appointments(
    principal: ScheduleRead,
    session: SessionDep,
    page: PageDep,
    location_id: LocationFilter = None,
    start_from: Annotated[
        datetime | None, Query(description="Appointments starting at or after this time")
    ] = None,
    start_before: Annotated[
        datetime | None, Query(description="Appointments starting before this time")
    ] = None,
    provider_id: Annotated[str | None, Query()] = None,
    patient_id: Annotated[str | None, Query()] = None,
    status: Annotated[list[AppointmentStatus] | None, Query(description="Any of")] = None,
) -> Page[AppointmentOut]:
    items, cursor = await service.list_appointments(
        session,
        principal,
        page,
        location_id=location_id,
        start_from=start_from,
        start_before=start_before,
        provider_id=provider_id,
        patient_id=patient_id,
        statuses=status or (),
    )
    return Page(data=items, next_cursor=cursor)


@router.get("/v1/providers", summary="List providers (dentists, hygienists)")
async def list_providers(
    principal: ScheduleRead, session: SessionDep, page: PageDep, location_id: LocationFilter = None
) -> Page[ProviderOut]:
    items, cursor = await service.list_resources(session, principal, "providers", page, location_id)
    return Page(data=items, next_cursor=cursor)


@router.get("/v1/operatories", summary="List operatories (chairs)")
async def list_operatories(
    principal: ScheduleRead, session: SessionDep, page: PageDep, location_id: LocationFilter = None
) -> Page[OperatoryOut]:
    items, cursor = await service.list_resources(
        session, principal, "operatories", page, location_id
    )
    return Page(data=items, next_cursor=cursor)


@router.get("/v1/appointment-types", summary="List appointment types")
async def list_appointment_types(
    principal: ScheduleRead, session: SessionDep, page: PageDep, location_id: LocationFilter = None
) -> Page[AppointmentTypeOut]:
    items, cursor = await service.list_resources(
        session, principal, "appointment-types", page, location_id
    )
    return Page(data=items, next_cursor=cursor)


@router.get(
    "/v1/locations/{location_id}/sync-status",
    summary="How fresh the location's PMS data is (the sync watermark)",
)
async def get_sync_status(
    location_id: str, principal: SyncStatusReader, session: SessionDep
) -> SyncStatusOut:
    return await freshness.sync_status(session, principal, location_id, utcnow())
