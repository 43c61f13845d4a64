"""Running a connector for one location, and where its configuration lives.

A run is one unit of work: the rows of every entity, the high-water marks and the run's
summary commit together, so a failed run leaves the mirror and the cursors as they were.
The DSN a schedule uses is stored encrypted with the app secret, the same way webhook
secrets are (api.webhooks.signing)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.core import jobs
from api.core.errors import NotFound
from api.practice.connectors import repository
from api.practice.connectors.base import Progress, RunResult, run_connector
from api.practice.connectors.models import ConnectorConfig
from api.practice.connectors.opendental import OpenDentalConnector, connect_kwargs
from api.tenancy import repository as tenancy_repository
from api.webhooks.signing import decrypt_secret, encrypt_secret

OPENDENTAL = "opendental"
SYNC_TASK = "sync.opendental_location"


async def save_opendental_config(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    dsn: str,
    secret_key: str,
    interval_minutes: int = 15,
) -> ConnectorConfig:
    """Store (or replace) the location's DSN for the scheduled sync; cursors are kept."""
    connect_kwargs(dsn)  # refuse a malformed DSN now, not at 3 a.m.
    if await tenancy_repository.get_location(session, tenant_id, location_id, None) is None:
        raise NotFound(f"There is no location {location_id}.")
    config = await repository.get_config(session, tenant_id, location_id, OPENDENTAL, lock=True)
    if config is None:
        config = ConnectorConfig(
            tenant_id=tenant_id, location_id=location_id, kind=OPENDENTAL, cursors={}
        )
        session.add(config)
    config.dsn_ciphertext = encrypt_secret(secret_key, dsn)
    config.enabled = True
    config.interval_minutes = interval_minutes
    await session.flush()
    return config


async def sync_opendental_location(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    now: datetime,
    secret_key: str,
    dsn: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Pull the location's Open Dental database into the mirror since the last run. `dsn`
    overrides the stored one (the CLI's one-off run); the cursors are kept either way."""
    location = await tenancy_repository.get_location(session, tenant_id, location_id, None)
    if location is None:
        raise NotFound(f"There is no location {location_id}.")
    config = await repository.get_config(session, tenant_id, location_id, OPENDENTAL, lock=True)
    if dsn is None:
        if config is None or not config.dsn_ciphertext:
            raise NotFound(f"Location {location_id} has no Open Dental connection configured.")
        dsn = decrypt_secret(secret_key, config.dsn_ciphertext)
    if config is None:
        config = ConnectorConfig(
            tenant_id=tenant_id, location_id=location_id, kind=OPENDENTAL, cursors={}
        )
        session.add(config)
    connector = OpenDentalConnector(
        dsn, timezone=location.timezone, region=location.country or "US"
    )
    async with connector:
        result = await run_connector(
            session,
            connector,
            tenant_id=tenant_id,
            location_id=location_id,
            cursors=dict(config.cursors or {}),
            now=now,
            progress=progress,
        )
    config.cursors = result.cursors
    config.last_run_at = now
    config.last_result = result.as_dict()
    await session.flush()
    return result


async def enqueue_due_syncs(session: AsyncSession, now: datetime) -> int:
    """The cron's fan-out (system unit of work): one job per enabled location that is due,
    at most one per location and slot (dedupe key), so overlapping crons add nothing."""
    enqueued = 0
    for config in await repository.enabled_configs(session, OPENDENTAL):
        if not config.dsn_ciphertext or not repository.is_due(config, now):
            continue
        slot = int(now.timestamp()) // (config.interval_minutes * 60)
        key = f"{SYNC_TASK}:{config.tenant_id}:{config.location_id}:{slot}"
        if await repository.has_job(session, key):
            continue
        args: dict[str, Any] = {"location_id": config.location_id}
        await jobs.enqueue(
            session, SYNC_TASK, tenant_id=config.tenant_id, args=args, dedupe_key=key
        )
        enqueued += 1
    return enqueued
