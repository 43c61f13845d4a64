from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.core.db import unit_of_work
from api.practice.freshness import require_fresh
from api.practice.problems import StaleData
from tests.practice.conftest import patient

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


async def test_watermark_advances_and_never_moves_backwards(sync, client, practice):
    first = await sync("patients", [patient("1")], watermark="2026-11-20T14:00:00Z")
    assert first.json()["watermark"]["applied"] is True
    assert first.json()["data_as_of"] == "2026-11-20T14:00:00Z"
    older = await sync("patients", [], watermark="2026-11-20T13:00:00-00:00")
    assert older.status_code == 200
    assert older.json()["watermark"]["applied"] is False
    assert "never move backwards" in older.json()["watermark"]["detail"]
    assert older.json()["data_as_of"] == "2026-11-20T14:00:00Z"
    newer = await sync("providers", [], watermark="2026-11-20T09:30:00-05:00")
    assert newer.json()["data_as_of"] == "2026-11-20T14:30:00Z"
    location = practice.locations[0].id
    status = await client.get(f"/v1/locations/{location}/sync-status", headers=practice.headers)
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["data_as_of"] == "2026-11-20T14:30:00Z"
    assert body["entities"]["patients"]["batches"] == 2
    assert body["entities"]["patients"]["created"] == 1
    assert body["entities"]["providers"]["batches"] == 1
    assert body["stale_data_threshold_minutes"] == 24 * 60


async def test_a_watermark_from_the_future_is_refused(sync):
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    response = await sync("patients", [patient("1")], watermark=ahead)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "watermark"


async def test_sync_status_of_a_location_never_synced(client, practice):
    location = practice.locations[1].id
    body = (
        await client.get(f"/v1/locations/{location}/sync-status", headers=practice.headers)
    ).json()
    assert (body["data_as_of"], body["is_stale"], body["entities"]) == (None, True, {})


async def test_sync_status_of_another_tenant_is_404(client, practice, other_practice):
    location = other_practice.locations[0].id
    response = await client.get(f"/v1/locations/{location}/sync-status", headers=practice.headers)
    assert response.status_code == 404


@pytest.mark.scopes("audiences:read")
async def test_sync_status_needs_a_reading_scope(client, practice):
    location = practice.locations[0].id
    response = await client.get(f"/v1/locations/{location}/sync-status", headers=practice.headers)
    assert response.status_code == 403
    assert "pms:sync or patients:read or schedule:read" in response.json()["detail"]


async def test_require_fresh_refuses_never_synced_and_stale_data(sync, sessions, practice):
    tenant_id, location_id = practice.tenant.id, practice.locations[0].id
    async with unit_of_work(sessions, tenant_id) as session:
        with pytest.raises(StaleData) as never:
            await require_fresh(session, tenant_id, location_id, NOW)
    assert never.value.status == 409
    assert never.value.body()["type"].endswith("/stale-data")
    assert never.value.body()["data_as_of"] is None

    await sync("patients", [patient("1")], watermark="2026-11-19T14:00:00Z")
    async with unit_of_work(sessions, tenant_id) as session:
        # 25 hours old against the default 24-hour threshold.
        with pytest.raises(StaleData) as stale:
            await require_fresh(session, tenant_id, location_id, NOW)
        body = stale.value.body()
        assert (body["data_as_of"], body["threshold_minutes"]) == (
            "2026-11-19T14:00:00+00:00",
            1440,
        )
        # 23 hours old is fresh enough.
        as_of = await require_fresh(session, tenant_id, location_id, NOW - timedelta(hours=2))
        assert as_of == datetime(2026, 11, 19, 14, 0, tzinfo=UTC)


async def test_require_fresh_follows_the_tenant_threshold(sync, sessions, practice):
    from sqlalchemy import text

    tenant_id, location_id = practice.tenant.id, practice.locations[0].id
    await sync("patients", [], watermark="2026-11-20T14:00:00Z")
    async with unit_of_work(sessions, tenant_id) as session:
        await session.execute(
            text("UPDATE tenants SET stale_data_threshold_minutes = 30 WHERE id = :t"),
            {"t": tenant_id},
        )
    async with unit_of_work(sessions, tenant_id) as session:
        with pytest.raises(StaleData):
            await require_fresh(session, tenant_id, location_id, NOW)
        await require_fresh(session, tenant_id, location_id, NOW - timedelta(minutes=35))
