"""The sync path's look-ups by external id must probe the unique key whatever the
planner knows: a first sync writes into a table without statistics, and a look-up planned
as a scan of the location's rows made every chunk's look-up cost grow with the location
(alembic 0016, api/practice/ingest_sql.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from api.practice import ingest_sql
from api.practice.ingest_specs import ENTITIES


async def test_patients_have_one_index_on_the_location_prefix(sessions: Any) -> None:
    # A second index starting (tenant_id, location_id) is what an unanalyzed table's
    # planner took instead of the unique key.
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'patients' "
                "AND indexdef LIKE '%(tenant_id, location_id%'"
            )
        )
        assert [r.indexname for r in rows] == ["uq_patients_tenant_id_location_id_external_id"]


@pytest.mark.parametrize("new", ["location", "tenant"])
async def test_a_new_location_is_looked_up_through_the_unique_key(sessions: Any, new: str) -> None:
    # A temporary copy of `patients` (its indexes; autovacuum does not see temporary
    # tables) shadows the real one. It was analyzed while it held one location's rows;
    # then a new practice's first sync arrives. A new location of the same tenant is
    # probed through the unique key with those statistics. A new tenant is not (the
    # statistics put it at no rows, and an index on (tenant_id, ...) looks as good); so
    # the batch that brings a location's first rows has the table analyzed when it commits
    # (test_sync_pipeline.py), which suffices however small a share of the table they are.
    # (A table never analyzed is not asked: a first load into an empty location looks up
    # no rows of its own, and that batch has the table analyzed too.)
    statement = ingest_sql._lookup_statement(("patients", ENTITIES["providers"].table_name))
    fill = text(
        "INSERT INTO pg_temp.patients (tenant_id, id, location_id, external_id, first_name, "
        "last_name, status, communication_preference, sms_consent, email_consent) "
        "SELECT :ten, 'pat_' || :loc || g, :loc, 'P' || g, 'A', 'B', 'active', 'sms', "
        "true, true FROM generate_series(CAST(:first AS int), CAST(:last AS int)) g"
    )
    tenant, location = ("ten_1", "loc_1") if new == "location" else ("ten_2", "loc_2")
    async with sessions() as session, session.begin():
        await session.execute(
            text("CREATE TEMPORARY TABLE patients (LIKE public.patients INCLUDING ALL)")
        )
        known = {"ten": "ten_1", "loc": "loc_0", "first": 1, "last": 20_000}
        await session.execute(fill, known)
        if new == "location":
            await session.execute(text("ANALYZE pg_temp.patients"))
        else:
            first_batch = {"ten": tenant, "loc": location, "first": 1, "last": 500}
            await session.execute(fill, first_batch)
            await session.execute(text("ANALYZE pg_temp.patients"))
        rest = {"ten": tenant, "loc": location, "first": 501, "last": 10_000}
        await session.execute(fill, rest)
        connection = await (await session.connection()).get_raw_connection()
        raw = connection.driver_connection
        # A generic plan (what a statement cached by asyncpg ends up with) and a custom one.
        await raw.execute(
            f"PREPARE look_up (varchar, varchar, varchar[], varchar[]) AS {statement}"
        )
        for mode in ("force_custom_plan", "force_generic_plan"):
            await raw.execute(f"SET LOCAL plan_cache_mode = {mode}")
            plan = "\n".join(
                r[0]
                for r in await raw.fetch(
                    f"EXPLAIN EXECUTE look_up ('{tenant}', '{location}', '{{P1,P2}}', '{{DR1}}')"
                )
            )
            assert ("$1" in plan) == (mode == "force_generic_plan"), plan
            scan = next(line for line in plan.splitlines() if "on patients" in line)
            assert "tenant_id_location_id_external_id" in scan, plan
        await raw.execute("DEALLOCATE look_up")
        await session.rollback()
