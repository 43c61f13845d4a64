"""Audience tests: a practice's mirror loaded through the bridge's ingestion (fresh
watermark), a segment over it, and the real worker to run rebuild jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from api.core.db import unit_of_work
from api.practice import ingest
from tests.conftest import Practice
from tests.workers.conftest import run_burst, worker_context

__all__ = ["run_burst", "worker_context"]

# Matches every patient the helpers make (their last name), so suppression decides.
EVERYONE = {"version": 1, "rule": {"field": "last_name", "op": "equals", "value": "Lee"}}


def person(external_id: str, n: int, **fields: Any) -> dict[str, Any]:
    """A reachable patient: active, a mobile and an email, consent to both."""
    row = {
        "external_id": external_id,
        "first_name": external_id.title(),
        "last_name": "Lee",
        "status": "active",
        "mobile": f"+1512555{n:04d}",
        "email": f"{external_id}@example.com",
        "sms_consent": True,
        "email_consent": True,
    }
    return row | fields


Load = Callable[..., Awaitable[None]]


@pytest.fixture
def load(sessions) -> Load:
    """Push rows of one entity to a location with a fresh watermark (now)."""

    async def _load(
        practice: Practice,
        entity: str,
        rows: list[dict[str, Any]],
        location: int = 0,
        deletes: list[str] | None = None,
        watermark: dt.datetime | None = None,
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        async with unit_of_work(sessions, practice.tenant.id) as session:
            await ingest.sync_batch(
                session,
                tenant_id=practice.tenant.id,
                location_id=practice.locations[location].id,
                entity=entity,
                rows=rows,
                deletes=deletes or [],
                watermark=watermark or now,
                now=now,
            )

    return _load


async def make_segment(
    client: httpx.AsyncClient,
    practice: Practice,
    rule: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    # The first location by default: the second one is never synced unless a test does.
    body = {
        "name": "Everyone",
        "rule": rule or EVERYONE,
        "location_ids": [practice.locations[0].id],
    } | fields
    response = await client.post("/v1/segments", json=body, headers=practice.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def make_audience(
    client: httpx.AsyncClient, practice: Practice, segment_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"segment_id": segment_id, "channel": "sms"} | fields
    response = await client.post("/v1/audiences", json=body, headers=practice.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def rebuild(client, practice: Practice, audience_id: str, run_burst) -> dict[str, Any]:
    """Ask for a rebuild, run it through the worker, return the audience."""
    queued = await client.post(f"/v1/audiences/{audience_id}/rebuild", headers=practice.headers)
    assert queued.status_code == 202, queued.text
    assert await run_burst("default") >= 1
    current = await client.get(f"/v1/audiences/{audience_id}", headers=practice.headers)
    assert current.status_code == 200, current.text
    return current.json()
