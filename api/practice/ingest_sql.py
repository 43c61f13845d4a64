"""The bulk statements of the sync path (repository layer), on the session's own asyncpg
connection: each chunk of rows is COPYed (binary) into a temporary staging table and
written from there with one statement. (COPY costs the client a fraction of what binding
one array per column does.)

Rows new to the mirror and rows already in it take different paths. Which is which comes
from the chunk's look-up (`lookup_ids`, which also resolves the references): new rows go
in with a plain `INSERT ... SELECT`, known ones through `ON CONFLICT DO UPDATE` with a
`WHERE` that skips unchanged rows. A plain insert costs PostgreSQL about a third less
than a speculative one (bench/RESULTS.md, 2026-12-07), and a first load is all new rows.
Nothing else writes a bridge's external ids while the batch holds its entity lock
(`lock_entity`): online bookings create rows with `online:` ids the PMS never sends, and
the write-back acknowledgement that renames them to the PMS's id takes the same lock
(api/practice/links.py). So a row found new stays new until the insert; were that ever
broken, the unique constraint refuses the insert and the whole batch rolls back (the
bridge's retry then finds the row). The pipeline may also skip the look-up of a chunk's
own rows and presume them new (a first load's later batches, ingest_pipeline.py): the
unique key is then the check, and a refused insert (`ExternalIdTaken`) has the batch
written again with every chunk looked up.

References arrive as external ids. They are resolved with one look-up statement per
chunk (all referenced tables at once), each external id one probe of the table's unique
key (`_lookup_statement`), not with a sub-select per row of the write: that per-row plan
was at the mercy of table statistics (a 10,000-row batch took 65 s instead of 0.1 s when
the planner picked the wrong index). The probes need the planner to prefer the unique
key. It does while no other index starts with (tenant_id, location_id) (patients: alembic
0016; appointments keep the (tenant, location, start) index the slot search reads, and
rely on statistics) and the statistics know the tenant and location: the batch that
brings a location's first rows has the table analyzed when it commits
(api/core/statistics.py), and a first load into an empty location asks for none of its
own rows (ingest_pipeline.py). Ids never change once given and mirror rows are only
tombstoned, so a resolved id stays valid (most tables' foreign keys check it again; a patient's
guarantor and provider rely on this alone, alembic 0014)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from api.practice.ingest_specs import EntitySpec


class ExternalIdTaken(Exception):
    """A row written as new has an external id the location already holds (the
    statement failed: the transaction needs a rollback to the batch's savepoint)."""


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's transaction (tenant-bound, RLS applies)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


# The batch's savepoint: a batch found bad after some chunks were written undoes them.
_SAVEPOINT = "sync_batch"


async def rollback_to_savepoint(session: AsyncSession) -> None:
    connection = await driver_connection(session)
    await connection.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    await connection.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def stage_table(spec: EntitySpec) -> str:
    return f"sync_stage_{spec.table_name}"


def stage_columns(spec: EntitySpec) -> list[str]:
    """The staging table's columns, in the order of a chunk's records: `chunk` names the
    chunk (the batch index of its first row), `is_new` says whether the row is new to the
    mirror (then `id` is the one given to it) or not (then `id` is the one it has)."""
    return [
        "chunk", "is_new", "id", "external_id", *spec.columns,
        *(r.column for r in spec.references),
    ]  # fmt: skip


_STAGE_TYPES = {"chunk": "integer", "is_new": "boolean"}


def _stage_type(spec: EntitySpec, column: str) -> str:
    return _STAGE_TYPES.get(column) or spec.pg_type(column)


@cache
def _create_stage_statement(spec: EntitySpec) -> str:
    typed = [f"{c} {_stage_type(spec, c)}" for c in stage_columns(spec)]
    # Temporary (no WAL, no row-level security to trip the binary COPY) and dropped at
    # commit at the latest; the rows only pass through on their way into the table.
    return f"CREATE TEMPORARY TABLE {stage_table(spec)} ({', '.join(typed)}) ON COMMIT DROP"


async def savepoint_and_stage(session: AsyncSession, spec: EntitySpec) -> None:
    """The batch's savepoint, then its staging table inside it (so undoing the batch drops
    the table too): one round trip (the simple query protocol takes both statements)."""
    await (await driver_connection(session)).execute(
        f"SAVEPOINT {_SAVEPOINT}; {_create_stage_statement(spec)}"
    )


async def drop_stage_and_release(session: AsyncSession, spec: EntitySpec) -> None:
    """The batch kept: its staging table dropped and its savepoint released, one round trip."""
    await (await driver_connection(session)).execute(
        f"DROP TABLE pg_temp.{stage_table(spec)}; RELEASE SAVEPOINT {_SAVEPOINT}"
    )


@cache
def staged_write_statement(spec: EntitySpec) -> str:
    """$1 tenant, $2 location, $3 now, $4 chunk: the staged chunk into the table, one
    statement; -> (created, updated)."""
    data = [*spec.columns, *(r.column for r in spec.references)]
    table = spec.table_name
    insert = (
        f"INSERT INTO {table} (tenant_id, location_id, id, external_id, "
        f"{', '.join(data)}, updated_at, deleted_at) "
        f"SELECT $1::varchar, $2::varchar, s.id, s.external_id, "
        f"{', '.join(f's.{c}' for c in data)}, $3::timestamptz, NULL "
        f"FROM pg_temp.{stage_table(spec)} s WHERE s.chunk = $4::integer "
    )
    return (
        f"WITH created AS ({insert} AND s.is_new RETURNING 1), "
        f"updated AS ({insert} AND NOT s.is_new "
        f"ON CONFLICT (tenant_id, location_id, external_id) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in data)
        + ", updated_at = EXCLUDED.updated_at, deleted_at = NULL "
        # A row sent again unchanged is not rewritten (no new tuple, `updated_at` kept).
        f"WHERE ({', '.join(f'{table}.{c}' for c in data)}, {table}.deleted_at IS NULL) "
        f"IS DISTINCT FROM ({', '.join(f'EXCLUDED.{c}' for c in data)}, true) "
        "RETURNING 1) "
        "SELECT (SELECT count(*) FROM created) AS created, "
        "(SELECT count(*) FROM updated) AS updated"
    )


async def stage_records(
    session: AsyncSession, spec: EntitySpec, records: Sequence[tuple[Any, ...]]
) -> None:
    """COPY (binary) one chunk's records (`stage_columns` order, references resolved to
    our ids) into the staging table, beside the chunks before it."""
    connection = await driver_connection(session)
    await connection.copy_records_to_table(
        stage_table(spec), records=records, columns=stage_columns(spec), schema_name="pg_temp"
    )


async def write_staged(
    session: AsyncSession,
    spec: EntitySpec,
    *,
    tenant_id: str,
    location_id: str,
    now: datetime,
    chunk: int,
) -> tuple[int, int]:
    """Write the staged chunk `chunk` into the table: (created, updated). Its rows stay in
    the staging table, which goes with the batch: a scan past the earlier chunks' rows
    (~1 ms a batch) costs less than a TRUNCATE's round trip after each chunk (~7 ms)."""
    connection = await driver_connection(session)
    try:
        counts = await connection.fetchrow(
            staged_write_statement(spec), tenant_id, location_id, now, chunk
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == spec.external_key:
            raise ExternalIdTaken(exc.detail) from exc
        raise
    return counts["created"], counts["updated"]


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


@cache
def _lookup_statement(tables: tuple[str, ...]) -> str:
    # One probe of the (tenant, location, external id) key per asked id, whatever the
    # statistics say: a LATERAL sub-select with LIMIT cannot be turned into a join. As a
    # plain join the planner hashed the whole location for every chunk once it knew the
    # location's size (one location of 100,000 patients: 150 ms for a 2,000-id look-up
    # that the probes answer in 28 ms; a cost that grows with the location), and before
    # it knew, scanned the location per id. `= ANY($n)` is worse still: a generic plan
    # tests it by scanning the array for every row of the location.
    return " UNION ALL ".join(
        f"SELECT {k} AS k, e.external_id, r.id FROM unnest(${k + 3}::varchar[]) "
        f"AS e(external_id) CROSS JOIN LATERAL (SELECT r.id FROM {table} r "
        "WHERE r.tenant_id = $1 AND r.location_id = $2 AND r.external_id = e.external_id "
        "LIMIT 1) r"
        for k, table in enumerate(tables)
    )


async def lookup_ids(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    wanted: Sequence[tuple[str, Sequence[str]]],
) -> list[dict[str, str]]:
    """For each (table, external ids) of `wanted`, our ids of the rows (tombstoned ones
    too) with those external ids at the location: {external id: id}. One round trip."""
    found: list[dict[str, str]] = [{} for _ in wanted]
    asked = [(k, table, list(dict.fromkeys(ids))) for k, (table, ids) in enumerate(wanted) if ids]
    if not asked:
        return found
    connection = await driver_connection(session)
    records = await connection.fetch(
        _lookup_statement(tuple(table for _, table, _ in asked)),
        tenant_id,
        location_id,
        *(ids for _, _, ids in asked),
    )
    for r in records:
        found[asked[r["k"]][0]][r["external_id"]] = r["id"]
    return found


async def location_has_rows(
    session: AsyncSession, spec: EntitySpec, tenant_id: str, location_id: str
) -> bool:
    """Whether the location holds any row of the entity (tombstoned ones too)."""
    connection = await driver_connection(session)
    return bool(
        await connection.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {spec.table_name} "
            "WHERE tenant_id = $1 AND location_id = $2)",
            tenant_id,
            location_id,
        )
    )


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
