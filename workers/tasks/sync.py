"""PMS connector runs on the `sync` queue: one job per location, and the cron that fans
them out (every minute it enqueues the locations whose interval has passed)."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job
from api.core.settings import get_settings
from api.practice.connectors import service

log = structlog.get_logger(__name__)


async def opendental_location(session: AsyncSession, job: Job) -> dict[str, Any]:
    if job.tenant_id is None:
        raise ValueError("sync.opendental_location needs a tenant")
    result = await service.sync_opendental_location(
        session,
        tenant_id=job.tenant_id,
        location_id=job.args["location_id"],
        now=utcnow(),
        secret_key=get_settings().secret_key,
    )
    return {name: c.as_dict() for name, c in result.entities.items()}


async def enqueue_opendental_syncs(ctx: dict[str, Any]) -> int:
    """Cron: a sync job for every configured location that is due."""
    context = ctx["chairfill"]
    async with unit_of_work(context.sessions) as session:
        enqueued = await service.enqueue_due_syncs(session, utcnow())
    if enqueued:
        log.info("opendental_syncs_enqueued", enqueued=enqueued)
    return enqueued
