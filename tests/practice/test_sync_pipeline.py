"""The chunked pipeline of sync_batch (api/practice/ingest_pipeline.py): with chunks of
three rows, a batch is written over several statements while later chunks are still
being validated. Outcomes must be those of one pass over the whole batch."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.errors import ValidationProblem
from api.practice import ingest, ingest_pipeline
from api.practice.batch_ids import new_ids
from tests.practice.conftest import appointment, count_rows, patient


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 3)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 3)
    monkeypatch.setattr(ingest_pipeline, "VALIDATE_SLICE", 2)


@pytest.fixture
def lockstep(small_chunks: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Chunk k (of three rows) is validated only once the chunks before it were sent to
    the database (or the batch stopped writing): left alone, the validation runs ahead
    of the writer, and a test would not see chunks written before a late one is read.
    -> counts of the pipeline's savepoint undos and late reference fix-ups."""
    validate = ingest_pipeline.RowsPipeline._validate
    seen = {"undone": 0, "fixed_up": 0}

    async def held(self: Any, rows: Any, start: int) -> Any:
        for _ in range(5_000):
            if not self.writing or len(self._inserts) >= start // 3:
                break
            await asyncio.sleep(0.001)
        return await validate(self, rows, start)

    rollback, fix_up = (
        ingest_pipeline.ingest_sql.rollback_to_savepoint,
        ingest_pipeline.ingest_sql.set_references,
    )

    async def counted_rollback(*args: Any, **kwargs: Any) -> Any:
        seen["undone"] += 1
        return await rollback(*args, **kwargs)

    async def counted_fix_up(*args: Any, **kwargs: Any) -> Any:
        seen["fixed_up"] += 1
        return await fix_up(*args, **kwargs)

    monkeypatch.setattr(ingest_pipeline.RowsPipeline, "_validate", held)
    monkeypatch.setattr(ingest_pipeline.ingest_sql, "rollback_to_savepoint", counted_rollback)
    monkeypatch.setattr(ingest_pipeline.ingest_sql, "set_references", counted_fix_up)
    return seen


async def push(sessions: Any, practice: Any, entity: str, rows: list[dict[str, Any]]) -> Any:
    async with unit_of_work(sessions, practice.tenant.id) as session:
        return await ingest.sync_batch(
            session,
            tenant_id=practice.tenant.id,
            location_id=practice.locations[0].id,
            entity=entity,
            rows=rows,
            now=utcnow(),
        )


async def problems(sessions: Any, practice: Any, entity: str, rows: list[dict[str, Any]]) -> Any:
    with pytest.raises(ValidationProblem) as caught:
        await push(sessions, practice, entity, rows)
    return [(e.field, e.message) for e in caught.value.errors]


async def patients_by_external_id(sessions: Any) -> dict[str, Any]:
    async with sessions() as session:
        result = await session.execute(
            text("SELECT external_id, id, guarantor_id, primary_provider_id FROM patients")
        )
        return {row.external_id: row for row in result}


async def test_a_guarantor_in_a_later_chunk_is_resolved(sessions, practice, lockstep):
    # Chunks: [k1 k2 k3] [k4 k5 k6] [mom ...]: every child names a guarantor that is new
    # and only validated two chunks later, after the children were written.
    kids = [patient(f"k{i}", guarantor_external_id="mom") for i in range(1, 7)]
    result = await push(sessions, practice, "patients", [*kids, patient("mom")])
    assert (result.created, result.updated, result.unchanged) == (7, 0, 0)
    assert lockstep["fixed_up"] == 1
    rows = await patients_by_external_id(sessions)
    assert {rows[f"k{i}"].guarantor_id for i in range(1, 7)} == {rows["mom"].id}
    assert rows["mom"].guarantor_id is None
    # Re-sent as it is: nothing changed, the late fix-up did not count as a change.
    again = await push(sessions, practice, "patients", [*kids, patient("mom")])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 7)
    # An existing child moves to a new guarantor pushed in a later chunk.
    moved = [patient("k1", guarantor_external_id="dad"), patient("x1"), patient("x2")]
    result = await push(sessions, practice, "patients", [*moved, patient("dad")])
    assert (result.created, result.updated, result.unchanged) == (3, 1, 0)
    rows = await patients_by_external_id(sessions)
    assert rows["k1"].guarantor_id == rows["dad"].id


