from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.practice.models import Patient
from api.tasks.models import Task
from api.tasks.schemas import TaskFilters


async def list_tasks(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    filters: TaskFilters,
    page: PageParams,
) -> list[Task]:
    stmt = scoped(Task, tenant_id, visible)
    if filters.status is not None:
        stmt = stmt.where(Task.status == filters.status)
    if filters.kind is not None:
        stmt = stmt.where(Task.kind == filters.kind)
    if filters.location_id is not None:
        stmt = stmt.where(Task.location_id == filters.location_id)
    if filters.assignee is not None:
        stmt = stmt.where(Task.assignee == filters.assignee)
    return list((await session.execute(keyset(stmt, [Task.id], page))).scalars())


async def get_task(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    task_id: str,
    *,
    for_update: bool = False,
) -> Task | None:
    stmt = scoped(Task, tenant_id, visible).where(Task.id == task_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def patient_at(
    session: AsyncSession, tenant_id: str, location_id: str, patient_id: str
) -> Patient | None:
    stmt = scoped(Patient, tenant_id).where(
        Patient.id == patient_id, Patient.location_id == location_id, Patient.deleted_at.is_(None)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
