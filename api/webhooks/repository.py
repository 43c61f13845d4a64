"""Queries over events, endpoints, deliveries and attempts (all start from `scoped`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from api.core.pagination import PageParams, decode_cursor
from api.core.repository import scoped
from api.webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


def newest_first(
    stmt: Select[Any], key: InstrumentedAttribute[str], params: PageParams
) -> Select[Any]:
    """Keyset page by a ULID id, newest first (ids sort by creation time)."""
    if params.cursor:
        (last,) = decode_cursor(params.cursor, 1)
        stmt = stmt.where(key < str(last))
    return stmt.order_by(key.desc()).limit(params.limit + 1)


def _endpoints_visible(stmt: Select[Any], visible: frozenset[str] | None) -> Select[Any]:
    # A token limited to some locations sees only endpoints limited to those locations.
    if visible is None:
        return stmt
    return stmt.where(
        WebhookEndpoint.location_ids.is_not(None),
        WebhookEndpoint.location_ids.contained_by(sorted(visible)),
    )


def _events_visible(stmt: Select[Any], visible: frozenset[str] | None) -> Select[Any]:
    if visible is None:
        return stmt
    return stmt.where(Event.location_id.in_(sorted(visible)))


# --- endpoints ---------------------------------------------------------------------------


async def get_endpoint(
    session: AsyncSession,
    tenant_id: str,
    endpoint_id: str,
    visible: frozenset[str] | None = None,
    *,
    for_update: bool = False,
) -> WebhookEndpoint | None:
    stmt = scoped(WebhookEndpoint, tenant_id).where(WebhookEndpoint.id == endpoint_id)
    stmt = _endpoints_visible(stmt, visible)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_endpoints(
    session: AsyncSession, tenant_id: str, visible: frozenset[str] | None, page: PageParams
) -> list[WebhookEndpoint]:
    stmt = _endpoints_visible(scoped(WebhookEndpoint, tenant_id), visible)
    stmt = newest_first(stmt, WebhookEndpoint.id, page)
    return list((await session.execute(stmt)).scalars())


async def enabled_endpoints(session: AsyncSession, tenant_id: str) -> list[WebhookEndpoint]:
    stmt = scoped(WebhookEndpoint, tenant_id).where(WebhookEndpoint.enabled.is_(True))
    return list((await session.execute(stmt.order_by(WebhookEndpoint.id))).scalars())


async def mark_recovered(session: AsyncSession, tenant_id: str, endpoint_id: str) -> None:
    # Only touches the row when it was failing, so busy endpoints are not a hot row.
    await session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.tenant_id == tenant_id,
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.failing_since.is_not(None),
        )
        .values(failing_since=None)
    )


async def mark_failing(
    session: AsyncSession, tenant_id: str, endpoint_id: str, since: datetime
) -> None:
    await session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.tenant_id == tenant_id,
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.failing_since.is_(None),
        )
        .values(failing_since=since)
    )


# --- events ------------------------------------------------------------------------------


async def get_event(
    session: AsyncSession, tenant_id: str, event_id: str, visible: frozenset[str] | None = None
) -> Event | None:
    stmt = _events_visible(scoped(Event, tenant_id).where(Event.id == event_id), visible)
    event: Event | None = (await session.execute(stmt)).scalar_one_or_none()
    return event


async def list_events(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    page: PageParams,
    event_type: str | None,
) -> list[Event]:
    stmt = _events_visible(scoped(Event, tenant_id), visible)
    if event_type:
        stmt = stmt.where(Event.type == event_type)
    stmt = newest_first(stmt, Event.id, page)
    return list((await session.execute(stmt)).scalars())


async def events_in_window(
    session: AsyncSession,
    tenant_id: str,
    since: datetime,
    until: datetime,
    location_ids: list[str] | None,
    limit: int,
) -> list[Event]:
    stmt = scoped(Event, tenant_id).where(Event.occurred_at >= since, Event.occurred_at < until)
    if location_ids is not None:
        stmt = stmt.where(or_(Event.location_id.is_(None), Event.location_id.in_(location_ids)))
    stmt = stmt.order_by(Event.occurred_at, Event.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


# --- deliveries and attempts -------------------------------------------------------------


async def delivery_for_attempt(
    session: AsyncSession, tenant_id: str, delivery_id: str
) -> tuple[WebhookDelivery, WebhookEndpoint, Event] | None:
    """The delivery (locked: one attempt at a time), its endpoint and its event."""
    stmt = (
        scoped(WebhookDelivery, tenant_id)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update(of=WebhookDelivery)
        .add_columns(WebhookEndpoint, Event)
        .join(
            WebhookEndpoint,
            (WebhookEndpoint.tenant_id == WebhookDelivery.tenant_id)
            & (WebhookEndpoint.id == WebhookDelivery.endpoint_id),
        )
        .join(
            Event,
            (Event.tenant_id == WebhookDelivery.tenant_id) & (Event.id == WebhookDelivery.event_id),
        )
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def enabled_endpoints_of_event(
    session: AsyncSession, tenant_id: str, event_id: str
) -> list[WebhookEndpoint]:
    """The enabled endpoints the event was ever delivered to."""
    went_to = (
        scoped(WebhookDelivery, tenant_id)
        .where(WebhookDelivery.event_id == event_id)
        .with_only_columns(WebhookDelivery.endpoint_id)
    )
    stmt = scoped(WebhookEndpoint, tenant_id).where(
        WebhookEndpoint.enabled.is_(True), WebhookEndpoint.id.in_(went_to)
    )
    return list((await session.execute(stmt.order_by(WebhookEndpoint.id))).scalars())


async def cancel_pending_deliveries(
    session: AsyncSession, tenant_id: str, endpoint_id: str, now: datetime
) -> int:
    # Deliveries another worker is sending right now are skipped, not waited for (that
    # could deadlock); their next attempt finds the endpoint disabled and cancels itself.
    pending = (
        scoped(WebhookDelivery, tenant_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .with_only_columns(WebhookDelivery.id)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id.in_(pending))
        .values(status="cancelled", finished_at=now, next_attempt_at=None)
        .execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def list_attempts(
    session: AsyncSession,
    tenant_id: str,
    page: PageParams,
    *,
    endpoint_id: str | None = None,
    event_id: str | None = None,
) -> list[WebhookAttempt]:
    stmt = scoped(WebhookAttempt, tenant_id)
    if endpoint_id is not None:
        stmt = stmt.where(WebhookAttempt.endpoint_id == endpoint_id)
    if event_id is not None:
        stmt = stmt.where(WebhookAttempt.event_id == event_id)
    stmt = newest_first(stmt, WebhookAttempt.id, page)
    return list((await session.execute(stmt)).scalars())
