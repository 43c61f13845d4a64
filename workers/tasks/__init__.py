"""The registry of task handlers: every task name in api.core.jobs.TASKS maps to the
coroutine that runs it. A handler receives the unit of work's session (tenant-bound when
the job has a tenant) and the locked `jobs` row, calls a domain service with the row's
args and returns a small summary for the log. It never commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.infra_models import Job
from workers.tasks import audiences, booking, maintenance, messaging, sync, webhooks

Handler = Callable[[AsyncSession, Job], Awaitable[dict[str, Any] | None]]

HANDLERS: dict[str, Handler] = {
    "maintenance.purge_expired": maintenance.purge_expired,
    "webhooks.deliver": webhooks.deliver,
    "messaging.send": messaging.send,
    "sync.opendental_location": sync.opendental_location,
    "booking.expire_holds": booking.expire_holds,
    "booking.daily_report": booking.daily_report,
    "audiences.rebuild": audiences.rebuild,
}
