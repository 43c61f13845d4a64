"""Queries over the mirror and the sync state. Every query starts from `scoped()`; reads
hide tombstones (`deleted_at IS NULL`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.practice.models import (
    Appointment,
    AppointmentType,
    LedgerBalance,
    LocationSyncState,
    Operatory,
    Patient,
    Procedure,
    Provider,
    Recall,
    TreatmentPlan,
)

OPEN_PROCEDURE_STATUSES = ("proposed", "accepted", "scheduled")
OPEN_PLAN_STATUSES = ("proposed", "accepted")


def _live(model: Any, tenant_id: str, visible: frozenset[str] | None) -> Any:
    return scoped(model, tenant_id, visible).where(model.deleted_at.is_(None))


async def list_patients(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    page: PageParams,
    *,
    location_id: str | None = None,
    status: str | None = None,
    updated_since: datetime | None = None,
) -> list[Patient]:
    stmt = _live(Patient, tenant_id, visible)
    if location_id is not None:
        stmt = stmt.where(Patient.location_id == location_id)
    if status is not None:
        stmt = stmt.where(Patient.status == status)
    if updated_since is not None:
        stmt = stmt.where(Patient.updated_at >= updated_since)
    return list((await session.execute(keyset(stmt, [Patient.id], page))).scalars())


async def get_patient(
    session: AsyncSession, tenant_id: str, visible: frozenset[str] | None, patient_id: str
) -> Patient | None:
    stmt = _live(Patient, tenant_id, visible).where(Patient.id == patient_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def location_has_patients(session: AsyncSession, tenant_id: str, location_id: str) -> bool:
    """Whether the location holds any patient row (tombstoned ones too)."""
    stmt = scoped(Patient, tenant_id).where(Patient.location_id == location_id).exists()
    return bool((await session.execute(select(stmt))).scalar())


async def recalls_of(session: AsyncSession, tenant_id: str, patient_id: str) -> list[Recall]:
    stmt = (
        _live(Recall, tenant_id, None)
        .where(Recall.patient_id == patient_id)
        .order_by(Recall.due_date.nulls_last(), Recall.id)
    )
    return list((await session.execute(stmt)).scalars())


async def open_procedures_of(
    session: AsyncSession, tenant_id: str, patient_id: str
) -> list[Procedure]:
    stmt = (
        _live(Procedure, tenant_id, None)
        .where(Procedure.patient_id == patient_id)
        .where(Procedure.status.in_(OPEN_PROCEDURE_STATUSES))
        .order_by(Procedure.planned_date.nulls_last(), Procedure.id)
    )
    return list((await session.execute(stmt)).scalars())


async def open_plans_of(
    session: AsyncSession, tenant_id: str, patient_id: str
) -> list[TreatmentPlan]:
    stmt = (
        _live(TreatmentPlan, tenant_id, None)
        .where(TreatmentPlan.patient_id == patient_id)
        .where(TreatmentPlan.status.in_(OPEN_PLAN_STATUSES))
        .order_by(TreatmentPlan.id)
    )
    return list((await session.execute(stmt)).scalars())


async def ledger_of(
    session: AsyncSession, tenant_id: str, guarantor_id: str
) -> LedgerBalance | None:
    stmt = (
        _live(LedgerBalance, tenant_id, None)
        .where(LedgerBalance.guarantor_id == guarantor_id)
        .order_by(LedgerBalance.updated_at.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_appointments(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    page: PageParams,
    *,
    location_id: str | None = None,
    start_from: datetime | None = None,
    start_before: datetime | None = None,
    provider_id: str | None = None,
    patient_id: str | None = None,
    statuses: Iterable[str] = (),
) -> list[Appointment]:
    stmt = _live(Appointment, tenant_id, visible)
    if location_id is not None:
        stmt = stmt.where(Appointment.location_id == location_id)
    if start_from is not None:
        stmt = stmt.where(Appointment.start_at >= start_from)
    if start_before is not None:
        stmt = stmt.where(Appointment.start_at < start_before)
    if provider_id is not None:
        stmt = stmt.where(Appointment.provider_id == provider_id)
    if patient_id is not None:
        stmt = stmt.where(Appointment.patient_id == patient_id)
    statuses = list(statuses)
    if statuses:
        stmt = stmt.where(Appointment.status.in_(statuses))
    keys = [Appointment.start_at, Appointment.id]
    return list((await session.execute(keyset(stmt, keys, page))).scalars())


async def list_resources(
    session: AsyncSession,
    model: type[Provider] | type[Operatory] | type[AppointmentType],
    tenant_id: str,
    visible: frozenset[str] | None,
    page: PageParams,
    location_id: str | None = None,
) -> list[Any]:
    stmt = _live(model, tenant_id, visible)
    if location_id is not None:
        stmt = stmt.where(model.location_id == location_id)
    return list((await session.execute(keyset(stmt, [model.id], page))).scalars())


# --- sync state ----------------------------------------------------------------------------


async def get_sync_state(
    session: AsyncSession, tenant_id: str, location_id: str
) -> LocationSyncState | None:
    stmt = scoped(LocationSyncState, tenant_id).where(LocationSyncState.location_id == location_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def sync_states(
    session: AsyncSession, tenant_id: str, location_ids: Iterable[str]
) -> dict[str, datetime | None]:
    """`data_as_of` per location (absent: never synced)."""
    ids = sorted(set(location_ids))
    if not ids:
        return {}
    stmt = scoped(LocationSyncState, tenant_id).where(LocationSyncState.location_id.in_(ids))
    return {s.location_id: s.data_as_of for s in (await session.execute(stmt)).scalars()}


async def lock_sync_state(
    session: AsyncSession, tenant_id: str, location_id: str
) -> LocationSyncState:
    """The location's sync state, created if missing, locked for this transaction."""
    await session.execute(
        insert(LocationSyncState)
        .values(tenant_id=tenant_id, location_id=location_id, entities={})
        .on_conflict_do_nothing()
    )
    stmt = (
        scoped(LocationSyncState, tenant_id)
        .where(LocationSyncState.location_id == location_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()
