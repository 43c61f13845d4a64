"""Front-desk tasks: calls to make, booking exceptions to resolve, replies, anything else.

Other domains create tasks through this module (booking exceptions come from
api/booking/holds.py); staff and their apps work the list over REST and GraphQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.core.errors import NotFound, ValidationProblem
from api.core.ids import PREFIXES, new_id
from api.core.pagination import PageParams, page_of
from api.tasks import repository
from api.tasks.models import Task
from api.tasks.schemas import TaskCreate, TaskFilters, TaskOut, TaskUpdate
from api.tenancy import repository as tenancy_repository

_USER_PREFIX = PREFIXES["staff_user"] + "_"


def task_out(task: Task) -> TaskOut:
    return TaskOut.model_validate(task)


async def _assignee_user(session: AsyncSession, tenant_id: str, assignee: str | None) -> str | None:
    """A `usr_...` assignee must be a staff user of the tenant; anything else is free text."""
    if assignee is None or not assignee.startswith(_USER_PREFIX):
        return None
    if await tenancy_repository.get_staff_user(session, tenant_id, assignee) is None:
        raise ValidationProblem(
            f"There is no staff user {assignee}.",
            errors=[{"field": "assignee", "message": "unknown staff user"}],
        )
    return assignee


async def list_tasks(
    session: AsyncSession, principal: Principal, filters: TaskFilters, page: PageParams
) -> tuple[list[TaskOut], str | None]:
    rows = await repository.list_tasks(
        session, principal.tenant_id, principal.location_ids, filters, page
    )
    items, cursor = page_of(rows, ["id"], page)
    return [task_out(t) for t in items], cursor


async def get_task(session: AsyncSession, principal: Principal, task_id: str) -> TaskOut:
    task = await repository.get_task(session, principal.tenant_id, principal.location_ids, task_id)
    if task is None:
        raise NotFound(f"There is no task {task_id}.")
    return task_out(task)


async def create_task(
    session: AsyncSession, principal: Principal, data: TaskCreate, now: datetime
) -> TaskOut:
    location = await tenancy_repository.get_location(
        session, principal.tenant_id, data.location_id, principal.location_ids
    )
    if location is None:
        raise NotFound(f"There is no location {data.location_id}.")
    if data.patient_id is not None and (
        await repository.patient_at(session, principal.tenant_id, location.id, data.patient_id)
        is None
    ):
        raise ValidationProblem(
            f"There is no patient {data.patient_id} at location {location.id}.",
            errors=[{"field": "patient_id", "message": "unknown patient at this location"}],
        )
    task = Task(
        tenant_id=principal.tenant_id,
        id=new_id("task"),
        location_id=location.id,
        kind=data.kind,
        status="open",
        title=data.title.strip(),
        patient_id=data.patient_id,
        due_at=data.due_at,
        assignee=data.assignee,
        assignee_user_id=await _assignee_user(session, principal.tenant_id, data.assignee),
        notes=data.notes,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    await session.flush()
    return task_out(task)


async def update_task(
    session: AsyncSession, principal: Principal, task_id: str, patch: TaskUpdate, now: datetime
) -> TaskOut:
    task = await repository.get_task(
        session, principal.tenant_id, principal.location_ids, task_id, for_update=True
    )
    if task is None:
        raise NotFound(f"There is no task {task_id}.")
    sent = patch.model_fields_set
    for required in ("status", "title"):
        if required in sent and getattr(patch, required) is None:
            raise ValidationProblem(
                f"{required} cannot be null.",
                errors=[{"field": required, "message": "cannot be null"}],
            )
    if "status" in sent:
        task.status = patch.status  # type: ignore[assignment]
    if "title" in sent:
        task.title = (patch.title or "").strip()
    if "assignee" in sent:
        task.assignee = patch.assignee
        task.assignee_user_id = await _assignee_user(session, principal.tenant_id, patch.assignee)
    if "due_at" in sent:
        task.due_at = patch.due_at
    if "notes" in sent:
        task.notes = patch.notes
    task.updated_at = now
    await session.flush()
    return task_out(task)


async def _system_task(session: AsyncSession, **fields: object) -> Task:
    """A task created by Chairfill itself (no principal): the caller vouches for the ids."""
    task = Task(id=new_id("task"), status="open", **fields)
    session.add(task)
    await session.flush()
    return task


async def create_booking_exception(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    hold_id: str,
    title: str,
    notes: str,
    due_at: datetime | None,
) -> Task:
    """A booking the front desk must resolve (e.g. an ambiguous patient match)."""
    return await _system_task(
        session,
        tenant_id=tenant_id,
        location_id=location_id,
        kind="booking_exception",
        title=title[:300],
        due_at=due_at,
        notes=notes,
        hold_id=hold_id,
        created_by="booking",
    )


async def create_reply_task(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    patient_id: str | None,
    title: str,
    notes: str,
    now: datetime,
) -> Task:
    """A message the front desk must answer (inbound texts). The location and patient come
    from the caller's own tenant-scoped lookups; title and notes are cut to their columns."""
    return await _system_task(
        session,
        tenant_id=tenant_id,
        location_id=location_id,
        kind="reply",
        title=title.strip()[:300],
        patient_id=patient_id,
        assignee="Front desk",
        notes=notes[:10_000],
        created_by="messaging",
        created_at=now,
        updated_at=now,
    )


async def create_call_task(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    patient_id: str,
    title: str,
    notes: str | None,
    assignee: str,
    due_at: datetime,
    now: datetime,
) -> Task:
    """A call the front desk should make (a cadence's call step)."""
    return await _system_task(
        session,
        tenant_id=tenant_id,
        location_id=location_id,
        kind="call",
        title=title.strip()[:300],
        patient_id=patient_id,
        assignee=assignee,
        due_at=due_at,
        notes=notes[:10_000] if notes else None,
        created_by="cadence",
        created_at=now,
        updated_at=now,
    )
