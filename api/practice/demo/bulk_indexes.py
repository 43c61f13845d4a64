"""Index builds after a bulk load into empty mirror tables, as pg_restore does.

Inserting 14 million rows into B-trees one key at a time (a 1,000,000-patient practice)
costs the database most of the load: external ids arrive in no particular order, so
every insert lands on another page. Built after the load, an index is one sort. This
is only done when every mirror table is empty, so there is no other practice's data
for a missing unique index to leave unprotected, and inside the load's transaction:
the tables are locked until the commit and a duplicate found by the rebuild rolls the
whole load back. Primary keys stay (the foreign keys need them; our new ids arrive in
nearly ascending order, so their index is cheap to keep)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


async def drop_for_load(connection: Any, tables: Sequence[str]) -> list[str]:
    """Drop the tables' plain indexes and unique constraints if all the tables are
    empty: -> the statements that rebuild them (none dropped: [])."""
    for table in tables:
        if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            return []
    indexes = await connection.fetch(
        "SELECT i.indexname AS name, i.indexdef AS definition FROM pg_indexes i "
        "WHERE i.schemaname = current_schema() AND i.tablename = ANY($1::text[]) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname "
        "AND c.connamespace = i.schemaname::regnamespace) ORDER BY i.indexname",
        list(tables),
    )
    uniques = await connection.fetch(
        "SELECT c.conrelid::regclass::text AS table_name, c.conname AS name, "
        "pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c "
        "WHERE c.contype = 'u' AND c.conrelid = ANY($1::regclass[]) ORDER BY c.conname",
        list(tables),
    )
    rebuild = [r["definition"] for r in indexes]
    for row in uniques:
        await connection.execute(f"ALTER TABLE {row['table_name']} DROP CONSTRAINT {row['name']}")
        rebuild.append(
            f"ALTER TABLE {row['table_name']} ADD CONSTRAINT {row['name']} {row['definition']}"
        )
    for row in indexes:
        await connection.execute(f"DROP INDEX {row['name']}")
    return rebuild


async def rebuild_after_load(
    connection: Any, statements: Sequence[str], tables: Sequence[str]
) -> None:
    """Rebuild what `drop_for_load` dropped, then refresh the tables' statistics (plans
    right after a bulk load must not be made for empty tables)."""
    if statements:
        # Sorts in memory rather than in temporary files; this transaction only.
        await connection.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for statement in statements:
            await connection.execute(statement)
    await connection.execute(f"ANALYZE {', '.join(tables)}")