def test_chunk_bounds_start_with_the_smaller_first_chunk():
    assert ingest_pipeline.chunk_bounds(0, 2, 3) == []
    assert ingest_pipeline.chunk_bounds(1, 2, 3) == [(0, 1)]
    assert ingest_pipeline.chunk_bounds(2, 2, 3) == [(0, 2)]
    assert ingest_pipeline.chunk_bounds(9, 2, 3) == [(0, 2), (2, 5), (5, 8), (8, 9)]


async def test_new_and_known_rows_mixed_in_chunks_keep_their_ids(sessions, practice, monkeypatch):
    # New rows are inserted, known ones upserted: every chunk holds both kinds, sent again
    # unchanged, changed, and after a tombstone.
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 2)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 3)
    first = await push(sessions, practice, "patients", [patient(f"p{i}") for i in range(0, 8, 2)])
    assert first.created == 4
    before = await patients_by_external_id(sessions)
    rows = [patient(f"p{i}") for i in range(8)]
    rows[2]["last_name"] = "Changed"  # p2, known
    mixed = await push(sessions, practice, "patients", rows)
    assert (mixed.created, mixed.updated, mixed.unchanged) == (4, 1, 3)
    after = await patients_by_external_id(sessions)
    assert len(after) == 8
    assert all(after[f"p{i}"].id == before[f"p{i}"].id for i in range(0, 8, 2))
    async with unit_of_work(sessions, practice.tenant.id) as session:
        await ingest.sync_batch(
            session, tenant_id=practice.tenant.id, location_id=practice.locations[0].id,
            entity="patients", rows=[], deletes=["p4"], now=utcnow(),
        )  # fmt: skip
    back = await push(sessions, practice, "patients", rows)
    assert (back.created, back.updated, back.unchanged) == (0, 1, 7)  # p4 un-tombstoned
    assert (
        await count_rows(
            sessions,
            "SELECT count(*) FROM patients WHERE deleted_at IS NULL AND last_name = 'Changed'",
        )
        == 1
    )


async def test_the_first_rows_of_a_location_refresh_the_statistics(sessions, practice):
    # However small a share of the table: statistics taken before a location (or its
    # tenant) had rows can make its look-ups scan the tenant's rows (test_ingest_plans.py).
    analyzed = "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'operatories'"
    before = await count_rows(sessions, analyzed)
    rows = [{"external_id": f"op{i}", "name": f"Op {i}"} for i in range(3)]
    await push(sessions, practice, "operatories", rows)
    assert await count_rows(sessions, analyzed) == before + 1
    # Sent again, and ten times as many new rows of the same location: the look-ups do
    # not need fresher statistics (autovacuum keeps them for the rest).
    await push(sessions, practice, "operatories", rows)
    more = [{"external_id": f"op{i}", "name": f"Op {i}"} for i in range(3, 33)]
    await push(sessions, practice, "operatories", more)
    assert await count_rows(sessions, analyzed) == before + 1
    # The first rows of the other location.
    async with unit_of_work(sessions, practice.tenant.id) as session:
        await ingest.sync_batch(
            session, tenant_id=practice.tenant.id, location_id=practice.locations[1].id,
            entity="operatories", rows=rows, now=utcnow(),
        )  # fmt: skip
    assert await count_rows(sessions, analyzed) == before + 2


