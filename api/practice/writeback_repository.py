"""Queries of the write-back outbox. An item is *open* when it is pending, or claimed with
a lease that has run out (lazy expiry: no sweeper needed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.practice.models import Writeback


def _open(now: datetime):  # type: ignore[no-untyped-def]
    return or_(
        Writeback.status == "pending",
        and_(Writeback.status == "claimed", Writeback.lease_expires_at <= now),
    )


async def get(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    writeback_id: str,
    *,
    for_update: bool = False,
) -> Writeback | None:
    stmt = scoped(Writeback, tenant_id, visible).where(Writeback.id == writeback_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_for_location(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    status: str | None,
    now: datetime,
    page: PageParams,
) -> list[Writeback]:
    stmt = scoped(Writeback, tenant_id).where(Writeback.location_id == location_id)
    if status == "pending":
        stmt = stmt.where(_open(now))
    elif status == "claimed":
        stmt = stmt.where(Writeback.status == "claimed", Writeback.lease_expires_at > now)
    elif status is not None:
        stmt = stmt.where(Writeback.status == status)
    return list((await session.execute(keyset(stmt, [Writeback.id], page))).scalars())


async def claim(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    *,
    limit: int,
    lease_id: str,
    lease_expires_at: datetime,
    claimed_by: str,
    now: datetime,
) -> list[Writeback]:
    """Lease up to `limit` open items, oldest first. SKIP LOCKED: two bridges claiming at
    once get disjoint items, and neither waits for the other."""
    candidates = (
        scoped(Writeback, tenant_id)
        .with_only_columns(Writeback.id)
        .where(Writeback.location_id == location_id, _open(now))
        .order_by(Writeback.created_at, Writeback.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(Writeback)
        .where(Writeback.tenant_id == tenant_id, Writeback.id.in_(candidates))
        .values(
            status="claimed",
            lease_id=lease_id,
            lease_expires_at=lease_expires_at,
            claimed_by=claimed_by,
            attempts=Writeback.attempts + 1,
        )
        .returning(Writeback)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    claimed = list((await session.execute(stmt)).scalars())
    return sorted(claimed, key=lambda w: (w.created_at, w.id))
