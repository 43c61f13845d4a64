"""GraphQL for front-desk tasks: the same service functions as `/v1/tasks`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.auth.scopes import Scope
from api.core.clock import utcnow
from api.core.pagination import DEFAULT_LIMIT, PageParams
from api.graphql.context import Context
from api.graphql.inputs import validated
from api.graphql.permissions import requires_scopes
from api.tasks import service
from api.tasks.schemas import TaskCreate, TaskFilters, TaskOut, TaskUpdate
from api.tenancy.graphql import _page

Info = strawberry.Info[Context, None]
MANAGE = Scope.TASKS_MANAGE.value


@strawberry.type(description="A front-desk task: a call, a booking exception, a reply.")
class Task:
    id: strawberry.ID
    kind: str = strawberry.field(description="call, booking_exception, reply or other")
    status: str = strawberry.field(description="open, in_progress, done or cancelled")
    title: str
    location_id: str
    patient_id: str | None
    due_at: datetime | None
    assignee: str | None = strawberry.field(description="A staff user id or free text")
    assignee_user_id: str | None
    notes: str | None
    hold_id: str | None = strawberry.field(description="The hold of a booking exception")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_out(cls, task: TaskOut) -> Task:
        return cls(id=strawberry.ID(task.id), **task.model_dump(exclude={"id"}))


@strawberry.type(description="One page of tasks, oldest first.")
class TaskConnection:
    nodes: list[Task]
    next_cursor: str | None = strawberry.field(description="Pass as `after`; null at the end.")


@strawberry.input(description="A new task.")
class TaskInput:
    kind: str
    title: str
    location_id: str
    patient_id: str | None = None
    due_at: datetime | None = None
    assignee: str | None = None
    notes: str | None = None


@strawberry.input(description="Changes to a task; only the fields given change.")
class TaskPatch:
    status: str | None = strawberry.UNSET
    title: str | None = strawberry.UNSET
    assignee: str | None = strawberry.UNSET
    due_at: datetime | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET


@strawberry.type
class TasksQuery:
    @strawberry.field(extensions=[requires_scopes(MANAGE)], description="Front-desk tasks.")
    async def tasks(
        self,
        info: Info,
        status: str | None = None,
        kind: str | None = None,
        location_id: str | None = None,
        assignee: str | None = None,
        first: Annotated[int, strawberry.argument(description="Items per page")] = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> TaskConnection:
        filters = validated(
            TaskFilters,
            {"status": status, "kind": kind, "location_id": location_id, "assignee": assignee},
        )
        page: PageParams = _page(first, after)
        async with info.context.db() as session:
            items, cursor = await service.list_tasks(session, info.context.principal, filters, page)
        return TaskConnection(nodes=[Task.from_out(t) for t in items], next_cursor=cursor)

    @strawberry.field(extensions=[requires_scopes(MANAGE)], description="One task.")
    async def task(self, info: Info, id: strawberry.ID) -> Task | None:
        async with info.context.db() as session:
            return Task.from_out(await service.get_task(session, info.context.principal, str(id)))


@strawberry.type
class TasksMutation:
    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Create a task.")
    async def create_task(self, info: Info, input: TaskInput) -> Task:
        data = validated(TaskCreate, strawberry.asdict(input), "input.")
        async with info.context.db() as session:
            created = await service.create_task(session, info.context.principal, data, utcnow())
        return Task.from_out(created)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Change a task.")
    async def update_task(self, info: Info, id: strawberry.ID, patch: TaskPatch) -> Task:
        sent = {k: v for k, v in strawberry.asdict(patch).items() if v is not strawberry.UNSET}
        data = validated(TaskUpdate, sent, "patch.")
        async with info.context.db() as session:
            updated = await service.update_task(
                session, info.context.principal, str(id), data, utcnow()
            )
        return Task.from_out(updated)