@pytest.mark.usefixtures("small_chunks")
async def test_a_bad_row_in_a_late_chunk_undoes_the_chunks_already_written(
    sessions, practice, lockstep
):
    rows = [patient(str(i)) for i in range(10)]
    rows[8]["birthdate"] = "1985-13-45"
    async with unit_of_work(sessions, practice.tenant.id) as session:
        with pytest.raises(ValidationProblem) as caught:
            await ingest.sync_batch(
                session,
                tenant_id=practice.tenant.id,
                location_id=practice.locations[0].id,
                entity="patients",
                rows=rows,
                now=utcnow(),
            )
        # The caller goes on with the same transaction and commits it (as a connector
        # that skips a bad batch would): the six rows written before row 8 are gone.
        [error] = caught.value.errors
        assert error.field == "rows[8].birthdate"
        good = await ingest.sync_batch(
            session,
            tenant_id=practice.tenant.id,
            location_id=practice.locations[0].id,
            entity="patients",
            rows=[patient("kept")],
            now=utcnow(),
        )
        assert good.created == 1
        assert lockstep["undone"] == 1
    assert await count_rows(sessions, "SELECT count(*) FROM patients") == 1
    assert await count_rows(sessions, "SELECT count(*) FROM patients WHERE external_id = 'kept'")


@pytest.mark.usefixtures("small_chunks")
async def test_an_unknown_reference_in_a_late_chunk_writes_nothing(sessions, practice):
    await push(sessions, practice, "patients", [patient("p1"), patient("p2")])
    appointments = [appointment(f"a{i}", "p1") for i in range(8)]
    appointments[7]["patient_external_id"] = "nobody"
    errors = await problems(sessions, practice, "appointments", appointments)
    assert errors == [
        (
            "rows[7].patient_external_id",
            "no patients row with external id 'nobody' at this location; push patients first",
        )
    ]
    assert await count_rows(sessions, "SELECT count(*) FROM appointments") == 0
    # A guarantor that no row of the batch (or the table) turns out to have.
    orphans = [patient("c1", guarantor_external_id="ghost"), patient("c2"), patient("c3")]
    errors = await problems(sessions, practice, "patients", [*orphans, patient("c4")])
    assert [field for field, _ in errors] == ["rows[0].guarantor_external_id"]
    assert await count_rows(sessions, "SELECT count(*) FROM patients") == 2


async def error_lists(
    sessions: Any, practice: Any, monkeypatch: pytest.MonkeyPatch, entity: str, rows: list[Any]
) -> tuple[list[Any], list[Any]]:
    """The batch's errors in one chunk, then in chunks of three rows."""
    whole = await problems(sessions, practice, entity, rows)
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 2)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 3)
    monkeypatch.setattr(ingest_pipeline, "VALIDATE_SLICE", 2)
    chunked = await problems(sessions, practice, entity, rows)
    return whole, chunked


async def test_chunks_report_the_errors_of_one_pass_in_its_order(sessions, practice, monkeypatch):
    rows = [patient(str(i)) for i in range(12)]
    rows[1]["status"] = "asleep"
    rows[5]["mobile"] = "12"
    rows[5]["email"] = "not an email"
    rows[10]["external_id"] = "3"  # a duplicate too, but invalid rows are reported first
    rows[11]["birthdate"] = "1850-01-01"
    whole, chunked = await error_lists(sessions, practice, monkeypatch, "patients", rows)
    assert chunked == whole
    assert [field for field, _ in whole] == [
        "rows[1].status",
        "rows[5].email",
        "rows[5].mobile",
        "rows[11].birthdate",
    ]


async def test_chunks_report_duplicates_then_unknown_references_in_order(
    sessions, practice, monkeypatch
):
    await push(sessions, practice, "patients", [patient("p1")])
    dupes = [appointment(f"a{i % 5}", "p1") for i in range(8)]
    whole, chunked = await error_lists(sessions, practice, monkeypatch, "appointments", dupes)
    assert chunked == whole
    assert [field for field, _ in whole] == [f"rows[{i}].external_id" for i in (5, 6, 7)]
    monkeypatch.undo()
    # References: by reference, then by the first row naming the external id, then row.
    rows = [
        appointment("a0", "zed", provider_external_id="drX"),
        appointment("a1", "p1"),
        appointment("a2", "amy"),
        appointment("a3", "zed"),
        appointment("a4", "p1", provider_external_id="drA"),
        appointment("a5", "amy", provider_external_id="drX"),
        appointment("a6", "zed"),
    ]
    whole, chunked = await error_lists(sessions, practice, monkeypatch, "appointments", rows)
    assert chunked == whole
    assert [field for field, _ in whole] == [
        "rows[0].patient_external_id",
        "rows[3].patient_external_id",
        "rows[6].patient_external_id",
        "rows[2].patient_external_id",
        "rows[5].patient_external_id",
        "rows[0].provider_external_id",
        "rows[5].provider_external_id",
        "rows[4].provider_external_id",
    ]
    assert await count_rows(sessions, "SELECT count(*) FROM appointments") == 0


