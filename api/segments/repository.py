"""Queries: segments, running compiled rules, and the rows an explanation reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, text
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.engines.rules import CompiledQuery
from api.practice.models import (
    Appointment,
    CommunicationLog,
    LedgerBalance,
    Patient,
    Procedure,
    Provider,
    Recall,
    TreatmentPlan,
)
from api.segments.models import Segment

SAMPLE_SIZE = 20


def _visible(visible: frozenset[str] | None) -> ColumnElement[bool] | None:
    """A segment is visible when it covers all locations, or only locations the caller
    may see (a count over a hidden location would leak it)."""
    if visible is None:
        return None
    return or_(
        func.cardinality(Segment.location_ids) == 0,
        Segment.location_ids.contained_by(sorted(visible)),
    )


def _segments(tenant_id: str, visible: frozenset[str] | None) -> Select[Any]:
    stmt = scoped(Segment, tenant_id)
    condition = _visible(visible)
    return stmt if condition is None else stmt.where(condition)


async def get_segment(
    session: AsyncSession, tenant_id: str, segment_id: str, visible: frozenset[str] | None
) -> Segment | None:
    stmt = _segments(tenant_id, visible).where(Segment.id == segment_id)
    segment: Segment | None = (await session.execute(stmt)).scalar_one_or_none()
    return segment


async def list_segments(
    session: AsyncSession, tenant_id: str, visible: frozenset[str] | None, page: PageParams
) -> list[Segment]:
    stmt = keyset(_segments(tenant_id, visible), [Segment.id], page)
    return list((await session.execute(stmt)).scalars())


async def delete_segment(session: AsyncSession, segment: Segment) -> None:
    await session.delete(segment)
    await session.flush()


async def matching_patients(
    session: AsyncSession, compiled: CompiledQuery
) -> list[tuple[str, str]]:
    """Every (patient_id, location_id) the compiled rule matches."""
    rows = await session.execute(text(compiled.sql), compiled.params)
    return [(row.patient_id, row.location_id) for row in rows]


async def preview(
    session: AsyncSession, compiled: CompiledQuery, tenant_id: str
) -> tuple[int, list[Any]]:
    """(count, up to SAMPLE_SIZE rows of patient_id, location_id, first_name, last_name)."""
    sql = (
        "SELECT m.patient_id, m.location_id, pt.first_name, pt.last_name, "
        f"count(*) OVER () AS total FROM ({compiled.sql}) m "
        "JOIN patients pt ON pt.tenant_id = :tenant_id AND pt.id = m.patient_id "
        f"ORDER BY m.patient_id LIMIT {SAMPLE_SIZE}"
    )
    params = dict(compiled.params, tenant_id=tenant_id)
    rows = list(await session.execute(text(sql), params))
    return (rows[0].total if rows else 0), rows


# --- what an explanation reads (live rows only) -----------------------------------------


async def _live(session: AsyncSession, stmt: Select[Any], model: Any) -> list[Any]:
    stmt = stmt.where(model.deleted_at.is_(None)).order_by(model.id)
    return list((await session.execute(stmt)).scalars())


async def patient_records(session: AsyncSession, patient: Patient) -> dict[str, list[Any]]:
    """The patient's live related rows, by kind."""
    tenant = patient.tenant_id
    records: dict[str, list[Any]] = {}
    for kind, model in (
        ("appointments", Appointment),
        ("recalls", Recall),
        ("treatment_plans", TreatmentPlan),
        ("procedures", Procedure),
        ("communications", CommunicationLog),
    ):
        stmt = scoped(model, tenant).where(model.patient_id == patient.id)
        records[kind] = await _live(session, stmt, model)
    guarantor = patient.guarantor_id or patient.id
    ledger = scoped(LedgerBalance, tenant).where(LedgerBalance.guarantor_id == guarantor)
    records["ledger"] = await _live(session, ledger, LedgerBalance)
    records["household"] = []
    if patient.household_id is not None:
        household = scoped(Patient, tenant).where(
            and_(
                Patient.location_id == patient.location_id,
                Patient.household_id == patient.household_id,
                Patient.id != patient.id,
            )
        )
        records["household"] = await _live(session, household, Patient)
    records["providers"] = []
    if patient.primary_provider_id is not None:
        provider = scoped(Provider, tenant).where(Provider.id == patient.primary_provider_id)
        records["providers"] = await _live(session, provider, Provider)
    return records
