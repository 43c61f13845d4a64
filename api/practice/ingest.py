"""Bulk sync of PMS rows into the mirror: the one path every source uses (the bridge's
HTTP pushes, the Open Dental connector, CSV import, the demo generator).

    result = await ingest.sync_batch(session, tenant_id=..., location_id=..., entity="patients",
                                     rows=[{...}], deletes=["4711"], watermark=None, now=utcnow())

A batch is all or nothing: every row is validated (per-row errors name
`rows[17].birthdate`), duplicates and unknown references are row errors too, and only a
clean batch is kept, upserted by external id a chunk at a time while the next chunk is
validated (ingest_pipeline.py), inside a savepoint that a bad row found late rolls back.
Deletes are tombstones. The caller's unit of work commits (or rolls everything back)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.cadences import exits as cadence_exits
from api.core import statistics
from api.core.errors import FieldError, NotFound, ValidationProblem
from api.practice import freshness, ingest_sql
from api.practice.ingest_pipeline import RowsPipeline
from api.practice.ingest_specs import ENTITIES, EntitySpec
from api.practice.problems import BatchTooLarge
from api.practice.schemas import SyncBatchResult
from api.tenancy import repository as tenancy_repository

log = structlog.get_logger(__name__)

MAX_ROWS = 10_000
MAX_REPORTED_ERRORS = 500
# A bridge's clock may run a little ahead; a watermark further ahead is a bug.
WATERMARK_FUTURE_SLACK = timedelta(minutes=5)


@dataclass
class _Errors:
    items: list[FieldError] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append(FieldError(field=path, message=message))

    def raise_if_any(self, entity: str) -> None:
        if not self.items:
            return
        shown = self.items[:MAX_REPORTED_ERRORS]
        more = len(self.items) - len(shown)
        raise ValidationProblem(
            f"The {entity} batch has {len(self.items)} error(s); nothing was written."
            + (f" The first {len(shown)} are listed." if more else ""),
            errors=shown,
        )


def entity_spec(entity: str) -> EntitySpec:
    spec = ENTITIES.get(entity)
    if spec is None:
        raise NotFound(f"Unknown entity {entity!r}; one of: {', '.join(ENTITIES)}.")
    return spec


def _check_deletes(deletes: Sequence[Any], errors: _Errors) -> list[str]:
    clean: list[str] = []
    for j, value in enumerate(deletes):
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > 64:
            errors.add(f"deletes[{j}]", "an external id: a string of 1 to 64 characters")
        else:
            clean.append(value.strip())
    return clean


async def sync_batch(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    entity: str,
    rows: Sequence[Mapping[str, Any]],
    deletes: Sequence[Any] = (),
    watermark: datetime | None = None,
    now: datetime,
    visible_locations: frozenset[str] | None = None,
    max_rows: int = MAX_ROWS,
) -> SyncBatchResult:
    """Validate, then upsert `rows` and tombstone `deletes` of one entity at one location;
    count the batch and advance the watermark. Raises ValidationProblem (nothing written),
    BatchTooLarge, NotFound (entity, or a location the caller may not see)."""
    spec = entity_spec(entity)
    if len(rows) > max_rows or len(deletes) > max_rows:
        raise BatchTooLarge(
            f"At most {max_rows} rows and {max_rows} deletes per batch; this one has "
            f"{len(rows)} rows and {len(deletes)} deletes. Split it into several batches."
        )
    location = await tenancy_repository.get_location(
        session, tenant_id, location_id, visible_locations
    )
    if location is None:
        raise NotFound(f"There is no location {location_id}.")
    errors = _Errors()
    if watermark is not None and watermark > now + WATERMARK_FUTURE_SLACK:
        errors.add("watermark", "in the future; send the PMS time the pushed data is complete to")
    clean_deletes = _check_deletes(deletes, errors)

    await ingest_sql.lock_entity(session, tenant_id, location_id, entity)

    def pipeline_for(*, presume_new: bool) -> RowsPipeline:
        return RowsPipeline(
            session, spec, tenant_id=tenant_id, location_id=location_id, now=now,
            region=location.country or "US", write=not errors.items, presume_new=presume_new,
        )  # fmt: skip

    pipeline = pipeline_for(presume_new=True)
    try:
        upserted = await pipeline.run(rows)
    except ingest_sql.ExternalIdTaken:
        if not pipeline.may_retry:  # a real conflict, or the undo itself failed
            raise
        # A row presumed new was in the mirror (the pipeline undid what it wrote): the
        # batch again, every chunk's rows looked up. Logged, because it costs a second
        # pass: a bridge that sends new rows first and known ones later pays it often.
        log.info("sync_presumption_missed", location_id=location_id, entity=entity, rows=len(rows))
        pipeline = pipeline_for(presume_new=False)
        upserted = await pipeline.run(rows)
    errors.items += upserted.problems(spec, clean_deletes)
    if errors.items:
        await pipeline.undo()
        errors.raise_if_any(entity)
    await pipeline.keep()
    created, updated = upserted.created, upserted.updated
    if pipeline.location_was_empty and created:
        # Statistics taken before this location (or its tenant) had rows put it at about
        # none, and its look-ups by external id may then be planned through an index of
        # the tenant's rows (tests/practice/test_ingest_plans.py): analyzed once this
        # commits, however small a share of the table the rows are. Nothing else in the
        # sync path depends on the statistics (the look-ups probe the unique key per id),
        # so later batches leave keeping them fresh to autovacuum.
        await statistics.refresh_after_commit(session, spec.table_name)
    received = len(rows)
    deleted = await ingest_sql.tombstone(
        session,
        spec,
        tenant_id=tenant_id,
        location_id=location_id,
        now=now,
        external_ids=clean_deletes,
    )
    if spec.name == "appointments" and rows:
        # A patient who just booked leaves their win-back cadences now, not at the next tick.
        booked = list(upserted.patient_ids.values())
        await cadence_exits.apply_exits(session, tenant_id, now, booked)
    counts = freshness.BatchCounts(
        received=received,
        created=created,
        updated=updated,
        unchanged=received - created - updated,
        deleted=deleted,
    )
    outcome = await freshness.record_batch(
        session,
        tenant_id=tenant_id,
        location_id=location_id,
        entity=entity,
        counts=counts,
        watermark=watermark,
        now=now,
    )
    return SyncBatchResult(
        entity=entity,
        location_id=location_id,
        received=counts.received,
        created=created,
        updated=updated,
        unchanged=counts.unchanged,
        deleted=deleted,
        deletes_ignored=len(clean_deletes) - deleted,
        watermark=outcome,
        data_as_of=outcome.data_as_of,
    )
