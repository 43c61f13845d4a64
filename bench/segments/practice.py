"""The benchmark's generated practices: one scratch database per size
(`cf_bench_segments_<patients>`), loaded once through the demo generator's COPY path and
reused by later runs (loading 1,000,000 patients takes minutes), unless asked to rebuild.

A database counts as loaded when it holds exactly one tenant with the expected number of
live patients and a `bench_segments_loaded` marker row written after the load committed,
so a load that was interrupted is never mistaken for a finished one."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import psycopg
from sqlalchemy.engine import make_url

from api.core.migrate import upgrade
from api.practice.demo.generator import DemoSpec
from bench.demo.run import load

TODAY = date(2026, 11, 23)


def database_name(patients: int) -> str:
    return f"cf_bench_segments_{patients}"


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def is_loaded(admin_url: str, patients: int) -> bool:
    name = database_name(patients)
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if not exists:
        return False
    with psycopg.connect(_conninfo(_database_url(admin_url, name))) as conn:
        marker = conn.execute("SELECT to_regclass('bench_segments_loaded') IS NOT NULL").fetchone()
        if not marker or not marker[0]:
            return False
        row = conn.execute("SELECT patients FROM bench_segments_loaded").fetchone()
        return row is not None and row[0] == patients


def ensure_practice(admin_url: str, patients: int, rebuild: bool = False) -> str:
    """The scratch database's URL, loaded with a `patients`-patient practice and migrated
    to the current head (a reused database gets the migrations added since its load)."""
    name = database_name(patients)
    url = _database_url(admin_url, name)
    if not rebuild and is_loaded(admin_url, patients):
        upgrade(url)
        print(f"reusing {name} ({patients:,} patients; --rebuild to load it again)")
        return url
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    print(f"loading {name}: {patients:,} patients (once; later runs reuse it)", flush=True)
    started = time.perf_counter()
    spec = DemoSpec(patients=patients, locations=1, seed=42, today=TODAY)
    asyncio.run(load(url, spec, index_after=True))
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_segments_loaded (patients integer NOT NULL)")
        conn.execute("INSERT INTO bench_segments_loaded VALUES (%s)", (patients,))
    print(f"loaded {name} in {time.perf_counter() - started:.0f} s", flush=True)
    return url
