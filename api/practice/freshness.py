"""Sync watermarks: how fresh each location's mirror is, and the check every consumer of
PMS data (segments, sends, slots) makes before trusting it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.core.errors import NotFound
from api.practice import repository
from api.practice.problems import StaleData
from api.practice.schemas import EntitySyncOut, SyncStatusOut, WatermarkOutcome
from api.tenancy import repository as tenancy_repository


@dataclass(frozen=True)
class BatchCounts:
    received: int
    created: int
    updated: int
    unchanged: int
    deleted: int


async def require_location(
    session: AsyncSession, tenant_id: str, location_id: str, visible: frozenset[str] | None
) -> None:
    """404 for another tenant's location or one the caller may not see."""
    if await tenancy_repository.get_location(session, tenant_id, location_id, visible) is None:
        raise NotFound(f"There is no location {location_id}.")


async def data_as_of(session: AsyncSession, tenant_id: str, location_id: str) -> datetime | None:
    state = await repository.get_sync_state(session, tenant_id, location_id)
    return state.data_as_of if state else None


async def oldest_data_as_of(
    session: AsyncSession, tenant_id: str, location_ids: Sequence[str]
) -> datetime | None:
    """The oldest watermark of the locations (one query); None when one never synced."""
    marks = await repository.sync_states(session, tenant_id, location_ids)
    if not location_ids or any(marks.get(loc) is None for loc in location_ids):
        return None
    return min(m for m in marks.values() if m is not None)


async def require_fresh(
    session: AsyncSession, tenant_id: str, location_id: str, now: datetime
) -> datetime:
    """The location's `data_as_of`, or StaleData (409, type .../stale-data) when it was
    never synced or is older than the tenant's `stale_data_threshold_minutes`."""
    tenant = await tenancy_repository.get_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound(f"There is no tenant {tenant_id}.")
    as_of = await data_as_of(session, tenant_id, location_id)
    return check_fresh(location_id, as_of, tenant.stale_data_threshold_minutes, now)


def check_fresh(
    location_id: str, as_of: datetime | None, threshold_minutes: int, now: datetime
) -> datetime:
    """`require_fresh` for a caller that already read the watermark and the threshold
    (e.g. in one query with the rest of what it needs)."""
    if as_of is None or now - as_of > timedelta(minutes=threshold_minutes):
        raise StaleData(location_id, as_of, threshold_minutes)
    return as_of


async def record_batch(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    entity: str,
    counts: BatchCounts,
    watermark: datetime | None,
    now: datetime,
) -> WatermarkOutcome:
    """Count the batch and advance the watermark (never backwards)."""
    state = await repository.lock_sync_state(session, tenant_id, location_id)
    watermark = watermark.astimezone(UTC) if watermark is not None else None
    entities: dict[str, Any] = dict(state.entities or {})
    totals = dict(entities.get(entity) or {})
    totals["batches"] = totals.get("batches", 0) + 1
    for name in ("received", "created", "updated", "unchanged", "deleted"):
        totals[name] = totals.get(name, 0) + getattr(counts, name)
    totals["last_sync_at"] = now.isoformat()
    entities[entity] = totals
    state.entities = entities
    state.last_sync_at = now
    if watermark is None:
        outcome = WatermarkOutcome(
            received=None, applied=False, detail="No watermark sent; data_as_of unchanged."
        )
    elif state.data_as_of is not None and watermark <= state.data_as_of:
        outcome = WatermarkOutcome(
            received=watermark,
            applied=False,
            detail="Ignored: not newer than the current data_as_of (watermarks never move "
            "backwards).",
        )
    else:
        state.data_as_of = watermark
        outcome = WatermarkOutcome(received=watermark, applied=True, detail="data_as_of advanced.")
    await session.flush()
    outcome.data_as_of = state.data_as_of
    return outcome


async def sync_status(
    session: AsyncSession, principal: Principal, location_id: str, now: datetime
) -> SyncStatusOut:
    await require_location(session, principal.tenant_id, location_id, principal.location_ids)
    tenant = await tenancy_repository.get_tenant(session, principal.tenant_id)
    threshold = tenant.stale_data_threshold_minutes if tenant else 24 * 60
    state = await repository.get_sync_state(session, principal.tenant_id, location_id)
    as_of = state.data_as_of if state else None
    return SyncStatusOut(
        location_id=location_id,
        data_as_of=as_of,
        last_sync_at=state.last_sync_at if state else None,
        stale_data_threshold_minutes=threshold,
        is_stale=as_of is None or now - as_of > timedelta(minutes=threshold),
        entities={
            name: EntitySyncOut.model_validate(values)
            for name, values in sorted(((state.entities if state else None) or {}).items())
        },
    )