def test_batch_ids_look_like_single_ids_and_do_not_repeat():
    ids = new_ids("patient", 20_000)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"pat_[0-9a-hjkmnp-tv-z]{26}", i) for i in ids)
    # Every character of the random part is used (the alphabet is fully reachable).
    assert set("".join(i[-16:] for i in ids)) == set("0123456789abcdefghjkmnpqrstvwxyz")


@pytest.mark.usefixtures("small_chunks")
async def test_a_known_guarantor_sent_in_the_batch_keeps_its_id(sessions, practice):
    # Guarantors already in the mirror and sent again in the batch: children before them
    # (an earlier chunk), in their chunk and after them (later chunks) must all get the
    # existing ids, whether looked up or taken from the batch.
    await push(sessions, practice, "patients", [patient("g"), patient("h")])
    before = await patients_by_external_id(sessions)
    rows = [patient("b1", guarantor_external_id="h"), patient("a"), patient("b2")]
    rows += [patient("g"), patient("h"), patient("c1", guarantor_external_id="g")]
    rows += [patient(f"c{i}", guarantor_external_id="g") for i in range(2, 6)]
    rows[2]["guarantor_external_id"] = "g"
    result = await push(sessions, practice, "patients", rows)
    assert (result.created, result.updated, result.unchanged) == (8, 0, 2)
    after = await patients_by_external_id(sessions)
    assert (after["g"].id, after["h"].id) == (before["g"].id, before["h"].id)
    assert after["b1"].guarantor_id == before["h"].id
    assert {after[f"c{i}"].guarantor_id for i in [1, 2, 3, 4, 5]} == {before["g"].id}
    assert after["b2"].guarantor_id == before["g"].id


async def test_a_first_load_does_not_look_up_its_own_rows(sessions, practice, monkeypatch):
    # An empty location cannot hold any of the batch's rows: the chunks' look-ups ask only
    # for references. The next batch (the location is no longer empty) asks again.
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 2)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 2)
    asked: list[tuple[list[str], list[str]]] = []  # per chunk: (own rows, guarantors)
    lookup = ingest_pipeline.ingest_sql.lookup_ids

    async def spy(session: Any, tenant_id: str, location_id: str, wanted: Any) -> Any:
        asked.append((list(wanted[0][1]), list(wanted[1][1])))
        return await lookup(session, tenant_id, location_id, wanted)

    monkeypatch.setattr(ingest_pipeline.ingest_sql, "lookup_ids", spy)
    # The same external ids at the other location do not make this one non-empty.
    async with unit_of_work(sessions, practice.tenant.id) as session:
        await ingest.sync_batch(
            session, tenant_id=practice.tenant.id, location_id=practice.locations[1].id,
            entity="patients", rows=[patient("p0"), patient("p1")], now=utcnow(),
        )  # fmt: skip
    asked.clear()
    # Every row names p0 (the first row) as its guarantor, and p5 names p6 (later chunk).
    rows = [patient(f"p{i}", guarantor_external_id="p0") for i in range(7)]
    rows[5]["guarantor_external_id"] = "p6"
    first = await push(sessions, practice, "patients", rows)
    assert (first.created, first.updated) == (7, 0)
    # Not even p6, named before its chunk: the location had no patients, so it is new.
    assert asked == [([], []), ([], []), ([], []), ([], [])]
    asked.clear()
    rows[3]["last_name"] = "Changed"
    again = await push(sessions, practice, "patients", rows)
    assert (again.created, again.updated, again.unchanged) == (0, 1, 6)
    assert asked == [(["p0", "p1"], []), (["p2", "p3"], []), (["p4", "p5"], ["p6"]), (["p6"], [])]
    here = await patients_by_external_id(sessions)
    assert [here[f"p{i}"].guarantor_id for i in range(7)] == [here["p0"].id] * 5 + [
        here["p6"].id,
        here["p0"].id,
    ]


