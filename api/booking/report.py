"""The daily reconciliation report of a location: every online booking of a local date,
whether its write-back reached the PMS, and the bookings the front desk had to resolve.
Computed on request, and stored each night by the `booking.daily_report` job."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.booking import repository
from api.booking.schemas import ReportItem, ReportOut
from api.booking.service import require_location
from api.core import jobs
from api.core.errors import NotFound, ValidationProblem
from api.engines.slots import local_dates_to_utc
from api.tenancy import repository as tenancy_repository
from api.tenancy.models import Location

REPORT_TASK = "booking.daily_report"


def _in(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


async def compute_report(session: AsyncSession, location: Location, day: date) -> ReportOut:
    start, end = local_dates_to_utc(day, day, location.timezone)
    holds = await repository.holds_touching(session, location.tenant_id, location.id, start, end)
    booked = [h for h in holds if _in(h.confirmed_at, start, end) and h.appointment_id]
    writebacks = await repository.creation_writebacks(
        session, location.tenant_id, location.id, [h.appointment_id or "" for h in booked]
    )
    zone = ZoneInfo(location.timezone)
    items: list[ReportItem] = []
    for hold in holds:
        outcome = "booked" if hold in booked else "exception"
        if outcome == "exception" and not _in(hold.exception_at, start, end):
            continue
        writeback = writebacks.get(hold.appointment_id or "") if outcome == "booked" else None
        items.append(
            ReportItem(
                hold_id=hold.id,
                outcome=outcome,
                appointment_id=hold.appointment_id if outcome == "booked" else None,
                task_id=hold.task_id,
                start=hold.start_at.astimezone(zone),
                writeback_status=writeback.status if writeback else None,
            )
        )
    statuses = [i.writeback_status for i in items if i.outcome == "booked"]
    return ReportOut(
        location_id=location.id,
        date=day,
        time_zone=location.timezone,
        online_bookings=len(statuses),
        written_back=statuses.count("succeeded"),
        pending=sum(1 for s in statuses if s in ("pending", "claimed", None)),
        failed=statuses.count("failed"),
        exceptions=sum(1 for i in items if i.outcome == "exception"),
        items=items,
    )


async def get_report(
    session: AsyncSession, principal: Principal, location_id: str, day: date
) -> ReportOut:
    location = await require_location(session, principal, location_id)
    return await compute_report(session, location, day)


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationProblem(
            "date: a local calendar date such as 2026-11-22",
            errors=[{"field": "date", "message": "a local calendar date (YYYY-MM-DD)"}],
        ) from None


async def store_daily_report(
    session: AsyncSession, tenant_id: str, location_id: str, day: date, now: datetime
) -> ReportOut:
    """The job: compute the report and keep it (running it again replaces it)."""
    location = await tenancy_repository.get_location(session, tenant_id, location_id, None)
    if location is None:
        raise NotFound(f"There is no location {location_id}.")
    report = await compute_report(session, location, day)
    await repository.store_report(
        session, tenant_id, location_id, day, report.model_dump(mode="json"), now
    )
    return report


def report_dedupe_key(location_id: str, day: date) -> str:
    return f"{REPORT_TASK}:{location_id}:{day.isoformat()}"


async def enqueue_daily_reports(session: AsyncSession, now: datetime) -> int:
    """Fan-out (system unit of work): one report job per location for its local
    yesterday, once (the unique dedupe key is the guard), so the cron may run hourly."""
    locations = list((await session.execute(select(Location).order_by(Location.id))).scalars())
    enqueued = 0
    for location in locations:
        yesterday = now.astimezone(ZoneInfo(location.timezone)).date() - timedelta(days=1)
        enqueued += await jobs.enqueue_once(
            session,
            REPORT_TASK,
            tenant_id=location.tenant_id,
            args={"location_id": location.id, "date": yesterday.isoformat()},
            dedupe_key=report_dedupe_key(location.id, yesterday),
        )
    return enqueued


async def enqueue_hold_expiries(session: AsyncSession, now: datetime) -> int:
    """Fan-out (system unit of work): one expiry job per tenant with lapsed holds, at most
    one per tenant and minute."""
    enqueued = 0
    minute = now.strftime("%Y%m%d%H%M")
    for tenant_id in await repository.tenants_with_lapsed_holds(session, now):
        enqueued += await jobs.enqueue_once(
            session,
            "booking.expire_holds",
            tenant_id=tenant_id,
            dedupe_key=f"booking.expire_holds:{tenant_id}:{minute}",
        )
    return enqueued
