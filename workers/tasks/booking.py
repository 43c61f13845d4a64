"""Booking tasks: expiring lapsed holds (booking.expired) and the daily reconciliation
report, plus the two crons of the default queue that fan them out."""

from __future__ import annotations

from datetime import date
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.booking import changes, report
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job

log = structlog.get_logger(__name__)


async def expire_holds(session: AsyncSession, job: Job) -> dict[str, Any]:
    if job.tenant_id is None:
        raise ValueError("booking.expire_holds needs a tenant")
    return {"expired": await changes.expire_holds(session, job.tenant_id, utcnow())}


async def daily_report(session: AsyncSession, job: Job) -> dict[str, Any]:
    if job.tenant_id is None:
        raise ValueError("booking.daily_report needs a tenant")
    stored = await report.store_daily_report(
        session,
        job.tenant_id,
        job.args["location_id"],
        date.fromisoformat(job.args["date"]),
        utcnow(),
    )
    return {"online_bookings": stored.online_bookings, "exceptions": stored.exceptions}


async def enqueue_hold_expiries(ctx: dict[str, Any]) -> int:
    """Cron (every minute): an expiry job for each tenant with lapsed holds."""
    context = ctx["chairfill"]
    async with unit_of_work(context.sessions) as session:
        enqueued = await report.enqueue_hold_expiries(session, utcnow())
    if enqueued:
        log.info("hold_expiries_enqueued", enqueued=enqueued)
    return enqueued


async def enqueue_daily_reports(ctx: dict[str, Any]) -> int:
    """Cron (hourly): each location's report of its local yesterday, once."""
    context = ctx["chairfill"]
    async with unit_of_work(context.sessions) as session:
        enqueued = await report.enqueue_daily_reports(session, utcnow())
    if enqueued:
        log.info("booking_reports_enqueued", enqueued=enqueued)
    return enqueued
