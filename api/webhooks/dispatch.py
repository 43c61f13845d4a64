"""Deliver a tenant's due webhooks in batches (the `webhooks.deliver` job).

Each round:
1. claims up to a batch of due deliveries in one short transaction: their
   `next_attempt_at` becomes a lease, so no other deliverer takes them meanwhile;
2. signs and POSTs them concurrently, holding no transaction (nor a pooled connection)
   while receivers answer;
3. records every attempt (one multi-row INSERT), each delivery's new state (one
   executemany UPDATE) and what the answers mean for their endpoints (recovered, failing,
   disabled) in a second short transaction.
It stops when nothing is due, then records a wake-up job for the tenant's next due
delivery (a retry, or the lease of a batch in flight elsewhere).

At least once, never lost: a deliverer killed between claim and record leaves leases that
lapse; the delivery comes due again and goes out with the same webhook-id, which receivers
dedupe by. Running twice at once is harmless, as SKIP LOCKED claims are disjoint."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.ids import new_id
from api.core.settings import Settings, WebhookSettings
from api.events.outbox import BATCH_SIZE, wake_deliverer
from api.webhooks import repository, signing
from api.webhooks.delivery import (
    MAX_ATTEMPTS,
    SendResult,
    disable_endpoint,
    endpoint_secrets,
    next_delay,
    payload_body,
    send,
)
from api.webhooks.models import WebhookEndpoint
from api.webhooks.repository import ClaimedDelivery

# Rounds one job makes before handing over to a fresh job, so one tenant's backlog does
# not hold a worker's slot while other tenants wait.
MAX_ROUNDS = 20
# A pending delivery due this long ago that no deliverer took means its wake-up job was
# lost for good (it failed, or was never pushed again): the reconciler wakes one.
OVERDUE_AFTER = timedelta(minutes=2)
# Beyond the two POST timeouts a claimed delivery may spend (waiting for a free slot,
# then its own), time to record the batch; a lease that lapses sends it again.
LEASE_MARGIN_SECONDS = 10.0


def lease_seconds(settings: WebhookSettings) -> float:
    return 2 * settings.total_timeout + LEASE_MARGIN_SECONDS


@dataclass(slots=True)
class Attempted:
    delivery: ClaimedDelivery
    attempted_at: datetime
    result: SendResult


async def _attempt(
    claimed: ClaimedDelivery,
    endpoint: WebhookEndpoint,
    http: aiohttp.ClientSession,
    limiter: asyncio.Semaphore,
    settings: Settings,
) -> Attempted:
    body = payload_body(claimed.event_type, claimed.occurred_at, claimed.data)
    async with limiter:
        # Signed as it leaves: every attempt carries a fresh webhook-timestamp.
        now = utcnow()
        secrets = endpoint_secrets(endpoint, settings.secret_key, now)
        headers = signing.signature_headers(claimed.id, now, body, secrets)
        result = await send(http, endpoint.url, headers, body, settings.webhooks)
    return Attempted(claimed, now, result)


async def deliver_due(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    *,
    http: aiohttp.ClientSession,
    settings: Settings,
    limiter: asyncio.Semaphore | None = None,
    batch_size: int = BATCH_SIZE,
    max_rounds: int = MAX_ROUNDS,
) -> dict[str, int]:
    """Send the tenant's due deliveries, a batch per round. `limiter` bounds the POSTs in
    flight across the worker process. Returns counts of outcomes for the job log."""
    limiter = limiter or asyncio.Semaphore(batch_size)
    lease = timedelta(seconds=lease_seconds(settings.webhooks))
    totals: Counter[str] = Counter()
    for _ in range(max_rounds):
        async with unit_of_work(sessions, tenant_id) as session:
            now = utcnow()
            lease_until = now + lease
            claimed = await repository.claim_due_deliveries(
                session, tenant_id, now, lease_until, batch_size
            )
            ids = {c.endpoint_id for c in claimed}
            endpoints = await repository.endpoints_by_ids(session, tenant_id, ids) if ids else {}
        if not claimed:
            break
        sendable = [
            _attempt(c, endpoints[c.endpoint_id], http, limiter, settings)
            for c in claimed
            if c.endpoint_id in endpoints and endpoints[c.endpoint_id].enabled
        ]
        attempted = await asyncio.gather(*sendable)
        async with unit_of_work(sessions, tenant_id) as session:
            recorded = await _record(
                session, tenant_id, claimed, attempted, endpoints, lease_until, settings
            )
        totals.update(recorded)
    else:
        # Rounds ran out with work left: a fresh job carries on (behind other tenants').
        async with unit_of_work(sessions, tenant_id) as session:
            await wake_deliverer(session, tenant_id)
        return dict(totals)
    async with unit_of_work(sessions, tenant_id) as session:
        due = await repository.next_attempt_due(session, tenant_id)
        if due is not None:
            # Due already means claimed by a deliverer whose claim has not committed yet
            # (SKIP LOCKED passed it); a look a second later costs one small job.
            await wake_deliverer(session, tenant_id, max(due, utcnow() + timedelta(seconds=1)))
    return dict(totals)


async def wake_overdue_deliverers(session: AsyncSession, now: datetime) -> int:
    """Reconciler (system unit of work): a wake-up job for every tenant with deliveries
    overdue by OVERDUE_AFTER. Deliveries are the truth; this keeps them from waiting on a
    wake-up job that will never run. A busy tenant may get a spare job (harmless: claims
    are disjoint). Returns how many tenants were woken."""
    tenants = await repository.tenants_with_overdue_deliveries(session, now - OVERDUE_AFTER)
    for tenant_id in tenants:
        await wake_deliverer(session, tenant_id)
    return len(tenants)


def _endpoint_verdicts(
    attempted: Sequence[Attempted],
    endpoints: dict[str, WebhookEndpoint],
    now: datetime,
    limit: timedelta,
) -> dict[str, str]:
    """What this batch's answers say about each endpoint it went to.

    gone: a 410 (disable). healthy: anything succeeded (no longer failing). expired:
    nothing succeeded and it has failed for `limit` (disable). failing: nothing succeeded."""
    results: dict[str, list[SendResult]] = defaultdict(list)
    for a in attempted:
        results[a.delivery.endpoint_id].append(a.result)
    verdicts = {}
    for endpoint_id, answers in results.items():
        failing_since = endpoints[endpoint_id].failing_since
        if any(r.status_code == 410 for r in answers):
            verdicts[endpoint_id] = "gone"
        elif any(r.ok for r in answers):
            verdicts[endpoint_id] = "healthy"
        elif failing_since is not None and now - failing_since >= limit:
            verdicts[endpoint_id] = "expired"
        else:
            verdicts[endpoint_id] = "failing"
    return verdicts


async def _record(
    session: AsyncSession,
    tenant_id: str,
    claimed: list[ClaimedDelivery],
    attempted: Sequence[Attempted],
    endpoints: dict[str, WebhookEndpoint],
    lease_until: datetime,
    settings: Settings,
) -> Counter[str]:
    now = utcnow()
    limit = timedelta(days=settings.webhooks.disable_after_days)
    verdicts = _endpoint_verdicts(attempted, endpoints, now, limit)
    by_id = {a.delivery.id: a for a in attempted}
    # Locks the batch's rows and drops deliveries deleted meanwhile (their endpoint was
    # deleted): an attempt row must not point at a delivery that is gone.
    existing = await repository.lock_deliveries(session, tenant_id, [c.id for c in claimed])
    counts: Counter[str] = Counter()
    attempts: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    for delivery in claimed:
        if delivery.id not in existing:
            continue
        sent = by_id.get(delivery.id)
        state: dict[str, Any] = {
            "b_tenant_id": tenant_id,
            "b_id": delivery.id,
            "b_lease_until": lease_until,
            "v_attempt_count": delivery.attempt_count,
            "v_status": "pending",
            "v_next_attempt_at": None,
            "v_finished_at": now,
        }
        if sent is None:
            # Its endpoint was disabled after the delivery came due.
            state["v_status"] = "cancelled"
        else:
            result, number = sent.result, delivery.attempt_count + 1
            attempts.append(_attempt_row(tenant_id, delivery, sent, number))
            state["v_attempt_count"] = number
            state["v_status"] = _status_after(result, number, verdicts[delivery.endpoint_id])
            if state["v_status"] == "pending":
                delay = next_delay(number, result.retry_after)
                state["v_next_attempt_at"] = now + timedelta(seconds=delay)
                state["v_finished_at"] = None
        counts[state["v_status"]] += 1
        outcomes.append(state)
    await repository.insert_attempts(session, attempts)
    await repository.record_outcomes(session, outcomes)
    for endpoint_id, verdict in verdicts.items():
        await _apply_verdict(session, tenant_id, endpoints[endpoint_id], verdict, now, settings)
    return counts


def _status_after(result: SendResult, attempt_number: int, verdict: str) -> str:
    if result.ok:
        return "succeeded"
    if result.status_code == 410 or verdict == "expired" or attempt_number >= MAX_ATTEMPTS:
        return "failed"
    return "pending"


def _attempt_row(
    tenant_id: str, delivery: ClaimedDelivery, sent: Attempted, number: int
) -> dict[str, Any]:
    result = sent.result
    return {
        "tenant_id": tenant_id,
        "id": new_id("webhook_attempt"),
        "delivery_id": delivery.id,
        "event_id": delivery.event_id,
        "endpoint_id": delivery.endpoint_id,
        "trigger": delivery.trigger,
        "attempt_number": number,
        "attempted_at": sent.attempted_at,
        "latency_ms": result.latency_ms,
        "status_code": result.status_code,
        "response_body": result.response_body,
        "error": result.error,
        "succeeded": result.ok,
    }


async def _apply_verdict(
    session: AsyncSession,
    tenant_id: str,
    endpoint: WebhookEndpoint,
    verdict: str,
    now: datetime,
    settings: Settings,
) -> None:
    # The endpoint row was read with the claim; a healthy one needs no write, so a busy
    # endpoint is not a hot row (a failure committed meanwhile is cleared next success).
    if verdict == "healthy" and endpoint.failing_since is not None:
        await repository.mark_recovered(session, tenant_id, endpoint.id)
    elif verdict == "failing" and endpoint.failing_since is None:
        await repository.mark_failing(session, tenant_id, endpoint.id, now)
    elif verdict == "gone":
        await disable_endpoint(
            session, tenant_id, endpoint.id, "gone", "The receiver answered 410 Gone."
        )
    elif verdict == "expired":
        days = settings.webhooks.disable_after_days
        since = endpoint.failing_since.isoformat() if endpoint.failing_since else now.isoformat()
        await disable_endpoint(
            session,
            tenant_id,
            endpoint.id,
            "failing",
            f"Every attempt failed for {days} days (since {since}).",
        )
