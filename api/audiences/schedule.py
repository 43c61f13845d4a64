"""The nightly (or weekly) rebuilds: each location of an audience is rebuilt when its own
local clock reaches the segment's rebuild time (default 23:00, after the day's charting),
so a Chicago and a New York location of one audience are rebuilt an hour apart.

A cron calls `enqueue_due_rebuilds` every minute; each (audience, location, local date of
the slot) gets at most one job, the jobs table's unique dedupe key being the guard, so a
missed minute or a second scheduler does no harm and a late worker still catches up."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository
from api.audiences.service import REBUILD_TASK
from api.core import jobs
from api.core.infra_models import Job
from api.tenancy.models import Location


def last_slot(
    now: dt.datetime, time_zone: str, local_time: dt.time, cadence: str, weekday: int
) -> dt.datetime:
    """The latest scheduled rebuild moment at or before `now`, in the location's zone.

    A local time that does not exist on a spring-forward day (02:30) is read with the
    offset before the change, i.e. it happens an hour later on the wall clock; one that
    exists twice (fall back) is the first of the two (fold=0)."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    for back in range(8):
        day = today - dt.timedelta(days=back)
        if cadence == "weekly" and day.weekday() != weekday:
            continue
        moment = dt.datetime.combine(day, local_time, tzinfo=zone)
        if moment <= now:
            return moment
    raise AssertionError("a daily or weekly slot always falls within eight days")


def dedupe_key(audience_id: str, location_id: str, slot: dt.datetime) -> str:
    return f"{REBUILD_TASK}:{audience_id}:{location_id}:{slot.date().isoformat()}"


async def enqueue_due_rebuilds(session: AsyncSession, now: dt.datetime) -> int:
    """Fan-out (system unit of work): a rebuild job for each audience location whose
    latest slot has come since the audience was created and has no job yet."""
    by_tenant: dict[str, list[Location]] = defaultdict(list)
    for location in (await session.execute(select(Location).order_by(Location.id))).scalars():
        by_tenant[location.tenant_id].append(location)
    due: list[tuple[str, str, str, dt.datetime]] = []  # tenant, audience, location, slot
    for audience, segment in await repository.all_audiences(session):
        wanted = set(segment.location_ids or ())
        for location in by_tenant[audience.tenant_id]:
            if wanted and location.id not in wanted:
                continue
            slot = last_slot(
                now,
                location.timezone,
                segment.refresh_local_time,
                segment.refresh_cadence,
                segment.refresh_weekday,
            )
            if slot >= audience.created_at:
                due.append((audience.tenant_id, audience.id, location.id, slot))
    if not due:
        return 0
    keys = [dedupe_key(a, loc, slot) for _, a, loc, slot in due]
    taken = set(
        (await session.execute(select(Job.dedupe_key).where(Job.dedupe_key.in_(keys)))).scalars()
    )
    enqueued = 0
    for (tenant_id, audience_id, location_id, slot), key in zip(due, keys, strict=True):
        if key in taken:
            continue
        try:
            async with session.begin_nested():
                await jobs.enqueue(
                    session,
                    REBUILD_TASK,
                    tenant_id=tenant_id,
                    args={
                        "audience_id": audience_id,
                        "location_ids": [location_id],
                        "trigger": "scheduled",
                        "evaluate_at": slot.isoformat(),
                    },
                    dedupe_key=key,
                )
        except IntegrityError:
            continue
        enqueued += 1
    return enqueued