@pytest.mark.parametrize("fails", ["look-up", "insert"])
async def test_a_failing_statement_fails_the_batch_and_undoes_it(
    sessions, practice, monkeypatch, fails
):
    # A statement fails while later chunks are still being validated: the error reaches
    # the caller, the chunks written are undone in the caller's transaction (which goes
    # on and commits), and nothing is left running on its connection.
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 10)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 10)
    name = "lookup_ids" if fails == "look-up" else "write_staged"
    real = getattr(ingest_pipeline.ingest_sql, name)
    calls = 0

    async def failing(session: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            # A real error from PostgreSQL, after the statement reached it.
            connection = await ingest_pipeline.ingest_sql.driver_connection(session)
            await connection.execute("SELECT 1 / 0")
        return await real(session, *args, **kwargs)

    monkeypatch.setattr(ingest_pipeline.ingest_sql, name, failing)
    rows = [patient(f"w{i}") for i in range(200)]
    async with unit_of_work(sessions, practice.tenant.id) as session:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await ingest.sync_batch(
                session, tenant_id=practice.tenant.id, location_id=practice.locations[0].id,
                entity="patients", rows=rows, now=utcnow(),
            )  # fmt: skip
        monkeypatch.setattr(ingest_pipeline.ingest_sql, name, real)
        kept = await ingest.sync_batch(
            session, tenant_id=practice.tenant.id, location_id=practice.locations[0].id,
            entity="patients", rows=[patient("kept")], now=utcnow(),
        )  # fmt: skip
        assert kept.created == 1
    assert await count_rows(sessions, "SELECT count(*) FROM patients") == 1


async def test_a_cancelled_batch_leaves_no_statement_running(sessions, practice, monkeypatch):
    # The request is cancelled while an insert runs: the writer's statements end before
    # the caller's rollback, which would otherwise find the connection busy.
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 10)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 10)
    real = ingest_pipeline.ingest_sql.write_staged
    inserting = asyncio.Event()

    async def slow(session: Any, *args: Any, **kwargs: Any) -> Any:
        connection = await ingest_pipeline.ingest_sql.driver_connection(session)
        inserting.set()
        await connection.execute("SELECT pg_sleep(0.5)")
        return await real(session, *args, **kwargs)

    monkeypatch.setattr(ingest_pipeline.ingest_sql, "write_staged", slow)
    rows = [patient(f"c{i}") for i in range(100)]
    batch = asyncio.create_task(push(sessions, practice, "patients", rows))
    await asyncio.wait_for(inserting.wait(), 10)
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    monkeypatch.setattr(ingest_pipeline.ingest_sql, "write_staged", real)
    assert (await push(sessions, practice, "patients", rows)).created == 100


