"""The connector protocol and the one loop that runs any connector into the mirror.

A connector knows a PMS's tables; it yields, per mirror entity, batches of rows already in
the bridge's row shape (api.practice.ingest_rows), PMS ids to tombstone, and the new
high-water mark of that entity. The runner validates and writes them with `sync_batch`
(so a connector's rows get exactly the bridge's validation and bookkeeping), and keeps
the high-water marks in the caller's transaction: a failed run moves nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from api.practice import ingest
from api.practice.connectors import repository

BATCH_ROWS = 5_000


@dataclass
class ConnectorBatch:
    entity: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    # PMS ids deleted there (or no longer mirrored, e.g. a procedure marked Deleted).
    deletes: list[str] = field(default_factory=list)
    # Every id the PMS still holds for the entity: mirrored rows outside it are tombstoned
    # (for PMS tables that delete rows without leaving a trace).
    present_ids: set[str] | None = None
    # Only mirrored ids starting with this are compared with `present_ids`: rows of the same
    # entity from elsewhere (Chairfill's own "chairfill:..." opt-outs and contacts, another
    # PMS table feeding the entity) are not the PMS table's to delete.
    present_scope: str = ""
    # A row field the PMS keeps no time for (an opt-out's `opted_out_at`): the run's time for
    # a row the mirror does not hold live yet, the mirrored value otherwise, so reading the
    # row again changes nothing.
    first_seen: str | None = None
    # The entity's high-water mark after this batch (None: unchanged).
    cursor: str | None = None
    # PMS rows read but not mirrored (a code we cannot store, a status we do not keep).
    skipped: int = 0
    # Contact values the PMS holds that are not valid (dropped, the row is kept).
    contacts_dropped: int = 0


class Connector(Protocol):
    kind: str
    # Mirror entities it feeds, in an order that satisfies every reference.
    entities: tuple[str, ...]

    def pull(self, entity: str, since: str | None) -> AsyncIterator[ConnectorBatch]:
        """Batches of `entity` changed at or after `since` (everything when None)."""
        ...


@dataclass
class EntityCounts:
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    contacts_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class RunResult:
    entities: dict[str, EntityCounts]
    cursors: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "entities": {name: c.as_dict() for name, c in self.entities.items()},
            "cursors": dict(self.cursors),
        }


Progress = Callable[[str, EntityCounts], None]


async def run_connector(
    session: AsyncSession,
    connector: Connector,
    *,
    tenant_id: str,
    location_id: str,
    cursors: dict[str, str],
    now: datetime,
    progress: Progress | None = None,
) -> RunResult:
    """Pull every entity since its cursor and write it with sync_batch; the mirror is
    complete up to `now` (taken before the PMS was read), which becomes the watermark."""
    cursors = dict(cursors)
    totals: dict[str, EntityCounts] = {}
    for entity in connector.entities:
        counts = totals.setdefault(entity, EntityCounts())
        async for batch in connector.pull(entity, cursors.get(entity)):
            deletes = list(batch.deletes)
            if batch.present_ids is not None:
                live = await repository.live_external_ids(
                    session, entity, tenant_id, location_id, scope=batch.present_scope
                )
                deletes += sorted(live - batch.present_ids)
            await _write(session, batch, deletes, counts, tenant_id, location_id, now)
            if batch.cursor is not None:
                cursors[entity] = batch.cursor
            if progress is not None:
                progress(entity, counts)
    return RunResult(entities=totals, cursors=cursors)


async def _write(
    session: AsyncSession,
    batch: ConnectorBatch,
    deletes: list[str],
    counts: EntityCounts,
    tenant_id: str,
    location_id: str,
    now: datetime,
) -> None:
    counts.skipped += batch.skipped
    counts.contacts_dropped += batch.contacts_dropped
    rows = batch.rows
    if batch.first_seen is not None and rows:
        column = batch.first_seen
        seen = await repository.live_values(
            session, batch.entity, tenant_id, location_id, column, [r["external_id"] for r in rows]
        )
        rows = [r | {column: seen.get(r["external_id"], now)} for r in rows]
    # sync_batch takes at most ingest.MAX_ROWS of each; big deletes go in their own calls.
    for start in range(0, max(len(rows), len(deletes), 1), ingest.MAX_ROWS):
        result = await ingest.sync_batch(
            session,
            tenant_id=tenant_id,
            location_id=location_id,
            entity=batch.entity,
            rows=rows[start : start + ingest.MAX_ROWS],
            deletes=deletes[start : start + ingest.MAX_ROWS],
            watermark=now,
            now=now,
        )
        counts.received += result.received
        counts.created += result.created
        counts.updated += result.updated
        counts.unchanged += result.unchanged
        counts.deleted += result.deleted
