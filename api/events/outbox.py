"""Events are rows written in the caller's transaction, together with one delivery per
matching endpoint and the job that wakes a deliverer for them. Nothing reaches Redis unless
that transaction commits, and a lost Redis job is found again by the reconciler.

Deliveries themselves are the queue (`status = 'pending'`, due at `next_attempt_at`); a
`webhooks.deliver` job only says "this tenant has due deliveries" and sends them in
batches (api/webhooks/dispatch.py). So a transaction that creates deliveries adds one such
job per batch's worth of them, not one job per delivery."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import Row, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from api.core import jobs
from api.core.clock import utcnow
from api.core.ids import new_id
from api.webhooks import catalog, repository
from api.webhooks.models import Event, WebhookDelivery, WebhookEndpoint

DELIVER_TASK = "webhooks.deliver"
# Deliveries one deliverer claims per round; also how many new deliveries share one
# wake-up job, so a large commit is picked up by several workers at once.
BATCH_SIZE = 50
_WAKEUPS = "webhook_wakeups"
_FILTERS = "webhook_endpoint_filters"
EndpointRow = Row[str, list[str], list[str] | None]


class EndpointFilters(Protocol):
    @property
    def event_types(self) -> list[str]: ...
    @property
    def location_ids(self) -> list[str] | None: ...


def endpoint_wants(endpoint: EndpointFilters, event: Event) -> bool:
    if not catalog.matches(endpoint.event_types, event.type):
        return False
    if endpoint.location_ids is None or event.location_id is None:
        return True
    return event.location_id in endpoint.location_ids


async def _wake_for_new_delivery(session: AsyncSession, tenant_id: str) -> None:
    """Count a delivery created in this transaction; the first of every BATCH_SIZE adds a
    wake-up job due now (pushed to Redis after the commit)."""
    transaction = session.sync_session.get_transaction()
    found: tuple[object, dict[str, int]] | None = session.info.get(_WAKEUPS)
    # Counts belong to one transaction; a new one (after a commit or rollback) starts over.
    if found is None or found[0] is not transaction:
        found = (transaction, {})
        session.info[_WAKEUPS] = found
    counts = found[1]
    created = counts.get(tenant_id, 0)
    counts[tenant_id] = created + 1
    if created % BATCH_SIZE == 0:
        await wake_deliverer(session, tenant_id)


async def wake_deliverer(session: AsyncSession, tenant_id: str, at: datetime | None = None) -> None:
    """Make sure a deliverer runs for this tenant: now (a job of its own), or at `at`.

    Later wake-ups (retries, leases that may lapse) are rounded up to the second and
    deduplicated on it, so the deliverers finishing around the same time leave one job."""
    args = {"tenant_id": tenant_id}
    if at is None:
        await jobs.enqueue(session, DELIVER_TASK, tenant_id=tenant_id, args=args)
        return
    second = math.ceil(at.timestamp())
    await jobs.enqueue_once(
        session,
        DELIVER_TASK,
        tenant_id=tenant_id,
        args=args,
        run_at=datetime.fromtimestamp(second, UTC),
        dedupe_key=f"{DELIVER_TASK}:{tenant_id}:{second}",
    )


async def _endpoint_filters(session: AsyncSession, tenant_id: str) -> Sequence[EndpointRow]:
    """The tenant's enabled endpoints' filters, read once per transaction: a transaction
    recording many events then costs no query (and no flush) per event.

    The copy is dropped whenever the transaction changes an endpoint (pending ORM changes
    here, a flush or an UPDATE/DELETE through the listeners below), so an endpoint
    created, edited or disabled earlier in the same transaction is honoured."""
    sync = session.sync_session
    transaction = sync.get_transaction()
    cached: tuple[object, str, Sequence[EndpointRow]] | None = sync.info.get(_FILTERS)
    pending = (*sync.new, *sync.dirty, *sync.deleted)
    if any(isinstance(o, WebhookEndpoint) for o in pending):
        cached = None
    if cached is not None and cached[0] is transaction and cached[1] == tenant_id:
        return cached[2]
    rows = await repository.enabled_endpoint_filters(session, tenant_id)
    sync.info[_FILTERS] = (sync.get_transaction(), tenant_id, rows)
    return rows


@event.listens_for(Session, "before_flush")
def _forget_filters_on_flush(session: Session, _context: Any, _instances: Any) -> None:
    if _FILTERS in session.info and any(
        isinstance(o, WebhookEndpoint) for o in (*session.new, *session.dirty, *session.deleted)
    ):
        del session.info[_FILTERS]


@event.listens_for(Session, "do_orm_execute")
def _forget_filters_on_update(state: ORMExecuteState) -> None:
    if _FILTERS in state.session.info and (state.is_update or state.is_delete):
        mapper = state.bind_mapper
        if mapper is None or mapper.class_ is WebhookEndpoint:
            del state.session.info[_FILTERS]


def new_delivery(event: Event, endpoint_id: str, trigger: str, now: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        tenant_id=event.tenant_id,
        id=new_id("webhook_delivery"),
        event_id=event.id,
        endpoint_id=endpoint_id,
        trigger=trigger,
        status="pending",
        attempt_count=0,
        next_attempt_at=now,
    )


async def schedule_delivery(
    session: AsyncSession, event: Event, endpoint_id: str, trigger: str
) -> WebhookDelivery:
    delivery = new_delivery(event, endpoint_id, trigger, utcnow())
    session.add(delivery)
    await _wake_for_new_delivery(session, event.tenant_id)
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
    filters: Sequence[EndpointRow] | None = None,
) -> tuple[Event, list[WebhookDelivery]]:
    """`record_event`, returning the deliveries too. `endpoint_ids` sends the event to
    those endpoints only, whatever their filters (`webhook.test`).

    Set-based: the tenant's endpoint filters are read once per transaction; the event
    and its deliveries are inserted at the next flush (one multi-row INSERT per table,
    shared with the other events of the transaction), with no per-delivery job."""
    now = utcnow()
    event = Event(
        tenant_id=tenant_id,
        id=new_id("event"),
        type=type,
        location_id=location_id,
        occurred_at=occurred_at or now,
        data=catalog.validate_data(type, data),
    )
    session.add(event)
    deliveries = []
    if filters is None:
        filters = await _endpoint_filters(session, tenant_id)
    for endpoint in filters:
        if endpoint_ids is not None:
            wanted = endpoint.id in endpoint_ids
        else:
            wanted = endpoint_wants(endpoint, event)
        if wanted:
            deliveries.append(new_delivery(event, endpoint.id, trigger, now))
    session.add_all(deliveries)
    for _ in deliveries:
        await _wake_for_new_delivery(session, tenant_id)
    return event, deliveries


async def record_events(
    session: AsyncSession,
    *,
    tenant_id: str,
    events: Sequence[tuple[str, dict[str, Any], str | None, datetime]],
) -> list[Event]:
    """`record_event` for many (type, data, location_id, occurred_at) at once. `fan_out`
    reads the endpoint filters once per transaction and leaves the rows to the next flush,
    so a send batch's hundreds of events cost one look-up and multi-row INSERTs."""
    recorded = []
    # Looked up once: this loop adds events and deliveries, never endpoints, and checking
    # the session's pending objects again per event grew with every event added.
    filters = await _endpoint_filters(session, tenant_id)
    for type_, data, location_id, occurred_at in events:
        event, _ = await fan_out(
            session,
            tenant_id=tenant_id,
            type=type_,
            data=data,
            location_id=location_id,
            occurred_at=occurred_at,
            filters=filters,
        )
        recorded.append(event)
    return recorded
