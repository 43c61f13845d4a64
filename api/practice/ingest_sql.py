"""The bulk statements of the sync path (repository layer), on the session's own asyncpg
connection: each chunk of rows is COPYed (binary) into a temporary staging table and
upserted from there with one `INSERT ... SELECT ... ON CONFLICT DO UPDATE`. (COPY costs
the client a fraction of what binding one array per column does.)

References arrive as external ids. They are resolved with one indexed look-up per
referenced table and chunk (`ids_by_external_id`), not with a sub-select per row: a
per-row plan is at the mercy of table statistics, and right after a first bulk load those
are stale (a 10,000-row batch took 65 s instead of 0.1 s when the planner picked the
wrong index for the per-row look-up). Ids never change once given and mirror rows are
only tombstoned, so a resolved id stays valid (most tables' foreign keys check it again;
a patient's guarantor and provider rely on this alone, alembic 0014)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.practice.ingest_specs import EntitySpec


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's transaction (tenant-bound, RLS applies)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


# The batch's savepoint: a batch found bad after some chunks were written undoes them.
_SAVEPOINT = "sync_batch"


async def savepoint(session: AsyncSession) -> None:
    await (await driver_connection(session)).execute(f"SAVEPOINT {_SAVEPOINT}")


async def release_savepoint(session: AsyncSession) -> None:
    await (await driver_connection(session)).execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


async def rollback_to_savepoint(session: AsyncSession) -> None:
    connection = await driver_connection(session)
    await connection.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    await connection.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def stage_table(spec: EntitySpec) -> str:
    return f"sync_stage_{spec.table_name}"


def stage_columns(spec: EntitySpec) -> list[str]:
    """The staging table's columns, in the order of a chunk's records."""
    return ["id", "external_id", *spec.columns, *(r.column for r in spec.references)]


@cache
def _create_stage_statement(spec: EntitySpec) -> str:
    typed = [f"{c} {spec.pg_type(c)}" for c in stage_columns(spec)]
    # Temporary (no WAL, no row-level security to trip the binary COPY) and dropped at
    # commit at the latest; the rows only pass through on their way into the table.
    return f"CREATE TEMPORARY TABLE {stage_table(spec)} ({', '.join(typed)}) ON COMMIT DROP"


async def create_stage(session: AsyncSession, spec: EntitySpec) -> None:
    await (await driver_connection(session)).execute(_create_stage_statement(spec))


async def drop_stage(session: AsyncSession, spec: EntitySpec) -> None:
    await (await driver_connection(session)).execute(f"DROP TABLE pg_temp.{stage_table(spec)}")


@cache
def staged_upsert_statement(spec: EntitySpec) -> str:
    """$1 tenant, $2 location, $3 now: the staged chunk into the table, one statement;
    -> (created, updated)."""
    data = [*spec.columns, *(r.column for r in spec.references)]
    table = spec.table_name
    return (
        f"WITH written AS (INSERT INTO {table} (tenant_id, location_id, id, external_id, "
        f"{', '.join(data)}, updated_at, deleted_at) "
        f"SELECT $1::varchar, $2::varchar, s.id, s.external_id, "
        f"{', '.join(f's.{c}' for c in data)}, $3::timestamptz, NULL "
        f"FROM pg_temp.{stage_table(spec)} s "
        f"ON CONFLICT (tenant_id, location_id, external_id) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in data)
        + ", updated_at = EXCLUDED.updated_at, deleted_at = NULL "
        # A row sent again unchanged is not rewritten (no new tuple, `updated_at` kept).
        f"WHERE ({', '.join(f'{table}.{c}' for c in data)}, {table}.deleted_at IS NULL) "
        f"IS DISTINCT FROM ({', '.join(f'EXCLUDED.{c}' for c in data)}, true) "
        "RETURNING (xmax = 0) AS created) "
        "SELECT count(*) FILTER (WHERE created) AS created, count(*) AS written FROM written"
    )


async def upsert_staged(
    session: AsyncSession,
    spec: EntitySpec,
    records: Sequence[tuple[Any, ...]],
    *,
    tenant_id: str,
    location_id: str,
    now: datetime,
) -> tuple[int, int]:
    """COPY (binary) one chunk's records (`stage_columns` order, references resolved to
    our ids) into the staging table and upsert them from there: (created, updated)."""
    connection = await driver_connection(session)
    stage = stage_table(spec)
    await connection.copy_records_to_table(
        stage, records=records, columns=stage_columns(spec), schema_name="pg_temp"
    )
    counts = await connection.fetchrow(staged_upsert_statement(spec), tenant_id, location_id, now)
    # Created in this transaction, so truncated in place (no new file, no WAL).
    await connection.execute(f"TRUNCATE pg_temp.{stage}")
    return counts["created"], counts["written"] - counts["created"]


async def set_references(
    session: AsyncSession,
    spec: EntitySpec,
    column: str,
    pairs: Sequence[tuple[str, str]],
    *,
    tenant_id: str,
    location_id: str,
) -> None:
    """Set `column` of the rows with these external ids: [(external id, our id)]."""
    connection = await driver_connection(session)
    await connection.execute(
        f"UPDATE {spec.table_name} t SET {column} = x.ref_id "
        "FROM unnest($3::varchar[], $4::varchar[]) AS x(external_id, ref_id) "
        "WHERE t.tenant_id = $1 AND t.location_id = $2 AND t.external_id = x.external_id",
        tenant_id,
        location_id,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )


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
