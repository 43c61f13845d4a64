"""The 1,000,000-patient demo practice: generated and loaded, timed per phase.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.demo.run [--patients 1000000] [--locations 1] [--seed 42]

Builds a scratch database (`cf_demo_bench`, migrated from scratch, dropped at the end
unless --keep), one tenant and its locations, then streams `chairfill demo`'s generator
into the COPY loader in one transaction, timing the generator and the COPY separately
per entity, then the commit, ANALYZE and a check of the counts."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from datetime import date
from typing import Any

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.core.clock import utcnow
from api.core.db import new_engine, unit_of_work
from api.core.migrate import upgrade
from api.practice.demo.generator import DemoSpec
from api.practice.demo.loader import Copier, chunks_of
from api.practice.ingest_specs import ENTITIES
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate

DB_NAME = "cf_demo_bench"


def scratch_database(admin_url: str) -> str:
    url = make_url(admin_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return url.set(database=DB_NAME).render_as_string(hide_password=False)


def drop_database(admin_url: str) -> None:
    url = make_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


async def secondary_indexes(raw: Any) -> list[tuple[str, str]]:
    """(name, definition) of the mirror tables' plain indexes (not keys or constraints)."""
    tables = [s.table_name for s in ENTITIES.values()]
    records = await raw.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1::text[]) "
        "AND indexname LIKE 'ix\\_%'",
        tables,
    )
    return [(r["indexname"], r["indexdef"]) for r in records]


async def load(database_url: str, spec: DemoSpec, index_after: bool) -> dict[str, float]:
    engine = new_engine(database_url)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    phases: dict[str, float] = defaultdict(float)
    rows: dict[str, int] = defaultdict(int)
    try:
        async with unit_of_work(maker) as session:
            tenant = await tenancy_service.create_tenant(session, TenantCreate(name="Bench Dental"))
            locations = [
                await tenancy_service.create_location(
                    session, tenant.id, LocationCreate(name=f"Bench #{i}", timezone=spec.timezone)
                )
                for i in range(spec.locations)
            ]
        dropped: list[tuple[str, str]] = []
        if index_after:
            # A bulk load into an empty database builds its secondary indexes afterwards
            # (as pg_restore does); keys and unique constraints stay and are checked.
            async with engine.connect() as connection:
                raw = (await connection.get_raw_connection()).driver_connection
                dropped = await secondary_indexes(raw)
                for name, _ in dropped:
                    await raw.execute(f"DROP INDEX {name}")
                await connection.commit()
        started = time.perf_counter()
        async with unit_of_work(maker) as session:
            for index, location in enumerate(locations):
                copier = Copier(session, tenant.id, location.id, utcnow())
                chunks = iter(chunks_of(spec, index))
                while True:
                    t0 = time.perf_counter()
                    chunk = next(chunks, None)
                    phases["generate"] += time.perf_counter() - t0
                    if chunk is None:
                        break
                    for entity, batch in chunk:
                        if batch:
                            t0 = time.perf_counter()
                            await copier.write(entity, batch)
                            phases[f"copy {entity}"] += time.perf_counter() - t0
                            rows[entity] += len(batch)
                    if rows["patients"] % 100_000 < len(chunk[0][1]):
                        seconds = time.perf_counter() - started
                        print(f"  {rows['patients']:>9,} patients  {seconds:6.1f} s", flush=True)
            t0 = time.perf_counter()
        phases["commit"] = time.perf_counter() - t0
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            if dropped:
                t0 = time.perf_counter()
                await raw.execute("SET maintenance_work_mem = '512MB'")
                for _, definition in dropped:
                    await raw.execute(definition)
                phases["build secondary indexes"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            await raw.execute("ANALYZE")
            phases["analyze"] = time.perf_counter() - t0
            for entity, expected in rows.items():
                table = ENTITIES[entity].table_name
                found = await raw.fetchval(f"SELECT count(*) FROM {table}")
                assert found == expected, (entity, found, expected)
        phases["rows"] = sum(rows.values())
        for entity, n in sorted(rows.items(), key=lambda kv: -kv[1]):
            print(f"  {entity:<18} {n:>11,} rows")
        return phases
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--locations", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    parser.add_argument(
        "--index-during-load",
        action="store_true",
        help="Keep the secondary indexes while loading (default: build them afterwards).",
    )
    args = parser.parse_args()
    import os

    admin_url = os.environ["DATABASE_URL"]
    total = time.perf_counter()
    t0 = time.perf_counter()
    database_url = scratch_database(admin_url)
    upgrade(database_url)
    migrate = time.perf_counter() - t0
    spec = DemoSpec(
        patients=args.patients, locations=args.locations, seed=args.seed, today=date(2026, 11, 23)
    )
    try:
        phases = asyncio.run(load(database_url, spec, not args.index_during_load))
    finally:
        if not args.keep:
            drop_database(admin_url)
    elapsed = time.perf_counter() - total
    rows = int(phases.pop("rows"))
    print(f"\n{args.patients:,} patients, {args.locations} location(s), {rows:,} rows in all")
    print(f"  {'create + migrate database':<28} {migrate:7.1f} s")
    for name, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<28} {seconds:7.1f} s")
    print(f"  {'total':<28} {elapsed:7.1f} s  ({rows / elapsed:,.0f} rows/s)")


if __name__ == "__main__":
    main()
