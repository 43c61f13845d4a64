"""Bulk-sync throughput of the practice mirror, next to the floor (a raw COPY).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python -m bench.ingest.run \\
        [--patients 100000] [--appointments 100000]

Builds a scratch database (`cf_practice_bench`, migrated from scratch), one tenant and
location, and measures, in one run and on the same generated rows:

* patients and appointments through `api.practice.ingest.sync_batch` (the function every
  source uses: validation, reference checks, chunks COPYed into a staging table and
  upserted with `INSERT ... SELECT ... ON CONFLICT DO UPDATE` while the next chunk is
  validated, watermark bookkeeping), 10,000-row batches, each its own transaction: first
  load (inserts), a re-sync with every row changed (updates) and one with nothing changed;
* the HTTP endpoint `POST /v1/sync/locations/{id}/patients` (in-process ASGI, 10,000 rows
  per request, JSON parsing, auth, idempotency, one transaction; the request bodies are
  encoded before the clock starts, as a bridge would send them);
* `COPY` of the same patient / appointment tuples into an index-less scratch table (the
  floor), and of the patients into a table shaped like `patients` (its indexes and keys);
* the same patients and appointments into a second location, every batch in one
  transaction, as the Open Dental connector's first run writes them.

Besides wall-clock time, each line gives the CPU time per row of this Python process and
of the PostgreSQL backends of the scratch database (read from /proc, so PostgreSQL must
run on this machine), which a busy machine disturbs much less than the wall clock.

Every input (rows, request bodies, COPY tuples) is built before the first clock starts
and then frozen out of the garbage collector's reach, as the API freezes what its start-up
built (api/main.py): a server holds one batch at a time, not the bench's 600,000 objects,
which a full collection would otherwise walk again and again. Each batch is handed fresh
dicts (copied inside the timing), as a request's parsed body would be.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import psycopg
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from api.core.clock import utcnow
from api.core.db import session_maker, unit_of_work
from api.core.migrate import upgrade
from api.core.settings import RateLimitSettings, Settings
from api.main import create_app
from api.oauth2 import service as oauth_service
from api.practice import ingest
from api.practice.batch_ids import new_ids
from api.practice.ingest_pipeline import validate_rows
from api.practice.ingest_specs import ENTITIES
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate

BATCH = 10_000
DB_NAME = "cf_practice_bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gia", "Hugo", "Ines", "Jon"]
LAST = ["Rivera", "Nguyen", "Okafor", "Smith", "Kowalski", "Haddad", "Tanaka", "Silva"]
STATUSES = ["active"] * 8 + ["inactive", "archived"]


def patient_rows(n: int, version: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        family = i - i % 3  # households of three; the first member is the guarantor
        rows.append(
            {
                "external_id": f"P{i}",
                "first_name": FIRST[i % len(FIRST)],
                "last_name": LAST[(i // 3) % len(LAST)] + ("" if version == 0 else "-Lee"),
                "preferred_name": None,
                "birthdate": (date(1950, 1, 1) + timedelta(days=i % 25_000)).isoformat(),
                "status": STATUSES[i % len(STATUSES)],
                "email": f"patient{i}@example.com",
                "mobile": f"+1512{2000000 + i % 7_999_999:07d}",
                "communication_preference": "sms" if i % 4 else "email",
                "sms_consent": i % 5 != 0,
                "email_consent": i % 7 != 0,
                "household_id": f"H{family}",
                "guarantor_external_id": f"P{family}",
                "primary_provider_external_id": "DR1",
                "first_visit_date": "2015-03-02",
                "last_visit_date": (date(2024, 1, 1) + timedelta(days=i % 700)).isoformat(),
            }
        )
    return rows


def appointment_rows(n: int, patients: int) -> list[dict[str, Any]]:
    base = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    rows = []
    for i in range(n):
        start = base + timedelta(minutes=30 * i)
        rows.append(
            {
                "external_id": f"A{i}",
                "patient_external_id": f"P{i % patients}",
                "provider_external_id": "DR1",
                "operatory_external_id": "OP1",
                "start_at": start.isoformat(),
                "end_at": (start + timedelta(minutes=60)).isoformat(),
                "status": "scheduled",
            }
        )
    return rows


def recreate_database(admin_url: str) -> str:
    url = make_url(admin_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return url.set(database=DB_NAME).render_as_string(hide_password=False)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process of this machine (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class BackendClock:
    """CPU time of the scratch database's PostgreSQL backends (the sessions' pool and any
    connection the measured work opens and keeps until `stop`)."""

    def __init__(self, admin: asyncpg.Connection) -> None:
        self.admin = admin

    async def _pids(self) -> list[int]:
        rows = await self.admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            DB_NAME,
        )
        return [r["pid"] for r in rows]

    async def start(self) -> None:
        self.begin = {pid: process_cpu(pid) for pid in await self._pids()}
        self.seen = dict(self.begin)

    async def sample(self) -> None:
        """Note the backends' CPU now (call before closing connections the work opened)."""
        for pid in await self._pids():
            self.seen[pid] = process_cpu(pid)

    async def stop(self) -> float:
        await self.sample()
        return sum(cpu - self.begin.get(pid, 0.0) for pid, cpu in self.seen.items())


