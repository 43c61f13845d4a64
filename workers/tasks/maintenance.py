"""Housekeeping tasks: the per-tenant purge, and the two crons of the default queue (the
job reconciler and the nightly purge fan-out)."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.core import jobs
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job
from api.maintenance import service
from api.webhooks import dispatch as webhook_dispatch

log = structlog.get_logger(__name__)


async def purge_expired(session: AsyncSession, job: Job) -> dict[str, Any]:
    if job.tenant_id is None:
        raise ValueError("maintenance.purge_expired needs a tenant")
    counts = await service.purge_expired(session, job.tenant_id)
    return counts.as_dict()


async def reconcile_jobs(ctx: dict[str, Any]) -> int:
    """Cron: re-push due, pending jobs that Redis no longer knows (flushed, lost), and wake
    a webhook deliverer for tenants whose deliveries no job came for."""
    context = ctx["chairfill"]
    async with unit_of_work(context.sessions) as session:
        pushed = await jobs.reconcile(session, context.queue)
    async with unit_of_work(context.sessions) as session:
        woken = await webhook_dispatch.wake_overdue_deliverers(session, utcnow())
    if pushed or woken:
        log.info("jobs_reconciled", pushed=pushed, webhook_tenants_woken=woken)
    return pushed


async def enqueue_nightly_purges(ctx: dict[str, Any]) -> int:
    """Cron: one purge job per tenant per day (deduplicated in Postgres)."""
    context = ctx["chairfill"]
    async with unit_of_work(context.sessions) as session:
        enqueued = await service.enqueue_nightly_purges(session)
    log.info("nightly_purges_enqueued", enqueued=enqueued)
    return enqueued
