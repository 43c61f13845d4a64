"""Cadence ticks: the per-tenant dispatch (exits, then due steps), continuous enrollment
from segments, and the two crons of the default queue that fan them out."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.cadences import service
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job
from api.core.settings import get_settings

log = structlog.get_logger(__name__)


async def dispatch(session: AsyncSession, job: Job) -> dict[str, Any]:
    if job.tenant_id is None:
        raise ValueError("cadences.dispatch needs a tenant")
    return await service.dispatch_due(session, job.tenant_id, utcnow(), get_settings())


async def enroll(session: AsyncSession, job: Job) -> dict[str, Any]:
    if job.tenant_id is None:
        raise ValueError("cadences.enroll needs a tenant")
    return await service.enroll_from_sources(
        session, job.tenant_id, job.args["cadence_id"], utcnow()
    )


async def enqueue_ticks(ctx: dict[str, Any]) -> int:
    """Cron (every minute): a dispatch for each tenant with active enrollments."""
    context = ctx["chairfill"]
    async with unit_of_work(context.sessions) as session:
        enqueued = await service.enqueue_ticks(session, utcnow())
    if enqueued:
        log.info("cadence_ticks_enqueued", enqueued=enqueued)
    return enqueued


async def enqueue_enrollments(ctx: dict[str, Any]) -> int:
    """Cron (hourly): continuous enrollment for cadences that enroll from segments."""
    context = ctx["chairfill"]
    async with unit_of_work(context.sessions) as session:
        enqueued = await service.enqueue_enrollments(session, utcnow())
    if enqueued:
        log.info("cadence_enrollments_enqueued", enqueued=enqueued)
    return enqueued
