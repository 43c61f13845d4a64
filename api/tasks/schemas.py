from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

TaskKind = Literal["call", "booking_exception", "reply", "other"]
TaskStatus = Literal["open", "in_progress", "done", "cancelled"]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TaskKind
    title: str = Field(min_length=1, max_length=300)
    location_id: str = Field(min_length=1, max_length=40)
    patient_id: str | None = Field(default=None, max_length=40)
    due_at: AwareDatetime | None = None
    assignee: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A staff user id (`usr_...`) or free text such as `Front desk`",
    )
    notes: str | None = Field(default=None, max_length=10_000)


class TaskUpdate(BaseModel):
    """Only the fields sent change; `null` clears assignee, due_at or notes."""

    model_config = ConfigDict(extra="forbid")

    status: TaskStatus | None = None
    title: str | None = Field(default=None, min_length=1, max_length=300)
    assignee: str | None = Field(default=None, min_length=1, max_length=200)
    due_at: AwareDatetime | None = None
    notes: str | None = Field(default=None, max_length=10_000)


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: TaskKind
    status: TaskStatus
    title: str
    location_id: str
    patient_id: str | None
    due_at: dt.datetime | None
    assignee: str | None
    assignee_user_id: str | None = Field(description="Set when the assignee is a staff user")
    notes: str | None
    hold_id: str | None = Field(description="The booking hold of a booking exception")
    created_at: dt.datetime
    updated_at: dt.datetime


class TaskFilters(BaseModel):
    status: TaskStatus | None = None
    kind: TaskKind | None = None
    location_id: str | None = None
    assignee: str | None = None
