"""Queries of the connectors: their configs, and which mirrored rows are still live."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.infra_models import Job
from api.core.repository import scoped
from api.practice.connectors.models import ConnectorConfig
from api.practice.ingest_specs import ENTITIES


async def live_external_ids(
    session: AsyncSession, entity: str, tenant_id: str, location_id: str, *, scope: str = ""
) -> set[str]:
    """External ids of the entity's live rows at the location (those starting with `scope`)."""
    model: Any = ENTITIES[entity].model
    stmt = (
        scoped(model, tenant_id)
        .with_only_columns(model.external_id)
        .where(model.location_id == location_id, model.deleted_at.is_(None))
    )
    if scope:
        stmt = stmt.where(model.external_id.startswith(scope, autoescape=True))
    return set((await session.execute(stmt)).scalars())


LOOKUP_CHUNK = 5_000


async def live_values(
    session: AsyncSession,
    entity: str,
    tenant_id: str,
    location_id: str,
    column: str,
    external_ids: list[str],
) -> dict[str, Any]:
    """external id -> `column` of the entity's live rows with these external ids."""
    model: Any = ENTITIES[entity].model
    found: dict[str, Any] = {}
    for start in range(0, len(external_ids), LOOKUP_CHUNK):
        stmt = (
            scoped(model, tenant_id)
            .with_only_columns(model.external_id, getattr(model, column))
            .where(
                model.location_id == location_id,
                model.deleted_at.is_(None),
                model.external_id.in_(external_ids[start : start + LOOKUP_CHUNK]),
            )
        )
        found.update({r[0]: r[1] for r in await session.execute(stmt)})
    return found


async def get_config(
    session: AsyncSession, tenant_id: str, location_id: str, kind: str, *, lock: bool = False
) -> ConnectorConfig | None:
    stmt = scoped(ConnectorConfig, tenant_id).where(
        ConnectorConfig.location_id == location_id, ConnectorConfig.kind == kind
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def enabled_configs(session: AsyncSession, kind: str) -> list[ConnectorConfig]:
    """Every tenant's enabled configs (a system unit of work: the cron's fan-out)."""
    stmt = (
        select(ConnectorConfig)
        .where(ConnectorConfig.kind == kind, ConnectorConfig.enabled.is_(True))
        .order_by(ConnectorConfig.tenant_id, ConnectorConfig.location_id)
    )
    return list((await session.execute(stmt)).scalars())


def is_due(config: ConnectorConfig, now: datetime) -> bool:
    if config.last_run_at is None:
        return True
    return (now - config.last_run_at).total_seconds() >= config.interval_minutes * 60 - 30


async def has_job(session: AsyncSession, dedupe_key: str) -> bool:
    stmt = select(Job.id).where(Job.dedupe_key == dedupe_key)
    return (await session.execute(stmt)).first() is not None


async def location_tenant(session: AsyncSession, location_id: str) -> str | None:
    """The tenant of a location id (a system look-up, for admin commands)."""
    from api.tenancy.models import Location

    stmt = select(Location.tenant_id).where(Location.id == location_id)
    return (await session.execute(stmt)).scalar_one_or_none()
