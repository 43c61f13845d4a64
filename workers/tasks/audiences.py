"""Audience tasks: a rebuild (scheduled or requested), and the cron that finds the
audience locations whose local rebuild time has come."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import rebuild as audience_rebuild
from api.audiences import schedule
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job

log = structlog.get_logger(__name__)


async def rebuild(session: AsyncSession, job: Job) -> dict[str, Any]:
    if job.tenant_id is None:
        raise ValueError("audiences.rebuild needs a tenant")
    evaluate_at = job.args.get("evaluate_at")
    outcome = await audience_rebuild.rebuild_audience(
        session,
        tenant_id=job.tenant_id,
        audience_id=job.args["audience_id"],
        location_ids=job.args.get("location_ids"),
        trigger=job.args.get("trigger", "manual"),
        now=utcnow(),
        evaluate_at=datetime.fromisoformat(evaluate_at) if evaluate_at else None,
    )
    return outcome.summary()


async def enqueue_due_rebuilds(ctx: dict[str, Any]) -> int:
    """Cron (every minute): rebuild jobs for audience locations whose time has come."""
    context = ctx["chairfill"]
    async with unit_of_work(context.sessions) as session:
        enqueued = await schedule.enqueue_due_rebuilds(session, utcnow())
    if enqueued:
        log.info("audience_rebuilds_enqueued", enqueued=enqueued)
    return enqueued