async def test_a_first_load_in_one_transaction_looks_up_nothing_it_wrote(
    sessions, practice, monkeypatch
):
    # A connector's first run: several batches of patients, then appointments naming
    # them, in one transaction into an empty location. Later batches find the rows the
    # earlier ones wrote without asking the database (whose statistics cannot know them
    # yet), keep their ids, and resolve the appointments' patients the same way.
    asked: list[list[tuple[str, list[str]]]] = []
    lookup = ingest_pipeline.ingest_sql.lookup_ids

    async def spy(session: Any, tenant_id: str, location_id: str, wanted: Any) -> Any:
        asked.append([(table, list(ids)) for table, ids in wanted])
        return await lookup(session, tenant_id, location_id, wanted)

    monkeypatch.setattr(ingest_pipeline.ingest_sql, "lookup_ids", spy)
    tenant, main = practice.tenant.id, practice.locations[0].id

    async def batch(session: Any, entity: str, rows: list[dict[str, Any]]) -> Any:
        return await ingest.sync_batch(
            session, tenant_id=tenant, location_id=main, entity=entity, rows=rows, now=utcnow()
        )

    async with unit_of_work(sessions, tenant) as session:
        first = await batch(session, "patients", [patient(f"p{i}") for i in range(4)])
        ids = {r.external_id: r.id for r in await _patients(session)}
        second_rows = [patient("p1", last_name="Changed"), patient("p4")]
        second_rows += [patient("p5", guarantor_external_id="p0")]
        second = await batch(session, "patients", second_rows)
        with pytest.raises(ValidationProblem):
            await batch(session, "patients", [patient("p9", birthdate="1700-01-01")])
        third = await batch(
            session, "appointments", [appointment("a1", "p1"), appointment("a2", "p5")]
        )
        with pytest.raises(ValidationProblem) as caught:
            await batch(session, "appointments", [appointment("a3", "p9")])
        after = {r.external_id: r for r in await _patients(session)}
    assert (first.created, second.created, second.updated, third.created) == (4, 2, 1, 2)
    assert after["p1"].id == ids["p1"] and after["p1"].last_name == "Changed"
    assert after["p5"].guarantor_id == ids["p0"]
    assert "p9" not in after  # the refused batch left nothing, in the map neither
    assert [e.field for e in caught.value.errors] == ["rows[0].patient_external_id"]
    # Nothing was asked of the database but the providers/operatories of the appointments.
    assert all(not ids for call in asked for table, ids in call if table == "patients")
    assert all(not ids for call in asked for table, ids in call if table == "appointments")


async def _patients(session: Any) -> list[Any]:
    result = await session.execute(
        text("SELECT external_id, id, last_name, guarantor_id FROM patients")
    )
    return list(result)


async def test_rows_sent_again_in_the_transaction_keep_their_ids(sessions, practice, monkeypatch):
    # Appointments are referred to by nothing: the transaction remembers only which exist,
    # and asks the database for the id of one sent again (and only for it).
    asked: list[tuple[str, list[str]]] = []
    lookup = ingest_pipeline.ingest_sql.lookup_ids

    async def spy(session: Any, tenant_id: str, location_id: str, wanted: Any) -> Any:
        asked.extend((table, list(ids)) for table, ids in wanted if ids)
        return await lookup(session, tenant_id, location_id, wanted)

    tenant, main = practice.tenant.id, practice.locations[0].id

    async def batch(session: Any, entity: str, rows: list[dict[str, Any]]) -> Any:
        return await ingest.sync_batch(
            session, tenant_id=tenant, location_id=main, entity=entity, rows=rows, now=utcnow()
        )

    async with unit_of_work(sessions, tenant) as session:
        await batch(session, "patients", [patient("p1")])
        await batch(session, "appointments", [appointment("a1", "p1"), appointment("a2", "p1")])
        first = {
            r.external_id: r.id
            for r in await session.execute(text("SELECT external_id, id FROM appointments"))
        }
        monkeypatch.setattr(ingest_pipeline.ingest_sql, "lookup_ids", spy)
        again = await batch(
            session,
            "appointments",
            [appointment("a1", "p1", status="confirmed"), appointment("a3", "p1")],
        )
        after = {
            r.external_id: r.id
            for r in await session.execute(text("SELECT external_id, id FROM appointments"))
        }
    assert (again.created, again.updated) == (1, 1)
    assert after["a1"] == first["a1"] and len(after) == 3
    assert asked == [("appointments", ["a1"])]


async def test_a_rolled_back_savepoint_forgets_what_the_transaction_wrote(sessions, practice):
    # A caller's own savepoint undoes a kept batch: the rows are gone, and the next batch
    # must not take them for existing ones (it would count them as updated and refer to
    # ids that are not there).
    tenant, main = practice.tenant.id, practice.locations[0].id
    rows = [patient("p1"), patient("p2", guarantor_external_id="p1")]

    async def batch(session: Any) -> Any:
        return await ingest.sync_batch(
            session, tenant_id=tenant, location_id=main, entity="patients", rows=rows, now=utcnow()
        )

    async with unit_of_work(sessions, tenant) as session:
        nested = await session.begin_nested()
        assert (await batch(session)).created == 2
        await nested.rollback()
        again = await batch(session)
        assert (again.created, again.updated) == (2, 0)
    here = await patients_by_external_id(sessions)
    assert here["p2"].guarantor_id == here["p1"].id


