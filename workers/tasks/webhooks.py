"""Webhook delivery: one job per attempt of one delivery (api/webhooks/delivery.py).

A failed attempt schedules the next one as a new job in the same transaction, so the
retry ladder lives in Postgres (`jobs.run_at`) and survives a flushed Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.infra_models import Job
from api.core.settings import get_settings
from api.webhooks.delivery import attempt_delivery, new_http_client

# One client per worker process (and event loop), so receivers' connections are reused.
_clients: dict[int, aiohttp.ClientSession] = {}


def http_client() -> aiohttp.ClientSession:
    loop = id(asyncio.get_running_loop())
    client = _clients.get(loop)
    if client is None or client.closed:
        # Sized to the queue's concurrency (imported here: workers.settings imports us).
        from workers.settings import QUEUE_CONCURRENCY

        max_connections = QUEUE_CONCURRENCY["webhooks"].max_jobs
        client = _clients[loop] = new_http_client(get_settings().webhooks, max_connections)
    return client


async def close_http_client() -> None:
    """Close this event loop's client (worker shutdown)."""
    client = _clients.pop(id(asyncio.get_running_loop()), None)
    if client is not None:
        await client.close()


async def deliver(session: AsyncSession, job: Job) -> dict[str, Any]:
    return await attempt_delivery(
        session,
        tenant_id=job.args["tenant_id"],
        delivery_id=job.args["delivery_id"],
        http=http_client(),
        settings=get_settings(),
    )