class Bench:
    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.sessions = session_maker(database_url)
        self.results: list[tuple[str, int, float]] = []

    async def open_clock(self) -> None:
        self.admin = await asyncpg.connect(self.database_url)
        self.clock = BackendClock(self.admin)

    async def setup(self) -> None:
        async with unit_of_work(self.sessions) as session:
            tenant = await tenancy_service.create_tenant(session, TenantCreate(name="Bench Dental"))
            location = await tenancy_service.create_location(
                session, tenant.id, LocationCreate(name="Main", timezone="America/Chicago")
            )
            created = await oauth_service.create_client(
                session, tenant.id, name="bench bridge", scopes=["pms:sync", "patients:read"]
            )
            settings = Settings(database_url=self.database_url, redis_url=self.redis_url)
            minted = await oauth_service.issue_client_token(session, created.client, settings.oauth)
            # A second location, for a connector-style first run (one transaction).
            second = await tenancy_service.create_location(
                session, tenant.id, LocationCreate(name="Lakeside", timezone="America/Chicago")
            )
        self.tenant_id, self.location_id, self.token = tenant.id, location.id, minted.access_token
        self.second_location_id = second.id
        for location_id in (self.location_id, self.second_location_id):
            providers = [{"external_id": "DR1", "kind": "dentist", "name": "Dr A"}]
            await self.sync("providers", providers, location_id=location_id)
            await self.sync(
                "operatories", [{"external_id": "OP1", "name": "Op 1"}], location_id=location_id
            )

    async def sync(
        self, entity: str, rows: list[dict[str, Any]], location_id: str | None = None
    ) -> dict[str, int]:
        totals = {"created": 0, "updated": 0, "unchanged": 0}
        for start in range(0, len(rows), BATCH):
            async with unit_of_work(self.sessions, self.tenant_id) as session:
                result = await ingest.sync_batch(
                    session,
                    tenant_id=self.tenant_id,
                    location_id=location_id or self.location_id,
                    entity=entity,
                    rows=fresh(rows[start : start + BATCH]),
                    now=utcnow(),
                )
            for key in totals:
                totals[key] += getattr(result, key)
        return totals

    async def one_transaction(self, batches: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """A connector's first run: every batch of the second (empty) location in one
        transaction, as api.practice.connectors.base.run_connector writes them."""
        async with unit_of_work(self.sessions, self.tenant_id) as session:
            for entity, rows in batches:
                for start in range(0, len(rows), BATCH):
                    await ingest.sync_batch(
                        session,
                        tenant_id=self.tenant_id,
                        location_id=self.second_location_id,
                        entity=entity,
                        rows=fresh(rows[start : start + BATCH]),
                        now=utcnow(),
                    )

    async def timed(self, label: str, n: int, work: Callable[[], Awaitable[Any]]) -> Any:
        await self.clock.start()
        cpu, started = time.process_time(), time.perf_counter()
        outcome = await work()
        elapsed = time.perf_counter() - started
        python = time.process_time() - cpu
        postgres = await self.clock.stop()
        self.results.append((label, n, elapsed))
        print(
            f"  {label:<56} {n:>9,} rows {elapsed:7.2f} s {n / elapsed:>9,.0f} rows/s"
            f"   cpu/row: python {python / n * 1e6:5.1f} us, postgres {postgres / n * 1e6:5.1f} us"
            f"   load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        return outcome

    def copy_tuples(self, entity: str, rows: list[dict[str, Any]]) -> Any:
        """The validated (id, external id, columns...) tuples of `rows`, prepared outside
        the timing; references are left out (the floor has no look-ups to make)."""
        spec = ENTITIES[entity]
        valid = validate_rows(spec, rows, "US", [])
        ids = new_ids(spec.id_kind, len(valid))
        columns = ["id", "external_id", *spec.columns]
        records = [
            (our_id, row.external_id, *(getattr(row, c) for c in spec.columns))  # type: ignore[attr-defined]
            for our_id, row in zip(ids, valid, strict=True)
        ]
        return spec, columns, records

    async def copy_floor(self, prepared: Any, *, shaped: bool = False) -> None:
        """COPY the same tuples into an index-less scratch table: the floor. `shaped`: into
        a table shaped like the real one instead (its indexes, unique keys, check
        constraints and location check; COPY as the owner, so no row-level security):
        what PostgreSQL alone needs to put these rows where sync_batch puts them."""
        spec, columns, records = prepared
        if shaped:
            table = f"shaped_{spec.table_name}"
            await self.admin.execute(f"DROP TABLE IF EXISTS {table}")
            await self.admin.execute(
                f"CREATE TABLE {table} (LIKE {spec.table_name} INCLUDING DEFAULTS "
                "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
            )
            # The location key as the real table has it: patients check it once per
            # statement (alembic 0017), the other tables with a foreign key.
            if spec.table_name == "patients":
                await self.admin.execute(
                    f"CREATE TRIGGER shaped_location AFTER INSERT ON {table} "
                    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                    "EXECUTE FUNCTION patients_location_inserted()"
                )
            else:
                await self.admin.execute(
                    f"ALTER TABLE {table} ADD FOREIGN KEY (tenant_id, location_id) "
                    "REFERENCES locations (tenant_id, id)"
                )
            columns = ["tenant_id", "location_id", *columns]
            records = [(self.tenant_id, self.location_id, *r) for r in records]
        else:
            table = f"scratch_{spec.table_name}"
            await self.admin.execute(f"DROP TABLE IF EXISTS {table}")
            await self.admin.execute(
                f"CREATE TABLE {table} AS SELECT {', '.join(columns)} FROM {spec.table_name} "
                "WITH NO DATA"
            )
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.copy_records_to_table(table, records=records, columns=columns)
            # Counted by the clock while the backend is still there.
            await self.clock.sample()
        finally:
            await conn.close()

    @asynccontextmanager
    async def http_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The app in-process, started before the clock starts (as a server would be)."""
        settings = Settings(
            database_url=self.database_url,
            redis_url=self.redis_url,
            log_level="WARNING",
            rate_limits=RateLimitSettings(enabled=False),
        )
        app = create_app(settings)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                yield client

    async def http(self, client: httpx.AsyncClient, bodies: list[bytes]) -> None:
        for body in bodies:
            response = await client.post(
                f"/v1/sync/locations/{self.location_id}/patients",
                content=body,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": str(uuid.uuid4()),
                },
                timeout=120,
            )
            response.raise_for_status()


def fresh(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """New dicts with the same values: a batch's rows as young objects, like a request's."""
    return [dict(row) for row in rows]


def request_bodies(rows: list[dict[str, Any]]) -> list[bytes]:
    return [
        json.dumps({"rows": rows[start : start + BATCH]}).encode()
        for start in range(0, len(rows), BATCH)
    ]


async def main(patients: int, appointments: int, http_rows: int, first_load_only: bool) -> None:
    admin = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    if not admin:
        raise SystemExit("Set DATABASE_URL (an admin URL; a scratch database is created)")
    database_url = recreate_database(admin)
    upgrade(database_url)
    bench = Bench(database_url, redis_url)
    await bench.setup()
    await bench.open_clock()
    p0, p1 = patient_rows(patients), patient_rows(patients, version=1)
    appts = appointment_rows(appointments, patients)
    p_tuples = bench.copy_tuples("patients", p0)
    a_tuples = bench.copy_tuples("appointments", appts)
    bodies = request_bodies(p0[:http_rows])
    # The inputs are no part of the work measured (the module docstring).
    gc.collect()
    gc.freeze()
    print(f"postgres: {database_url.rsplit('@', 1)[-1]}   batch: {BATCH:,} rows / transaction")
    await bench.timed(
        "patients  COPY into index-less scratch table (floor)",
        patients,
        lambda: bench.copy_floor(p_tuples),
    )
    await bench.timed(
        "patients  COPY into a table shaped like patients (indexes, keys)",
        patients,
        lambda: bench.copy_floor(p_tuples, shaped=True),
    )
    await bench.timed(
        "patients  sync_batch: first load (inserts)", patients, lambda: bench.sync("patients", p0)
    )
    if first_load_only:
        await bench.admin.close()
        return
    await bench.timed(
        "patients  sync_batch: every row changed (updates)",
        patients,
        lambda: bench.sync("patients", p1),
    )
    await bench.timed(
        "patients  sync_batch: nothing changed", patients, lambda: bench.sync("patients", p1)
    )
    async with bench.http_client() as client:
        await bench.timed(
            f"patients  HTTP POST /v1/sync/.../patients, rows changed ({BATCH // 1000}k/request)",
            http_rows,
            lambda: bench.http(client, bodies),
        )
    gc.freeze()  # again: the app unfreezes everything when it stops
    await bench.timed(
        "appointments  COPY into index-less scratch table (floor)",
        appointments,
        lambda: bench.copy_floor(a_tuples),
    )
    await bench.timed(
        "appointments  sync_batch: first load (inserts)",
        appointments,
        lambda: bench.sync("appointments", appts),
    )
    await bench.timed(
        "appointments  sync_batch: nothing changed",
        appointments,
        lambda: bench.sync("appointments", appts),
    )
    await bench.timed(
        "patients + appointments: first load in ONE transaction (a connector's first run)",
        patients + appointments,
        lambda: bench.one_transaction([("patients", p0), ("appointments", appts)]),
    )
    await bench.admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--http-rows", type=int, default=20_000)
    parser.add_argument(
        "--first-load-only",
        action="store_true",
        help="Stop after the patients' first load (the floors, then sync_batch): short enough "
        "to alternate runs of two versions of the code in the same minutes.",
    )
    args = parser.parse_args()
    asyncio.run(main(args.patients, args.appointments, args.http_rows, args.first_load_only))
