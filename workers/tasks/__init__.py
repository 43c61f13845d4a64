"""The registry of task handlers: every task name in api.core.jobs.TASKS maps to the
coroutine that runs it.

Most handlers (HANDLERS) receive the unit of work's session (tenant-bound when the job has
a tenant) and the locked `jobs` row, call a domain service with the row's args and return
a small summary for the log. They never commit; the runner marks the job done in the same
transaction as their writes, so they run once.

A few (OWN_TRANSACTION_HANDLERS) wait on the network between their writes and must not
hold a transaction open meanwhile: they get the worker's context and run their own short
units of work. They must be idempotent (the runner marks the job done afterwards, so a
crash in between runs them again); webhook delivery is, by its SKIP LOCKED claims."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.infra_models import Job
from workers.tasks import (
    audiences,
    booking,
    cadences,
    campaigns,
    maintenance,
    messaging,
    sync,
    webhooks,
)
from workers.tasks.context import TaskContext

Handler = Callable[[AsyncSession, Job], Awaitable[dict[str, Any] | None]]
OwnTransactionHandler = Callable[[TaskContext, Job], Awaitable[dict[str, Any] | None]]

HANDLERS: dict[str, Handler] = {
    "maintenance.purge_expired": maintenance.purge_expired,
    "messaging.send": messaging.send,
    "messaging.send_batch": messaging.send_batch,
    "campaigns.start": campaigns.start,
    "campaigns.send_batch": campaigns.send_batch,
    "campaigns.finish": campaigns.finish,
    "sync.opendental_location": sync.opendental_location,
    "booking.expire_holds": booking.expire_holds,
    "booking.daily_report": booking.daily_report,
    "cadences.dispatch": cadences.dispatch,
    "cadences.enroll": cadences.enroll,
    "audiences.rebuild": audiences.rebuild,
}

OWN_TRANSACTION_HANDLERS: dict[str, OwnTransactionHandler] = {
    "webhooks.deliver": webhooks.deliver,
}
