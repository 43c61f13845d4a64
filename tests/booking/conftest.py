"""Booking test helpers: a practice mirror pushed through the real ingestion path
(api.practice.ingest.sync_batch), publishable keys, and small REST helpers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.oauth2 import service as oauth_service
from api.practice import ingest

ORIGIN = "https://widget.brightsmiles.example"
CHICAGO = ZoneInfo("America/Chicago")


async def push(
    sessions: Any,
    tenant_id: str,
    location_id: str,
    entity: str,
    rows: list[dict[str, Any]],
    *,
    deletes: list[str] | None = None,
) -> None:
    """One bridge batch, with a fresh watermark (the mirror is up to date)."""
    now = utcnow()
    async with unit_of_work(sessions, tenant_id) as session:
        await ingest.sync_batch(
            session,
            tenant_id=tenant_id,
            location_id=location_id,
            entity=entity,
            rows=rows,
            deletes=deletes or [],
            watermark=now,
            now=now,
        )


async def ids_by_external(sessions: Any, table: str, location_id: str) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(
            text(f"SELECT external_id, id FROM {table} WHERE location_id = :l"),
            {"l": location_id},
        )
        return {external: our for external, our in rows}


def next_weekday(weekday: int, at_least_days: int = 7) -> date:
    """A local date in Chicago on `weekday` (0 = Monday), at least that many days ahead."""
    day = datetime.now(CHICAGO).date() + timedelta(days=at_least_days)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHICAGO)


@dataclass
class Mirror:
    tenant_id: str
    location_id: str
    headers: dict[str, str]
    providers: dict[str, str]
    operatories: dict[str, str]
    types: dict[str, str]
    day: date  # a Tuesday at least a week ahead: both providers work

    def at(self, hour: int, minute: int = 0, day: date | None = None) -> datetime:
        return local(day or self.day, hour, minute)


async def build_mirror(sessions: Any, tenant_id: str, location_id: str) -> dict[str, Any]:
    await push(
        sessions,
        tenant_id,
        location_id,
        "providers",
        [
            {"external_id": "dr", "kind": "dentist", "name": "Dr. Ada Molar"},
            {"external_id": "hy", "kind": "hygienist", "name": "Hana Floss"},
        ],
    )
    await push(
        sessions,
        tenant_id,
        location_id,
        "operatories",
        [{"external_id": "op1", "name": "Op 1"}, {"external_id": "op2", "name": "Op 2"}],
    )
    await push(
        sessions,
        tenant_id,
        location_id,
        "appointment-types",
        [
            {"external_id": "exam", "name": "Exam", "duration_minutes": 30, "self_bookable": True},
            {
                "external_id": "clean",
                "name": "Cleaning",
                "duration_minutes": 60,
                "self_bookable": True,
                "provider_external_ids": ["hy"],
                "operatory_external_ids": ["op2"],
            },
            {"external_id": "root", "name": "Root canal", "duration_minutes": 90},
        ],
    )
    schedules = []
    for weekday in range(5):
        for external, start, end in (("dr", "08:00", "12:00"), ("dr", "13:00", "17:00")):
            schedules.append(
                {
                    "external_id": f"{external}-{weekday}-{start}",
                    "kind": "weekly",
                    "provider_external_id": external,
                    "weekday": weekday,
                    "start_time": start,
                    "end_time": end,
                }
            )
        schedules.append(
            {
                "external_id": f"hy-{weekday}",
                "kind": "weekly",
                "provider_external_id": "hy",
                "weekday": weekday,
                "start_time": "09:00",
                "end_time": "15:00",
            }
        )
    await push(sessions, tenant_id, location_id, "schedules", schedules)
    return {
        "providers": await ids_by_external(sessions, "providers", location_id),
        "operatories": await ids_by_external(sessions, "operatories", location_id),
        "types": await ids_by_external(sessions, "appointment_types", location_id),
    }


@pytest.fixture
async def mirror(practice, sessions) -> Mirror:
    location_id = practice.locations[0].id
    ids = await build_mirror(sessions, practice.tenant.id, location_id)
    return Mirror(
        tenant_id=practice.tenant.id,
        location_id=location_id,
        headers=practice.headers,
        day=next_weekday(1),
        **ids,
    )


@pytest.fixture
def make_publishable_key(sessions) -> Callable[..., Awaitable[str]]:
    async def _make(tenant_id: str, location_ids: list[str]) -> str:
        async with unit_of_work(sessions) as session:
            key = await oauth_service.create_publishable_key(
                session,
                tenant_id,
                name="widget",
                location_ids=location_ids,
                allowed_origins=[ORIGIN],
            )
            return key.key

    return _make


def widget_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Origin": ORIGIN}


async def get_slots(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    location_id: str,
    appointment_type: str,
    start: str,
    end: str,
    **params: str,
) -> httpx.Response:
    return await client.get(
        f"/v1/locations/{location_id}/slots",
        params={"appointment_type": appointment_type, "start": start, "end": end, **params},
        headers=headers,
    )


def starts(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [s["start"] for s in response.json()["data"]]


async def hold(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    location_id: str,
    appointment_type_id: str,
    start: datetime,
    *,
    key: str | None = None,
    **fields: Any,
) -> httpx.Response:
    body = {
        "location_id": location_id,
        "appointment_type_id": appointment_type_id,
        "start": start.isoformat(),
        **fields,
    }
    return await client.post(
        "/v1/holds", json=body, headers=headers | {"Idempotency-Key": key or str(uuid.uuid4())}
    )


PATIENT = {
    "first_name": "Maria",
    "last_name": "Rivera",
    "birthdate": "1985-04-12",
    "mobile": "+15125550100",
}


async def confirm(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    hold_id: str,
    patient: dict[str, Any] | None = None,
    *,
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/holds/{hold_id}/confirm",
        json=patient or PATIENT,
        headers=headers | {"Idempotency-Key": key or str(uuid.uuid4())},
    )


async def count(sessions: Any, sql: str, **params: Any) -> int:
    async with sessions() as session:
        return int((await session.execute(text(sql), params)).scalar_one())


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@pytest.fixture
async def worker_context(settings):
    from workers.runner import WorkerContext

    context = await WorkerContext.start(settings)
    yield context
    await context.close()


@pytest.fixture
def run_jobs(worker_context):
    from tests.webhooks.conftest import Jobs

    return Jobs(worker_context)


@pytest.fixture
def receiver():
    from tests.webhooks.receiver import running_receiver

    with running_receiver() as r:
        yield r
