"""Helpers for the practice tests: pushing batches the way a bridge does."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest


def patient(external_id: str, **fields: Any) -> dict[str, Any]:
    row = {
        "external_id": external_id,
        "first_name": f"First{external_id}",
        "last_name": "Rivera",
        "birthdate": "1985-04-12",
        "status": "active",
        "email": f"p{external_id}@example.com",
        "mobile": "+15125550100",
        "sms_consent": True,
    }
    return row | fields


def appointment(external_id: str, patient_external_id: str, **fields: Any) -> dict[str, Any]:
    row = {
        "external_id": external_id,
        "patient_external_id": patient_external_id,
        "start_at": "2026-11-24T15:00:00Z",
        "end_at": "2026-11-24T16:00:00Z",
        "status": "scheduled",
    }
    return row | fields


Sync = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def sync(client: httpx.AsyncClient, practice: Any) -> Sync:
    """POST a batch to /v1/sync/locations/{location}/{entity} with a fresh key."""

    async def _sync(
        entity: str,
        rows: list[dict[str, Any]] | None = None,
        *,
        deletes: list[Any] | None = None,
        watermark: str | None = None,
        location_id: str | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = "new",
    ) -> httpx.Response:
        body: dict[str, Any] = {"rows": rows or []}
        if deletes is not None:
            body["deletes"] = deletes
        if watermark is not None:
            body["watermark"] = watermark
        request_headers = dict(headers or practice.headers)
        if key is not None:
            request_headers["Idempotency-Key"] = str(uuid.uuid4()) if key == "new" else key
        location = location_id or practice.locations[0].id
        return await client.post(
            f"/v1/sync/locations/{location}/{entity}", json=body, headers=request_headers
        )

    return _sync


async def count_rows(sessions: Any, sql: str, **params: Any) -> int:
    from sqlalchemy import text

    async with sessions() as session:
        return int((await session.execute(text(sql), params)).scalar_one())
