"""The 1,000,000-patient demo practice: generated and loaded, timed per phase.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.demo.run [--patients 1000000] [--locations 1] [--seed 42]

Builds a scratch database (`cf_demo_bench`, migrated from scratch, dropped at the end
unless --keep), one tenant and its locations, then loads the practice the way `chairfill
demo` does (`load_practice(via="copy")`: chunks generated in worker processes, COPYed
in one transaction, indexes built after the rows, statistics refreshed), and times the
load, the commit and a check of the counts; it gives the CPU time of this process, of the
generator processes and of the PostgreSQL backend (from /proc) beside the wall clock."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from collections import defaultdict
from datetime import date

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.core.clock import utcnow
from api.core.db import new_engine, unit_of_work
from api.core.migrate import upgrade
from api.practice import ingest_sql
from api.practice.demo.generator import DemoSpec
from api.practice.demo.loader import load_practice
from api.practice.ingest_specs import ENTITIES
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate

DB_NAME = "cf_demo_bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process of this machine."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def load(database_url: str, spec: DemoSpec) -> dict[str, float]:
    engine = new_engine(database_url)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    phases: dict[str, float] = {}
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
        started = time.perf_counter()
        cpu = time.process_time()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)

        copied = started
        backend, backend_cpu, copied_cpu = 0, 0.0, 0.0

        def progress(entity: str, n: int) -> None:
            nonlocal copied, copied_cpu
            copied, copied_cpu = time.perf_counter(), process_cpu(backend)
            rows[entity] += n
            if entity == "patients" and rows["patients"] % 100_000 < n:
                seconds = time.perf_counter() - started
                print(f"  {rows['patients']:>9,} patients  {seconds:6.1f} s", flush=True)

        async with unit_of_work(maker) as session:
            backend = (await ingest_sql.driver_connection(session)).get_server_pid()
            backend_cpu = process_cpu(backend)
            await load_practice(
                session, tenant_id=tenant.id, location_ids=[loc.id for loc in locations],
                spec=spec, now=utcnow(), via="copy", progress=progress,
            )  # fmt: skip
            loaded = time.perf_counter()
            phases["generate + COPY"] = copied - started
            phases["build indexes + analyze"] = loaded - copied
            phases["cpu: postgres backend, COPY"] = copied_cpu - backend_cpu
            phases["cpu: postgres backend, indexes + analyze"] = process_cpu(backend) - copied_cpu
            t0 = time.perf_counter()
        phases["commit"] = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        phases["cpu: this process"] = time.process_time() - cpu
        phases["cpu: generator processes"] = (after.ru_utime + after.ru_stime) - (
            children.ru_utime + children.ru_stime
        )
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
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
    args = parser.parse_args()
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
        phases = asyncio.run(load(database_url, spec))
    finally:
        if not args.keep:
            drop_database(admin_url)
    elapsed = time.perf_counter() - total
    rows = int(phases.pop("rows"))
    print(f"\n{args.patients:,} patients, {args.locations} location(s), {rows:,} rows in all")
    print(f"  {'create + migrate database':<28} {migrate:7.1f} s")
    for name, seconds in phases.items():
        print(f"  {name:<42} {seconds:7.1f} s")
    print(f"  {'total':<42} {elapsed:7.1f} s  ({rows / elapsed:,.0f} rows/s)")
    print(f"  load average {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)")


if __name__ == "__main__":
    main()
