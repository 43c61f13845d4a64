"""REST: the front-desk task list (`tasks:manage`). Thin: every route calls the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Security

from api.auth.dependencies import authorize
from api.auth.principal import Principal
from api.auth.scopes import Scope
from api.core.clock import utcnow
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import IdempotentOptional, SessionDep, api_router
from api.tasks import service
from api.tasks.schemas import TaskCreate, TaskFilters, TaskKind, TaskOut, TaskStatus, TaskUpdate

router = api_router("tasks")

TasksManage = Annotated[Principal, Security(authorize, scopes=[Scope.TASKS_MANAGE.value])]


def task_filters(
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status")] = None,
    kind: Annotated[TaskKind | None, Query(description="Only tasks of this kind")] = None,
    location_id: Annotated[
        str | None, Query(max_length=40, description="Only tasks of this location")
    ] = None,
    assignee: Annotated[
        str | None, Query(max_length=200, description="Only tasks with this assignee")
    ] = None,
) -> TaskFilters:
    return TaskFilters(status=status, kind=kind, location_id=location_id, assignee=assignee)


@router.get("/v1/tasks", summary="List front-desk tasks (oldest first)")
async def list_tasks(
    principal: TasksManage,
    session: SessionDep,
    filters: Annotated[TaskFilters, Depends(task_filters)],
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[TaskOut]:
    items, cursor = await service.list_tasks(session, principal, filters, page)
    return Page(data=items, next_cursor=cursor)


@router.get("/v1/tasks/{task_id}", summary="One task")
async def get_task(task_id: str, principal: TasksManage, session: SessionDep) -> TaskOut:
    return await service.get_task(session, principal, task_id)


@router.post(
    "/v1/tasks", status_code=201, summary="Create a task", dependencies=[IdempotentOptional]
)
async def create_task(data: TaskCreate, principal: TasksManage, session: SessionDep) -> TaskOut:
    return await service.create_task(session, principal, data, utcnow())


@router.patch("/v1/tasks/{task_id}", summary="Change a task's status, assignee, due time or notes")
async def update_task(
    task_id: str, data: TaskUpdate, principal: TasksManage, session: SessionDep
) -> TaskOut:
    return await service.update_task(session, principal, task_id, data, utcnow())
