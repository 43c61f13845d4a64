"""Webhook delivery: a `webhooks.deliver` job sends its tenant's due deliveries in
batches (api/webhooks/dispatch.py).

It runs outside the job's transaction (workers.tasks.OWN_TRANSACTION_HANDLERS): the batch
is claimed and recorded in short transactions of its own, so no transaction stays open
while receivers answer. The retry ladder lives in Postgres (each delivery's
`next_attempt_at`, and the wake-up job recorded for it), so it survives a flushed Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from api.core.infra_models import Job
from api.events.outbox import BATCH_SIZE
from api.webhooks.delivery import new_http_client
from api.webhooks.dispatch import deliver_due
from workers.tasks.context import TaskContext

# Deliverer jobs a worker process runs at once (workers.settings uses it for the
# `webhooks` queue). Each claims one batch at a time, so JOBS x BATCH_SIZE POSTs can be in
# flight: the HTTP client and the limiter below are sized to exactly that, and a claimed
# delivery never waits behind a full pool while its lease runs.
CONCURRENT_JOBS = 4
IN_FLIGHT = CONCURRENT_JOBS * BATCH_SIZE


class _Sender:
    """One HTTP client per worker process (and event loop), so receivers' connections
    are reused, and one limiter on the POSTs it has in flight."""

    def __init__(self, client: aiohttp.ClientSession) -> None:
        self.client = client
        self.limiter = asyncio.Semaphore(IN_FLIGHT)


_senders: dict[int, _Sender] = {}


def _sender(context: TaskContext) -> _Sender:
    loop = id(asyncio.get_running_loop())
    sender = _senders.get(loop)
    if sender is None or sender.client.closed:
        client = new_http_client(context.settings.webhooks, IN_FLIGHT)
        sender = _senders[loop] = _Sender(client)
    return sender


async def close_http_client() -> None:
    """Close this event loop's client (worker shutdown)."""
    sender = _senders.pop(id(asyncio.get_running_loop()), None)
    if sender is not None:
        await sender.client.close()


async def deliver(context: TaskContext, job: Job) -> dict[str, Any]:
    sender = _sender(context)
    return await deliver_due(
        context.sessions,
        job.args["tenant_id"],
        http=sender.client,
        limiter=sender.limiter,
        settings=context.settings,
    )