def own_row_spy(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """-> per look-up, the batch's own external ids it asked the database for."""
    asked: list[list[str]] = []
    lookup = ingest_pipeline.ingest_sql.lookup_ids

    async def spy(session: Any, tenant_id: str, location_id: str, wanted: Any) -> Any:
        asked.append(list(wanted[0][1]))
        return await lookup(session, tenant_id, location_id, wanted)

    monkeypatch.setattr(ingest_pipeline.ingest_sql, "lookup_ids", spy)
    return asked


async def test_a_first_load_over_several_requests_presumes_later_chunks_new(
    sessions, practice, monkeypatch
):
    # A bridge's initial sync, one request (transaction) per batch: the second batch's
    # first chunk holds no known row, so its later chunks' rows are not looked up. Their
    # references still are: a guarantor of the first batch, one further on in this one.
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 2)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 2)
    await push(sessions, practice, "patients", [patient(f"p{i}") for i in range(4)])
    asked = own_row_spy(monkeypatch)
    rows = [patient(f"p{i}", guarantor_external_id="p0") for i in range(4, 11)]
    rows[2]["guarantor_external_id"] = "p9"  # p6 names a row of a later chunk
    result = await push(sessions, practice, "patients", rows)
    assert (result.created, result.updated, result.unchanged) == (7, 0, 0)
    assert asked == [["p4", "p5"], [], [], []]
    here = await patients_by_external_id(sessions)
    assert len(here) == 11
    assert here["p6"].guarantor_id == here["p9"].id
    assert {here[f"p{i}"].guarantor_id for i in (4, 5, 7, 8, 9, 10)} == {here["p0"].id}


async def test_a_presumed_new_row_that_is_known_has_the_batch_written_again(
    sessions, practice, monkeypatch
):
    # The first chunk holds only new rows, a later one a known row (and a tombstoned
    # one): the presumption fails at the unique key, what was written is undone, and the
    # batch is written again with every chunk looked up. Known rows keep their ids; a
    # reference to one gets its id; the counts are those of one careful pass.
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 2)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 2)
    await push(sessions, practice, "patients", [patient("k1"), patient("k2")])
    async with unit_of_work(sessions, practice.tenant.id) as session:
        await ingest.sync_batch(
            session, tenant_id=practice.tenant.id, location_id=practice.locations[0].id,
            entity="patients", rows=[], deletes=["k2"], now=utcnow(),
        )  # fmt: skip
    before = await patients_by_external_id(sessions)
    asked = own_row_spy(monkeypatch)
    rows = [patient("n1"), patient("n2"), patient("n3", guarantor_external_id="k1")]
    rows += [patient("k1", last_name="Changed"), patient("n4"), patient("k2")]
    rows += [patient("n5", guarantor_external_id="k2")]
    result = await push(sessions, practice, "patients", rows)
    assert (result.created, result.updated, result.unchanged) == (5, 2, 0)
    # Presumed after the first chunk; the second's insert refused (the third's look-up
    # was already out); then every chunk looked up.
    assert asked == [["n1", "n2"], [], [], ["n1", "n2"], ["n3", "k1"], ["n4", "k2"], ["n5"]]
    here = await patients_by_external_id(sessions)
    assert len(here) == 7
    assert (here["k1"].id, here["k2"].id) == (before["k1"].id, before["k2"].id)
    assert (here["n3"].guarantor_id, here["n5"].guarantor_id) == (here["k1"].id, here["k2"].id)
    assert await count_rows(sessions, "SELECT count(*) FROM patients WHERE deleted_at IS NULL") == 7
    assert (
        await count_rows(sessions, "SELECT count(*) FROM patients WHERE last_name = 'Changed'") == 1
    )


