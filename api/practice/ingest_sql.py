"""The bulk statements of the sync path (repository layer), on the session's own asyncpg
connection: the rows travel as one array per column and are upserted with a single
`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE` per chunk.

References arrive as external ids. They are resolved with one indexed look-up per
referenced table and batch (`ids_by_external_id`), not with a sub-select per row: a
per-row plan is at the mercy of table statistics, and right after a first bulk load those
are stale (a 10,000-row batch took 65 s instead of 0.1 s when the planner picked the
wrong index for the per-row look-up). Ids never change once given, so a resolved id stays
valid; the foreign keys check it again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.practice.ingest_specs import EntitySpec

# Joins a list of external ids into one text value (external ids never hold controls).
LIST_SEPARATOR = "\x1f"


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's transaction (tenant-bound, RLS applies)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


@cache
def upsert_statement(spec: EntitySpec) -> str:
    """$1 tenant, $2 location, $3 now, $4 ids, $5 external ids, then one array per column,
    then one per reference (our ids; a list reference as ids joined by LIST_SEPARATOR)."""
    arrays = ["$4::varchar[]", "$5::varchar[]"]
    names = ["id", "external_id"]
    for column in spec.columns:
        arrays.append(f"${len(arrays) + 4}::{spec.pg_type(column)}[]")
        names.append(column)
    for ref in spec.references:
        arrays.append(f"${len(arrays) + 4}::{'text' if ref.many else 'varchar'}[]")
        names.append(ref.column)
    data = [*spec.columns, *(r.column for r in spec.references)]
    values = [f"x.{c}" for c in spec.columns] + [
        f"COALESCE(string_to_array(x.{r.column}, chr(31))::varchar[], '{{}}')"
        if r.many
        else f"x.{r.column}"
        for r in spec.references
    ]
    table = spec.table_name
    return (
        f"INSERT INTO {table} (tenant_id, location_id, id, external_id, {', '.join(data)}, "
        f"updated_at, deleted_at) "
        f"SELECT $1::varchar, $2::varchar, x.id, x.external_id, {', '.join(values)}, "
        "$3::timestamptz, NULL "
        f"FROM unnest({', '.join(arrays)}) AS x({', '.join(names)}) "
        f"ON CONFLICT (tenant_id, location_id, external_id) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in data)
        + ", updated_at = EXCLUDED.updated_at, deleted_at = NULL "
        # A row sent again unchanged is not rewritten (no new tuple, `updated_at` kept).
        f"WHERE ({', '.join(f'{table}.{c}' for c in data)}, {table}.deleted_at IS NULL) "
        f"IS DISTINCT FROM ({', '.join(f'EXCLUDED.{c}' for c in data)}, true) "
        "RETURNING (xmax = 0) AS created"
    )


async def upsert_chunk(
    session: AsyncSession,
    spec: EntitySpec,
    *,
    tenant_id: str,
    location_id: str,
    now: datetime,
    params: Sequence[list[Any]],
) -> tuple[int, int]:
    """Upsert one chunk given column arrays (see `upsert_statement`): (created, updated)."""
    connection = await driver_connection(session)
    records = await connection.fetch(upsert_statement(spec), tenant_id, location_id, now, *params)
    created = sum(1 for r in records if r["created"])
    return created, len(records) - created


async def ids_by_external_id(
    session: AsyncSession, table: str, tenant_id: str, location_id: str, external_ids: list[str]
) -> dict[str, str]:
    """Our ids of the rows (tombstoned ones too) with these external ids."""
    external_ids = list(dict.fromkeys(external_ids))
    if not external_ids:
        return {}
    connection = await driver_connection(session)
    records = await connection.fetch(
        # A join with unnest, not `= ANY($3)`: a prepared statement's generic plan tests
        # `= ANY` by scanning the array for every row of the location (quadratic).
        f"SELECT r.external_id, r.id FROM unnest($3::varchar[]) AS e(external_id) "
        f"JOIN {table} r ON r.tenant_id = $1 AND r.location_id = $2 "
        "AND r.external_id = e.external_id",
        tenant_id,
        location_id,
        external_ids,
    )
    return {r["external_id"]: r["id"] for r in records}


async def tombstone(
    session: AsyncSession,
    spec: EntitySpec,
    *,
    tenant_id: str,
    location_id: str,
    now: datetime,
    external_ids: list[str],
) -> int:
    if not external_ids:
        return 0
    connection = await driver_connection(session)
    records = await connection.fetch(
        f"UPDATE {spec.table_name} t SET deleted_at = $3, updated_at = $3 "
        "FROM unnest($4::varchar[]) AS e(external_id) "
        "WHERE t.tenant_id = $1 AND t.location_id = $2 AND t.external_id = e.external_id "
        "AND t.deleted_at IS NULL RETURNING 1",
        tenant_id,
        location_id,
        now,
        external_ids,
    )
    return len(records)


async def lock_entity(session: AsyncSession, tenant_id: str, location_id: str, entity: str) -> None:
    """Serialise batches of one entity at one location (their reference resolution and
    counters assume no concurrent writer of the same rows)."""
    connection = await driver_connection(session)
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"ingest:{tenant_id}:{location_id}:{entity}",
    )
