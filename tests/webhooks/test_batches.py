"""The batch deliverer's own mechanisms: disjoint concurrent claims, leases that lapse,
the wake-up chain, the reconciler's sweep and the per-transaction endpoint filters."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.ids import new_id
from api.core.infra_models import Job
from api.events import record_event
from api.events.outbox import BATCH_SIZE
from api.webhooks import repository, signing
from api.webhooks.delivery import new_http_client
from api.webhooks.dispatch import OVERDUE_AFTER, deliver_due, lease_seconds
from api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.webhooks.conftest import create_endpoint, deliveries
from tests.webhooks.test_delivery import record
from workers.tasks import maintenance as maintenance_tasks


async def test_a_large_commit_wakes_one_deliverer_per_batch(
    client, practice, receiver, run_jobs, sessions
):
    await create_endpoint(client, practice.headers, receiver.url())
    total = 2 * BATCH_SIZE + 1
    await record(sessions, practice.tenant.id, n=total)
    wakeups = await run_jobs.pending()
    assert len(wakeups) == math.ceil(total / BATCH_SIZE)
    assert {j.args["tenant_id"] for j in wakeups} == {practice.tenant.id}
    assert {j.dedupe_key for j in wakeups} == {None}


async def test_concurrent_deliverers_take_disjoint_batches(
    client, practice, receiver, sessions, settings
):
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    total = 120
    await record(sessions, practice.tenant.id, n=total)
    async with new_http_client(settings.webhooks) as http:
        summaries = await asyncio.gather(
            *(
                deliver_due(
                    sessions, practice.tenant.id, http=http, settings=settings, batch_size=7
                )
                for _ in range(4)
            )
        )
    assert sum((Counter(s) for s in summaries), Counter()) == {"succeeded": total}
    received = receiver.on("/hook")
    assert len(received) == total  # each once: no claim overlapped another
    assert {r.webhook_id for r in received} == {d.id for d in await deliveries(sessions)}
    for request in received:
        request.verify(endpoint["secret"])
    async with unit_of_work(sessions) as session:
        attempts = list((await session.execute(select(WebhookAttempt))).scalars())
    assert len(attempts) == total and {a.attempt_number for a in attempts} == {1}


async def test_a_lapsed_lease_sends_again_with_the_same_webhook_id(
    client, practice, receiver, run_jobs, sessions, settings
):
    """A deliverer that claimed a batch and died: nothing is sent until the lease lapses,
    then the delivery goes out with the same webhook-id; the dead one's late record (if
    it ever came) changes nothing."""
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    await record(sessions, practice.tenant.id)
    (wakeup,) = await run_jobs.pending()
    now = utcnow()
    lease_until = now + timedelta(seconds=lease_seconds(settings.webhooks))
    async with unit_of_work(sessions, practice.tenant.id) as session:
        (claimed,) = await repository.claim_due_deliveries(
            session, practice.tenant.id, now, lease_until, BATCH_SIZE
        )

    # The wake-up runs: nothing is due, so it records one for the lease's end.
    assert await run_jobs.run_due() == 1
    assert receiver.requests == []
    (at_lease_end,) = await run_jobs.pending()
    assert at_lease_end.id != wakeup.id
    assert timedelta(0) <= at_lease_end.run_at - lease_until < timedelta(seconds=1)

    await run_jobs.run_due(advance=timedelta(seconds=lease_seconds(settings.webhooks) + 1))
    (request,) = receiver.on("/hook")
    assert request.webhook_id == claimed.id
    request.verify(endpoint["secret"])
    async with unit_of_work(sessions, practice.tenant.id) as session:
        await repository.record_outcomes(
            session,
            [
                {
                    "b_tenant_id": practice.tenant.id,
                    "b_id": claimed.id,
                    "b_lease_until": lease_until,
                    "v_attempt_count": 1,
                    "v_status": "pending",
                    "v_next_attempt_at": utcnow(),
                    "v_finished_at": None,
                }
            ],
        )
    (delivery,) = await deliveries(sessions)
    assert delivery.status == "succeeded" and delivery.attempt_count == 1
    assert await run_jobs.pending() == []


async def test_the_reconciler_wakes_deliveries_whose_wakeup_was_lost(
    client, practice, receiver, run_jobs, sessions, worker_context
):
    await create_endpoint(client, practice.headers, receiver.url())
    await record(sessions, practice.tenant.id)
    async with unit_of_work(sessions) as session:
        # The wake-up failed for good, and the delivery has been due for a while.
        await session.execute(update(Job).values(status="failed"))
        await session.execute(
            update(WebhookDelivery).values(next_attempt_at=utcnow() - OVERDUE_AFTER * 2)
        )
    assert await run_jobs.pending() == []

    await maintenance_tasks.reconcile_jobs({"chairfill": worker_context})
    (wakeup,) = await run_jobs.pending()
    assert wakeup.tenant_id == practice.tenant.id
    assert await run_jobs.run_due() == 1
    assert len(receiver.on("/hook")) == 1
    (delivery,) = await deliveries(sessions)
    assert delivery.status == "succeeded"
    # Nothing overdue any more: the next sweep wakes no one.
    await maintenance_tasks.reconcile_jobs({"chairfill": worker_context})
    assert await run_jobs.pending() == []


async def test_endpoint_changes_earlier_in_the_transaction_are_honoured(
    client, practice, receiver, sessions, settings
):
    """Fan-out reads the endpoint filters once per transaction; an endpoint added or
    disabled in the same transaction, flushed or not, still counts."""
    first = await create_endpoint(client, practice.headers, receiver.url("/first"))
    tenant_id = practice.tenant.id

    async def event(session, message: str):
        return await record_event(
            session,
            tenant_id=tenant_id,
            type="webhook.test",
            data={"endpoint_id": "-", "message": message},
        )

    async with unit_of_work(sessions, tenant_id) as session:
        before = await event(session, "before")
        now = utcnow()
        added = WebhookEndpoint(
            tenant_id=tenant_id,
            id=new_id("webhook_endpoint"),
            url=receiver.url("/added"),
            event_types=["*"],
            enabled=True,
            secret_ciphertext=signing.encrypt_secret(
                settings.secret_key, signing.new_endpoint_secret()
            ),
            created_at=now,
            updated_at=now,
        )
        session.add(added)  # not flushed
        with_added = await event(session, "with added")
        row = await session.get(WebhookEndpoint, (tenant_id, first["id"]))
        assert row is not None
        row.enabled = False  # not flushed either
        without_first = await event(session, "without first")
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == added.id)
            .values(event_types=["endpoint.*"])
        )
        after_update = await event(session, "after update")

    sent_to: dict[str, set[str]] = {}
    for delivery in await deliveries(sessions):
        sent_to.setdefault(delivery.event_id, set()).add(delivery.endpoint_id)
    assert sent_to == {
        before.id: {first["id"]},
        with_added.id: {first["id"], added.id},
        without_first.id: {added.id},
    }
    assert after_update.id not in sent_to