async def test_a_failed_undo_keeps_the_first_error_and_does_not_write_again(
    sessions, practice, monkeypatch
):
    # Rerunning on top of writes that could not be undone would double them (or hide
    # the cause behind an aborted transaction): the conflict is raised as it is.
    monkeypatch.setattr(ingest_pipeline, "FIRST_CHUNK_ROWS", 2)
    monkeypatch.setattr(ingest_pipeline, "CHUNK_ROWS", 2)
    await push(sessions, practice, "patients", [patient("k1")])
    asked = own_row_spy(monkeypatch)

    async def broken_rollback(session: Any) -> None:
        raise ConnectionError("the connection went away")

    monkeypatch.setattr(ingest_pipeline.ingest_sql, "rollback_to_savepoint", broken_rollback)
    with pytest.raises(ingest_pipeline.ingest_sql.ExternalIdTaken):
        await push(sessions, practice, "patients", [patient("n1"), patient("n2"), patient("k1")])
    assert asked == [["n1", "n2"], []]  # one pass only
    assert set(await patients_by_external_id(sessions)) == {"k1"}


async def test_a_referenced_row_found_once_is_not_asked_for_again(
    sessions, practice, small_chunks, monkeypatch
):
    # Every chunk of a first load names the same provider: the first chunk's look-up
    # finds it, the later chunks take its id from there. A provider that was missing is
    # asked for again (it may have been synced since), and is still reported per row.
    await push(
        sessions, practice, "providers", [{"external_id": "DR1", "kind": "dentist", "name": "Dr A"}]
    )
    asked: list[list[tuple[str, list[str]]]] = []
    lookup = ingest_pipeline.ingest_sql.lookup_ids

    async def spy(session: Any, tenant_id: str, location_id: str, wanted: Any) -> Any:
        asked.append([(table, list(ids)) for table, ids in wanted[1:] if ids])
        return await lookup(session, tenant_id, location_id, wanted)

    monkeypatch.setattr(ingest_pipeline.ingest_sql, "lookup_ids", spy)
    rows = [patient(f"p{i}", primary_provider_external_id="DR1") for i in range(7)]
    result = await push(sessions, practice, "patients", rows)
    assert result.created == 7
    assert asked == [[("providers", ["DR1", "DR1", "DR1"])], [], []]
    here = await patients_by_external_id(sessions)
    assert len({here[f"p{i}"].primary_provider_id for i in range(7)}) == 1
    assert here["p6"].primary_provider_id is not None

    asked.clear()
    rows = [patient(f"q{i}", primary_provider_external_id="DR2") for i in range(4)]
    found = await problems(sessions, practice, "patients", rows)
    assert asked == [[("providers", ["DR2"] * 3)], [("providers", ["DR2"])]]
    assert [field for field, _ in found] == [
        f"rows[{i}].primary_provider_external_id" for i in range(4)
    ]


async def test_a_staging_table_that_cannot_be_made_leaves_the_transaction_usable(
    sessions, practice
):
    # The savepoint and the staging table go in one round trip: when the table cannot be
    # made (here a leftover of the same name), the batch fails and is undone back to the
    # savepoint, so whoever owns the transaction can carry on.
    async def batch(session: Any, rows: list[dict[str, Any]]) -> Any:
        return await ingest.sync_batch(
            session, tenant_id=practice.tenant.id, location_id=practice.locations[0].id,
            entity="patients", rows=rows, now=utcnow(),
        )  # fmt: skip

    async with unit_of_work(sessions, practice.tenant.id) as session:
        leftover = "CREATE TEMPORARY TABLE sync_stage_patients (x int) ON COMMIT DROP"
        await session.execute(text(leftover))
        with pytest.raises(asyncpg.DuplicateTableError):
            await batch(session, [patient("a1")])
        await session.execute(text("DROP TABLE pg_temp.sync_stage_patients"))
        assert (await batch(session, [patient("a2")])).created == 1
    assert set(await patients_by_external_id(sessions)) == {"a2"}
