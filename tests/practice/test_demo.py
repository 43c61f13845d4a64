from __future__ import annotations

import datetime as dt
import io
from collections import Counter

from sqlalchemy import text

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.practice import ingest_sql
from api.practice.demo import bulk_indexes, copy_text
from api.practice.demo.copy_text import ChunkContext
from api.practice.demo.generator import DemoSpec, patient_chunks, resources
from api.practice.demo.loader import load_practice
from api.practice.ingest_specs import ENTITIES, ENTITY_ORDER

TODAY = dt.date(2026, 11, 23)


def everything(spec: DemoSpec) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for location in range(spec.locations):
        for chunk in [resources(spec, location), *patient_chunks(spec, location, 300)]:
            for entity, batch in chunk:
                rows.setdefault(entity, []).extend(batch)
    return rows


def test_the_same_seed_gives_the_same_practice():
    first = everything(DemoSpec(patients=900, locations=2, seed=7, today=TODAY))
    again = everything(DemoSpec(patients=900, locations=2, seed=7, today=TODAY))
    other = everything(DemoSpec(patients=900, locations=2, seed=8, today=TODAY))
    assert first == again
    assert [p["external_id"] for p in first["patients"]] == [
        p["external_id"] for p in again["patients"]
    ]
    assert first["patients"] != other["patients"]
    assert len(first["patients"]) == 900


def test_the_practice_has_a_realistic_shape():
    rows = everything(DemoSpec(patients=4_000, seed=3, today=TODAY))
    patients = rows["patients"]
    status = Counter(p["status"] for p in patients)
    assert 0.74 < status["active"] / len(patients) < 0.86
    active = {p["external_id"] for p in patients if p["status"] == "active"}
    recalls = [r for r in rows["recalls"] if r["patient_external_id"] in active]
    due = sum(1 for r in recalls if r["due_date"] <= TODAY) / len(recalls)
    assert 0.2 < due < 0.55, due
    perio = [r for r in recalls if r["recall_type"] == "perio"]
    assert 0.06 < len(perio) / len(recalls) < 0.16
    assert {r["interval_months"] for r in perio} == {3, 4}
    assert {r["interval_months"] for r in recalls if r["recall_type"] == "prophy"} == {6}
    households = Counter(p["household_id"] for p in patients)
    in_families = sum(n for n in households.values() if n > 1) / len(patients)
    assert 0.6 < in_families < 0.85
    assert all(p["guarantor_external_id"] == p["household_id"][1:] for p in patients)
    ledger = rows["ledger"]
    assert 0 < sum(1 for entry in ledger if entry["in_collections"]) < len(ledger) * 0.12
    codes = Counter(p["code"] for p in rows["procedures"])
    assert {"D0120", "D0150", "D1110", "D4910", "D2740", "D2950", "D3330", "D7140"} <= set(codes)
    completed = [a for a in rows["appointments"] if a["status"] == "completed"]
    oldest = min(a["start_at"] for a in completed).date()
    assert TODAY - dt.timedelta(days=3 * 365 + 20) <= oldest < TODAY - dt.timedelta(days=900)
    assert len(rows["operatories"]) == 4
    kinds = Counter(p["kind"] for p in rows["providers"])
    assert kinds["dentist"] >= 2 and kinds["hygienist"] >= 3
    assert rows["opt-outs"] and rows["communications"] and rows["treatment-plans"]


def _comparable(table: str) -> str:
    """A table's rows with our ids replaced by the referenced rows' external ids."""
    spec = next(s for s in ENTITIES.values() if s.table_name == table)
    columns = [f"t.{c}" for c in spec.columns]
    for ref in spec.references:
        if ref.many:
            columns.append(
                f"(SELECT array_agg(r.external_id ORDER BY r.external_id) FROM {ref.table} r "
                f"WHERE r.id = ANY(t.{ref.column}))"
            )
        else:
            columns.append(f"(SELECT r.external_id FROM {ref.table} r WHERE r.id = t.{ref.column})")
    return (
        f"SELECT t.external_id, {', '.join(columns)}, t.updated_at, t.deleted_at FROM {table} t "
        "WHERE t.location_id = :location ORDER BY t.external_id"
    )


