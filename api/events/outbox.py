"""Events are rows written in the caller's transaction, together with one delivery per
matching endpoint and the job that sends it. Nothing reaches Redis unless that
transaction commits, and a lost Redis job is found again by the reconciler."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.core import jobs
from api.core.clock import utcnow
from api.core.ids import new_id
from api.webhooks import catalog, repository
from api.webhooks.models import Event, WebhookDelivery, WebhookEndpoint

DELIVER_TASK = "webhooks.deliver"


def endpoint_wants(endpoint: WebhookEndpoint, event: Event) -> bool:
    if not catalog.matches(endpoint.event_types, event.type):
        return False
    if endpoint.location_ids is None or event.location_id is None:
        return True
    return event.location_id in endpoint.location_ids


async def enqueue_attempt(
    session: AsyncSession, delivery: WebhookDelivery, run_at: datetime | None = None
) -> None:
    """The job for this delivery's next attempt (at most one per attempt number)."""
    delivery.next_attempt_at = run_at or utcnow()
    await jobs.enqueue(
        session,
        DELIVER_TASK,
        tenant_id=delivery.tenant_id,
        args={"tenant_id": delivery.tenant_id, "delivery_id": delivery.id},
        run_at=delivery.next_attempt_at,
        dedupe_key=f"{delivery.id}:{delivery.attempt_count + 1}",
    )


async def schedule_delivery(
    session: AsyncSession, event: Event, endpoint_id: str, trigger: str
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        tenant_id=event.tenant_id,
        id=new_id("webhook_delivery"),
        event_id=event.id,
        endpoint_id=endpoint_id,
        trigger=trigger,
        status="pending",
        attempt_count=0,
    )
    session.add(delivery)
    await enqueue_attempt(session, delivery)
    return delivery


async def record_event(
    session: AsyncSession,
    *,
    tenant_id: str,
    type: str,
    data: dict[str, Any] | BaseModel,
    location_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Record an event and schedule its deliveries, all in the caller's transaction.

    `data` is validated against the catalog model of `type` (api/webhooks/catalog.py)."""
    event, _ = await fan_out(
        session,
        tenant_id=tenant_id,
        type=type,
        data=data,
        location_id=location_id,
        occurred_at=occurred_at,
    )
    return event


async def fan_out(
    session: AsyncSession,
    *,
    tenant_id: str,
    type: str,
    data: dict[str, Any] | BaseModel,
    location_id: str | None = None,
    occurred_at: datetime | None = None,
    endpoint_ids: Sequence[str] | None = None,
    trigger: str = "automatic",
) -> tuple[Event, list[WebhookDelivery]]:
    """`record_event`, returning the deliveries too. `endpoint_ids` sends the event to
    those endpoints only, whatever their filters (`webhook.test`)."""
    event = Event(
        tenant_id=tenant_id,
        id=new_id("event"),
        type=type,
        location_id=location_id,
        occurred_at=occurred_at or utcnow(),
        data=catalog.validate_data(type, data),
    )
    session.add(event)
    await session.flush()
    deliveries = []
    for endpoint in await repository.enabled_endpoints(session, tenant_id):
        if endpoint_ids is not None:
            wanted = endpoint.id in endpoint_ids
        else:
            wanted = endpoint_wants(endpoint, event)
        if wanted:
            deliveries.append(await schedule_delivery(session, event, endpoint.id, trigger))
    return event, deliveries


async def record_events(
    session: AsyncSession,
    *,
    tenant_id: str,
    events: Sequence[tuple[str, dict[str, Any], str | None, datetime]],
) -> list[Event]:
    """`record_event` for many (type, data, location_id, occurred_at) at once: one flush
    and one endpoint look-up for the lot (a send batch records hundreds)."""
    rows = [
        Event(
            tenant_id=tenant_id,
            id=new_id("event"),
            type=type_,
            location_id=location_id,
            occurred_at=occurred_at,
            data=catalog.validate_data(type_, data),
        )
        for type_, data, location_id, occurred_at in events
    ]
    if not rows:
        return rows
    session.add_all(rows)
    await session.flush()
    endpoints = await repository.enabled_endpoints(session, tenant_id)
    for event in rows:
        for endpoint in endpoints:
            if endpoint_wants(endpoint, event):
                await schedule_delivery(session, event, endpoint.id, "automatic")
    return rows
