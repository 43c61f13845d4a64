"""Queries over events, endpoints, deliveries and attempts (all start from `scoped`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, func, insert, or_, select, update
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


async def enabled_endpoint_filters(
    session: AsyncSession, tenant_id: str
) -> Sequence[Row[str, list[str], list[str] | None]]:
    """(id, event_types, location_ids) of the enabled endpoints: what fan-out matches on,
    read as plain rows (no ORM objects to build per event)."""
    stmt = (
        scoped(WebhookEndpoint, tenant_id)
        .where(WebhookEndpoint.enabled.is_(True))
        .with_only_columns(
            WebhookEndpoint.id, WebhookEndpoint.event_types, WebhookEndpoint.location_ids
        )
        .order_by(WebhookEndpoint.id)
    )
    return (await session.execute(stmt)).all()


async def endpoints_by_ids(
    session: AsyncSession, tenant_id: str, endpoint_ids: set[str]
) -> dict[str, WebhookEndpoint]:
    stmt = scoped(WebhookEndpoint, tenant_id).where(WebhookEndpoint.id.in_(sorted(endpoint_ids)))
    return {e.id: e for e in (await session.execute(stmt)).scalars()}


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


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery claimed for one attempt, with what its payload is made of."""

    id: str
    event_id: str
    endpoint_id: str
    trigger: str
    attempt_count: int
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]


async def claim_due_deliveries(
    session: AsyncSession, tenant_id: str, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedDelivery]:
    """Take up to `limit` due, pending deliveries, oldest first, by moving their
    `next_attempt_at` to `lease_until`: once committed, no other deliverer sees them due
    until the lease lapses (the holder died) or the holder records the attempt.

    One statement: SKIP LOCKED lets concurrent deliverers take disjoint batches, and the
    UPDATE ... FROM events returns each payload with its delivery. The due rows are a
    MATERIALIZED CTE: as an IN (subquery) the planner may run the LIMIT query more than
    once and claim more than `limit`."""
    due = (
        scoped(WebhookDelivery, tenant_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_only_columns(WebhookDelivery.id)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    stmt = (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.tenant_id == tenant_id,
            WebhookDelivery.id == due.c.id,
            Event.tenant_id == WebhookDelivery.tenant_id,
            Event.id == WebhookDelivery.event_id,
        )
        .values(next_attempt_at=lease_until)
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.event_id,
            WebhookDelivery.endpoint_id,
            WebhookDelivery.trigger,
            WebhookDelivery.attempt_count,
            Event.type,
            Event.occurred_at,
            Event.data,
        )
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(stmt)).all()
    return [ClaimedDelivery(*row) for row in rows]


_deliveries = cast(Table, WebhookDelivery.__table__)
_attempts = cast(Table, WebhookAttempt.__table__)

# Guarded by the lease: a deliverer that overran its lease (another took the delivery
# meanwhile) or whose delivery was cancelled meanwhile changes nothing.
_RECORD_OUTCOME = (
    update(_deliveries)
    .where(
        _deliveries.c.tenant_id == bindparam("b_tenant_id"),
        _deliveries.c.id == bindparam("b_id"),
        _deliveries.c.status == "pending",
        _deliveries.c.next_attempt_at == bindparam("b_lease_until"),
    )
    .values(
        attempt_count=bindparam("v_attempt_count"),
        status=bindparam("v_status"),
        next_attempt_at=bindparam("v_next_attempt_at"),
        finished_at=bindparam("v_finished_at"),
    )
)


async def lock_deliveries(session: AsyncSession, tenant_id: str, ids: list[str]) -> set[str]:
    """Lock these deliveries (in id order) for recording; returns those that still exist."""
    stmt = (
        scoped(WebhookDelivery, tenant_id)
        .where(WebhookDelivery.id.in_(ids))
        .with_only_columns(WebhookDelivery.id)
        .order_by(WebhookDelivery.id)
        .with_for_update()
    )
    return set((await session.execute(stmt)).scalars())


async def insert_attempts(session: AsyncSession, attempts: list[dict[str, Any]]) -> None:
    """Every attempt of a batch in one executemany INSERT (no ORM objects, no flush)."""
    if attempts:
        await session.execute(insert(_attempts), attempts)


async def record_outcomes(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
    """Each delivery's new state, one executemany UPDATE keyed by (tenant, id, lease)."""
    if outcomes:
        await session.execute(_RECORD_OUTCOME, outcomes)


async def next_attempt_due(session: AsyncSession, tenant_id: str) -> datetime | None:
    """When the tenant's earliest pending delivery is due (a retry, or a lease's end)."""
    stmt = (
        scoped(WebhookDelivery, tenant_id)
        .where(WebhookDelivery.status == "pending")
        .with_only_columns(func.min(WebhookDelivery.next_attempt_at))
    )
    due: datetime | None = (await session.execute(stmt)).scalar_one()
    return due


async def tenants_with_overdue_deliveries(session: AsyncSession, before: datetime) -> list[str]:
    """System look-up for the reconciler: tenants with pending deliveries due before
    `before`, i.e. that no deliverer took in time (its wake-up job failed for good)."""
    stmt = (
        select(WebhookDelivery.tenant_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < before)
        .distinct()
    )
    return list((await session.execute(stmt)).scalars())


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