async def test_copy_loader_writes_exactly_what_sync_batch_writes(practice, sessions):
    spec = DemoSpec(patients=600, seed=11, today=TODAY)
    now = utcnow()
    by_sync, by_copy = (loc.id for loc in practice.locations)
    async with unit_of_work(sessions, practice.tenant.id) as session:
        loaded = await load_practice(
            session, tenant_id=practice.tenant.id, location_ids=[by_sync], spec=spec, now=now
        )
    async with unit_of_work(sessions) as session:
        copied = await load_practice(
            session,
            tenant_id=practice.tenant.id,
            location_ids=[by_copy],
            spec=spec,
            now=now,
            via="copy",
        )
    assert loaded.rows == copied.rows
    assert loaded.rows["patients"] == 600
    async with sessions() as session:
        for entity in ENTITY_ORDER:
            table = ENTITIES[entity].table_name
            sql = text(_comparable(table))
            synced = (await session.execute(sql, {"location": by_sync})).all()
            copied_rows = (await session.execute(sql, {"location": by_copy})).all()
            assert synced == copied_rows, entity
            assert len(synced) == loaded.rows.get(entity, 0), entity
        states = (
            await session.execute(text("SELECT location_id, data_as_of FROM location_sync_states"))
        ).all()
    assert {location: as_of for location, as_of in states} == {by_sync: now, by_copy: now}


async def test_demo_patients_are_readable_through_the_api(practice, sessions, client):
    spec = DemoSpec(patients=300, seed=5, today=TODAY)
    async with unit_of_work(sessions) as session:
        await load_practice(
            session,
            tenant_id=practice.tenant.id,
            location_ids=[practice.locations[0].id],
            spec=spec,
            now=utcnow(),
            via="copy",
        )
    seen: list[dict] = []
    cursor = None
    while True:
        params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/patients", headers=practice.headers, params=params)).json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 300
    assert all(p["id"].startswith("pat_") for p in seen)
    assert any(p["mobile"] and p["mobile"].startswith("+1") for p in seen)


async def _index_definitions(sessions) -> list[tuple[str, str]]:
    tables = [spec.table_name for spec in ENTITIES.values()]
    async with sessions() as session:
        result = await session.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables) "
                "ORDER BY indexname"
            ),
            {"tables": tables},
        )
        return [(name, definition) for name, definition in result]


async def test_a_load_into_empty_tables_builds_the_indexes_afterwards(
    practice, sessions, monkeypatch
):
    before = await _index_definitions(sessions)
    assert any(name.startswith("uq_patients") for name, _ in before)
    dropped: list[str] = []
    drop_for_load = bulk_indexes.drop_for_load

    async def watched(connection, tables):
        dropped.extend(await drop_for_load(connection, tables))
        # Inside the load's transaction the unique key is gone until the rows are in.
        assert not await connection.fetchval(
            "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'uq_patients%'"
        )
        return dropped

    monkeypatch.setattr(bulk_indexes, "drop_for_load", watched)
    async with unit_of_work(sessions) as session:
        await load_practice(
            session, tenant_id=practice.tenant.id, location_ids=[practice.locations[0].id],
            spec=DemoSpec(patients=200, seed=9, today=TODAY), now=utcnow(), via="copy",
        )  # fmt: skip
    assert len(dropped) > len(ENTITIES)  # every table's unique key, and the plain indexes
    assert await _index_definitions(sessions) == before
    # Tables that hold rows keep their indexes.
    async with unit_of_work(sessions) as session:
        await session.execute(text("SELECT 1"))
        connection = await ingest_sql.driver_connection(session)
        tables = [spec.table_name for spec in ENTITIES.values()]
        assert await drop_for_load(connection, tables) == []


async def test_copy_text_escapes_what_would_break_a_line(sessions):
    names = ["plain", "back\\slash", "tab\there", "two\nlines", "cr\rhere", "\\N", "\\.", ""]
    rows = [
        {"external_id": f"E{i}", "first_name": name, "last_name": "Lee", "status": "active"}
        for i, name in enumerate(names)
    ]
    context = ChunkContext("ten_x", "loc_x", dt.datetime(2026, 11, 23, tzinfo=dt.UTC), {})
    encoded = copy_text._encode(ENTITIES["patients"], rows, {"providers": {}}, context)
    assert encoded.text.count(b"\n") == len(rows)
    async with sessions() as session:
        await session.execute(text("SELECT 1"))
        connection = await ingest_sql.driver_connection(session)
        await connection.execute("CREATE TEMPORARY TABLE copied (LIKE patients)")
        await connection.copy_to_table(
            "copied", source=io.BytesIO(encoded.text), columns=encoded.columns, format="text"
        )
        read = await connection.fetch(
            "SELECT first_name, preferred_name, guarantor_id FROM copied ORDER BY external_id"
        )
        await session.rollback()
    assert [r["first_name"] for r in read] == names
    assert all(r["preferred_name"] is None and r["guarantor_id"] is None for r in read)
