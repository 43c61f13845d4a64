"""Cadence dispatch at scale: 100,000 active enrollments, all due.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python -m bench.cadences.run \\
        [--patients 100000] [--batch 500] [--ticks 10]

Builds a scratch database (`cf_bench_cadences`), one practice of N patients pushed through
the bridge's ingest, the built-in win-back cadence, and enrolls every patient (the first
10,000 through the service, timed; the rest copied in one statement). Then, in one run, on
the same table:

* floor: a plain indexed query for the next `batch` due enrollments (no lock, no join);
* due-step selection as the dispatcher runs it (join to the cadence, FOR UPDATE SKIP
  LOCKED), in a transaction that changes nothing;
* the exit sweep over all active enrollments (every exit condition, set-based);
* whole dispatch ticks (`api.cadences.service.dispatch_due`): exits, selection, and each
  step through the send ledger (render, suppression checks, a `messages` row and its job),
  committed, `--ticks` times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from api.auth.principal import Principal
from api.cadences import exits, repository, service
from api.cadences.schemas import CadenceCreate
from api.core.clock import utcnow
from api.core.db import session_maker, unit_of_work
from api.core.migrate import upgrade
from api.core.settings import Settings
from api.practice import ingest
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate
from bench.booking.common import scratch_database

DB_NAME = "cf_bench_cadences"
BATCH_ROWS = 10_000
ENROLL_TIMED = 10_000
ENROLL_REST = text(
    """
    INSERT INTO cadence_enrollments (tenant_id, id, cadence_id, patient_id, location_id,
        variant, source, status, enrolled_at, cycle, next_position, next_due_at,
        had_recall_due, balance_at_enrollment)
    SELECT p.tenant_id, 'enr_bench_' || p.id, :cadence_id, p.id, p.location_id, 'default',
        'manual', 'active', now(), to_char(now(), 'YYYY-MM'), 1, now(), false, 0
    FROM patients p ORDER BY p.id OFFSET :skip
    """
)

FLOOR_SQL = text(
    """
    SELECT id, patient_id, next_position FROM cadence_enrollments
    WHERE tenant_id = :tenant_id AND status = 'active' AND next_due_at <= :now
    ORDER BY next_due_at LIMIT :limit
    """
)


def patient_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"P{i}",
            "first_name": f"Pat{i}",
            "last_name": "Bench",
            "status": "active",
            "mobile": f"+1512{5550000 + i % 10_000_000:07d}"[:12],
            "email": f"p{i}@example.com",
            "sms_consent": True,
            "email_consent": True,
            "last_visit_date": "2025-03-01",
        }
        for i in range(n)
    ]


async def timed(label: str, work: Callable[[], Awaitable[Any]], repeat: int = 1) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - start)
    return samples


async def main(patients: int, batch: int, ticks: int) -> None:
    admin = os.environ["DATABASE_URL"]
    url = scratch_database(admin, DB_NAME)
    upgrade(url)
    sessions = session_maker(url)
    settings = Settings(database_url=url, redis_url=os.environ["REDIS_URL"])
    async with unit_of_work(sessions) as session:
        tenant = await tenancy_service.create_tenant(session, TenantCreate(name="Bench Dental"))
        location = await tenancy_service.create_location(
            session, tenant.id, LocationCreate(name="Main", timezone="America/Chicago")
        )
    rows = patient_rows(patients)
    start = time.perf_counter()
    for offset in range(0, patients, BATCH_ROWS):
        async with unit_of_work(sessions, tenant.id) as session:
            now = utcnow()
            await ingest.sync_batch(
                session,
                tenant_id=tenant.id,
                location_id=location.id,
                entity="patients",
                rows=rows[offset : offset + BATCH_ROWS],
                watermark=now,
                now=now,
            )
    load_s = time.perf_counter() - start
    principal = Principal(
        tenant_id=tenant.id,
        kind="client",
        client_id="bench",
        scopes=frozenset({"communications:manage"}),
        location_ids=None,
    )
    async with unit_of_work(sessions, tenant.id) as session:
        cadence = await service.create_cadence(
            session, principal, CadenceCreate(name="Bench", template="winback"), utcnow()
        )
        ids = [r[0] for r in await session.execute(text("SELECT id FROM patients ORDER BY id"))]
    # The service enrolls the first 10,000 (timed: checks, rows and a cadence.enrolled
    # event each); the rest are copied from them in one statement, as setup only.
    timed_ids = ids[:ENROLL_TIMED]
    start = time.perf_counter()
    async with unit_of_work(sessions, tenant.id) as session:
        fresh = await repository.get_cadence(session, tenant.id, cadence.id, None)
        assert fresh is not None
        await service._enroll(
            session,
            fresh,
            timed_ids,
            variant="default",
            source="manual",
            segment_id=None,
            now=utcnow(),
        )
    enroll_s = time.perf_counter() - start
    async with unit_of_work(sessions, tenant.id) as session:
        await session.execute(ENROLL_REST, {"cadence_id": cadence.id, "skip": len(timed_ids)})
    async with unit_of_work(sessions, tenant.id) as session:
        # Everyone due now: the worst tick.
        await session.execute(
            text("UPDATE cadence_enrollments SET next_due_at = now() - interval '1 minute'")
        )
    async with unit_of_work(sessions) as session:
        await session.execute(text("ANALYZE"))

    now = utcnow()

    async def floor() -> None:
        async with unit_of_work(sessions, tenant.id) as session:
            found = list(
                await session.execute(
                    FLOOR_SQL, {"tenant_id": tenant.id, "now": now, "limit": batch}
                )
            )
            assert len(found) == batch

    async def selection() -> None:
        # Locks and lets go (the transaction changes nothing).
        async with unit_of_work(sessions, tenant.id) as session:
            found = await repository.due_enrollments(session, tenant.id, now, batch)
            assert len(found) == batch

    async def sweep() -> None:
        async with unit_of_work(sessions, tenant.id) as session:
            assert await exits.apply_exits(session, tenant.id, now) == 0

    floor_s = await timed("floor", floor, 20)
    select_s = await timed("selection", selection, 20)
    sweep_s = await timed("sweep", sweep, 5)
    tick_s: list[float] = []
    for _ in range(ticks):

        async def tick() -> None:
            async with unit_of_work(sessions, tenant.id) as session:
                result = await service.dispatch_due(session, tenant.id, utcnow(), settings, batch)
                assert result["steps"] == batch

        tick_s += await timed("tick", tick)
    async with sessions() as session:
        counts = dict(
            list(
                await session.execute(
                    text("SELECT status, count(*) FROM messages GROUP BY status ORDER BY 1")
                )
            )
        )
        runs = (await session.execute(text("SELECT count(*) FROM cadence_step_runs"))).scalar_one()

    def ms(values: list[float]) -> str:
        return f"p50 {statistics.median(values) * 1000:8.1f} ms   max {max(values) * 1000:8.1f} ms"

    def row(label: str, figures: str) -> None:
        print(f"  {label:<44} {figures}")

    ratio = statistics.median(select_s) / statistics.median(floor_s)
    print(f"postgres: {url.rsplit('@', 1)[-1]}   enrollments: {patients:,}   batch: {batch}")
    row("load patients (sync_batch)", f"{load_s:7.2f} s")
    enrolled = min(patients, ENROLL_TIMED)
    row(
        f"enroll {enrolled:,} through the service (one txn)",
        f"{enroll_s:7.2f} s   {enrolled / enroll_s:9,.0f} enrollments/s",
    )
    row(f"floor: plain indexed due query ({batch})", ms(floor_s))
    row("due-step selection (join + SKIP LOCKED)", f"{ms(select_s)}   {ratio:.2f}x floor")
    row(f"exit sweep over {patients:,} active", ms(sweep_s))
    row(
        f"dispatch tick ({batch} steps, committed)",
        f"{ms(tick_s)}   {batch / statistics.median(tick_s):7,.0f} steps/s",
    )
    print(f"  ledger after {ticks} ticks: {counts}   step runs: {runs:,}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.patients, args.batch, args.ticks))
