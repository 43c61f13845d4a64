"""Housekeeping: purging what has expired, per tenant, and the nightly fan-out that asks
for it. Runs in workers; knows nothing of arq (jobs go through api.core.jobs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.core import jobs
from api.core.clock import utcnow
from api.maintenance import repository
from api.tenancy import repository as tenancy_repository

PURGE_TASK = "maintenance.purge_expired"


@dataclass(frozen=True)
class PurgeCounts:
    oauth_tokens: int
    authorization_codes: int
    idempotency_records: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def purge_expired(
    session: AsyncSession, tenant_id: str, now: datetime | None = None
) -> PurgeCounts:
    """Delete this tenant's expired OAuth tokens, spent authorization codes and expired
    idempotency records. Deleting is idempotent, so running it twice is harmless."""
    now = now or utcnow()
    return PurgeCounts(
        oauth_tokens=await repository.delete_expired_tokens(session, tenant_id, now),
        authorization_codes=await repository.delete_spent_authorization_codes(
            session, tenant_id, now
        ),
        idempotency_records=await repository.delete_expired_idempotency_records(
            session, tenant_id, now
        ),
    )


def purge_dedupe_key(tenant_id: str, day: date) -> str:
    return f"{PURGE_TASK}:{tenant_id}:{day.isoformat()}"


async def enqueue_nightly_purges(session: AsyncSession, day: date | None = None) -> int:
    """Enqueue one purge job per tenant for `day` (UTC). A tenant that already has its job
    for that day is skipped, so the fan-out may run any number of times. System unit of
    work: it reads every tenant. Returns how many jobs were enqueued."""
    day = day or utcnow().date()
    tenants = await tenancy_repository.list_tenants(session)
    keys = {t.id: purge_dedupe_key(t.id, day) for t in tenants}
    existing = await repository.existing_dedupe_keys(session, list(keys.values()))
    enqueued = 0
    for tenant_id, key in keys.items():
        if key in existing:
            continue
        # A concurrent fan-out that recorded the same key first costs only this insert.
        enqueued += await jobs.enqueue_once(
            session, PURGE_TASK, tenant_id=tenant_id, dedupe_key=key
        )
    return enqueued
