"""Bulk sync of PMS rows into the mirror: the one path every source uses (the bridge's
HTTP pushes, the Open Dental connector, CSV import, the demo generator).

    result = await ingest.sync_batch(session, tenant_id=..., location_id=..., entity="patients",
                                     rows=[{...}], deletes=["4711"], watermark=None, now=utcnow())

A batch is all or nothing: every row is validated first (per-row errors name
`rows[17].birthdate`), duplicates and unknown references are row errors too, and only a
clean batch is written, as one upsert statement per chunk keyed by external id. Deletes
are tombstones. The caller's unit of work commits (or rolls everything back)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.cadences import exits as cadence_exits
from api.core.errors import FieldError, NotFound, ValidationProblem
from api.practice import freshness, ingest_sql
from api.practice.batch_ids import new_ids
from api.practice.ingest_specs import ENTITIES, EntitySpec
from api.practice.problems import BatchTooLarge
from api.practice.schemas import SyncBatchResult
from api.tenancy import repository as tenancy_repository

MAX_ROWS = 10_000
CHUNK_ROWS = 5_000
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


def _error_path(loc: tuple[int | str, ...]) -> str:
    index, *rest = loc
    path = f"rows[{index}]"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate_rows(
    spec: EntitySpec, rows: Sequence[Any], region: str, errors: _Errors
) -> list[BaseModel]:
    """All rows at once (one pydantic call); errors keep the row index."""
    adapter: TypeAdapter[list[Any]] = _adapter(spec)
    try:
        return adapter.validate_python(rows, context={"region": region})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = err["loc"]
            # A model-level rule (schedule shape) has no field: the row itself is named.
            errors.add(_error_path(loc), err["msg"].removeprefix("Value error, "))
        return []


_ADAPTERS: dict[str, TypeAdapter[list[Any]]] = {}


def _adapter(spec: EntitySpec) -> TypeAdapter[list[Any]]:
    if spec.name not in _ADAPTERS:
        _ADAPTERS[spec.name] = TypeAdapter(list[spec.row_model])  # type: ignore[name-defined]
    return _ADAPTERS[spec.name]


def _check_keys(rows: Sequence[BaseModel], deletes: Sequence[str], errors: _Errors) -> None:
    first_seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        external_id = row.external_id  # type: ignore[attr-defined]
        if external_id in first_seen:
            errors.add(
                f"rows[{i}].external_id",
                f"duplicate external id {external_id!r}: also rows[{first_seen[external_id]}]",
            )
        else:
            first_seen[external_id] = i
    for j, external_id in enumerate(deletes):
        if external_id in first_seen:
            errors.add(
                f"deletes[{j}]",
                f"{external_id!r} is both upserted (rows[{first_seen[external_id]}]) and deleted",
            )


def _check_deletes(deletes: Sequence[Any], errors: _Errors) -> list[str]:
    clean: list[str] = []
    for j, value in enumerate(deletes):
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > 64:
            errors.add(f"deletes[{j}]", "an external id: a string of 1 to 64 characters")
        else:
            clean.append(value.strip())
    return clean


Resolved = dict[str, dict[str, str]]  # reference field -> external id -> our id


async def resolve_references(
    session: AsyncSession,
    spec: EntitySpec,
    rows: Sequence[BaseModel],
    tenant_id: str,
    location_id: str,
    errors: _Errors,
) -> Resolved:
    """Our ids for every external id the rows reference (one look-up per reference);
    unknown ones are row errors. A self-reference (a guarantor) may also name a row of
    this batch that is new: it resolves in `upsert_rows`, once the batch has its ids."""
    in_batch = {r.external_id for r in rows}  # type: ignore[attr-defined]
    resolved: Resolved = {}
    for ref in spec.references:
        wanted: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            value = getattr(row, ref.field)
            for external_id in (value if ref.many else [value]) if value is not None else []:
                wanted.setdefault(external_id, []).append(i)
        known = await ingest_sql.ids_by_external_id(
            session, ref.table, tenant_id, location_id, list(wanted)
        )
        resolved[ref.field] = known
        for external_id, indexes in wanted.items():
            if external_id in known or (ref.is_self(spec.table_name) and external_id in in_batch):
                continue
            for i in indexes:
                errors.add(
                    f"rows[{i}].{ref.field}",
                    f"no {ref.table} row with external id {external_id!r} at this location; "
                    f"push {ref.table} first",
                )
    return resolved


def _column_arrays(
    spec: EntitySpec,
    rows: Sequence[BaseModel],
    ids: list[str],
    resolved: Resolved,
    batch_ids: dict[str, str],
) -> list[list[Any]]:
    arrays: list[list[Any]] = [ids, [r.external_id for r in rows]]  # type: ignore[attr-defined]
    for column in spec.columns:
        arrays.append([getattr(r, column) for r in rows])
    for ref in spec.references:
        known = resolved.get(ref.field, {})
        values = [getattr(r, ref.field) for r in rows]
        if ref.many:
            arrays.append(
                [
                    ingest_sql.LIST_SEPARATOR.join(known[v] for v in vs) if vs else None
                    for vs in values
                ]
            )
        elif ref.is_self(spec.table_name):
            # A row already in the table keeps its id; a new one gets this batch's id.
            arrays.append([known.get(v) or batch_ids.get(v) if v else None for v in values])
        else:
            arrays.append([known[v] if v else None for v in values])
    return arrays


async def upsert_rows(
    session: AsyncSession,
    spec: EntitySpec,
    rows: Sequence[BaseModel],
    *,
    tenant_id: str,
    location_id: str,
    now: datetime,
    resolved: Resolved,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[int, int]:
    """Write validated rows with resolved references: (created, updated).

    Ids are assigned for the whole batch up front, so a self-reference (a guarantor) to a
    new row of a later chunk resolves too; that foreign key is checked at commit."""
    ids = new_ids(spec.id_kind, len(rows))
    batch_ids = {r.external_id: i for r, i in zip(rows, ids, strict=True)}  # type: ignore[attr-defined]
    created = updated = 0
    for start in range(0, len(rows), chunk_rows):
        chunk = rows[start : start + chunk_rows]
        arrays = _column_arrays(spec, chunk, ids[start : start + chunk_rows], resolved, batch_ids)
        c, u = await ingest_sql.upsert_chunk(
            session, spec, tenant_id=tenant_id, location_id=location_id, now=now, params=arrays
        )
        created += c
        updated += u
    return created, updated


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
    valid = validate_rows(spec, rows, location.country or "US", errors)
    _check_keys(valid, clean_deletes, errors)
    errors.raise_if_any(entity)

    await ingest_sql.lock_entity(session, tenant_id, location_id, entity)
    resolved = await resolve_references(session, spec, valid, tenant_id, location_id, errors)
    errors.raise_if_any(entity)

    created, updated = await upsert_rows(
        session,
        spec,
        valid,
        tenant_id=tenant_id,
        location_id=location_id,
        now=now,
        resolved=resolved,
    )
    deleted = await ingest_sql.tombstone(
        session,
        spec,
        tenant_id=tenant_id,
        location_id=location_id,
        now=now,
        external_ids=clean_deletes,
    )
    if spec.name == "appointments" and valid:
        # A patient who just booked leaves their win-back cadences now, not at the next tick.
        booked = list(resolved.get("patient_external_id", {}).values())
        await cadence_exits.apply_exits(session, tenant_id, now, booked)
    counts = freshness.BatchCounts(
        received=len(valid),
        created=created,
        updated=updated,
        unchanged=len(valid) - created - updated,
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
