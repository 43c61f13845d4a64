"""Webhook delivery throughput and latency, next to the floor (a bare httpx POST loop).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python -m bench.webhooks.run \\
        [--events 5000] [--rate 1000] [--batch 50] [--workers 1,2]

Builds a scratch database (`cf_bench_webhooks`, migrated from scratch), FLUSHDBs the given
Redis database, starts a receiver in a process of its own (bench/webhooks/receiver.py:
records webhook-id and arrival time, answers 200) and one tenant with one endpoint
pointing at it. Events are recorded through `record_event` (event, delivery and job rows
in one transaction per batch; jobs pushed to Redis after commit). Then, with 1 and with 2
`python -m workers --queue webhooks` processes:

* drain: N events recorded while no worker runs, then the workers start; deliveries/s is
  first to last arrival at the receiver (the backlog drains at full speed);
* live: the workers run and N events are recorded at `--rate` events/s in `--batch`
  batches; latency is batch commit -> arrival of each delivery's first attempt.

Lost = deliveries that never arrived (20 s without progress ends the wait); duplicates =
arrivals beyond one per delivery. Worker CPU counts from "workers_started" to the end
(start-up imports left out).

The floor is N bare POSTs to the same receiver from one process, as the issue asks: with
httpx at the worker's POST concurrency (IN_FLIGHT), with httpx at 20 (its connection pool
slows down as it grows, so this is httpx at its best here), and with aiohttp at IN_FLIGHT
(the client the worker uses).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import psutil
import psycopg
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from api.core import jobs
from api.core.clock import utcnow
from api.core.db import after_commit, session_maker, unit_of_work
from api.core.ids import new_id
from api.core.migrate import upgrade
from api.core.settings import Settings
from api.events.outbox import record_event
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import TenantCreate
from api.webhooks import signing
from api.webhooks.models import WebhookDelivery, WebhookEndpoint
from workers.tasks.webhooks import IN_FLIGHT

DB_NAME = "cf_bench_webhooks"
HTTPX_BEST = 20
STALL_SECONDS = 20.0
FLOOR_BODY = b'{"type":"webhook.test","timestamp":"2026-11-23T00:00:00Z","data":{}}'
ROOT = Path(__file__).resolve().parents[2]


def recreate_database(admin_url: str) -> str:
    url = make_url(admin_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return url.set(database=DB_NAME).render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Row:
    run: str
    rate: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    lost: int | None = None
    duplicates: int | None = None
    note: str = ""


class Bench:
    def __init__(self, database_url: str, redis_url: str, log_level: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.log_level = log_level
        self.sessions = session_maker(database_url)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.control = httpx.AsyncClient(base_url=self.base, timeout=30)
        self.logs = Path(tempfile.mkdtemp(prefix="cf-bench-webhooks-"))
        self.receiver: subprocess.Popen[bytes] | None = None

    # --- set-up ------------------------------------------------------------------------

    async def start_receiver(self) -> None:
        self.receiver = subprocess.Popen(
            [sys.executable, "-m", "bench.webhooks.receiver", "--port", str(self.port)], cwd=ROOT
        )
        for _ in range(100):
            try:
                await self.control.get("/_count")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        raise SystemExit("the receiver did not start")

    async def setup(self) -> None:
        secret_key = Settings().secret_key
        async with unit_of_work(self.sessions) as session:
            tenant = await tenancy_service.create_tenant(session, TenantCreate(name="Bench Dental"))
        self.tenant_id = tenant.id
        async with unit_of_work(self.sessions, tenant.id) as session:
            now = utcnow()
            session.add(
                WebhookEndpoint(
                    tenant_id=tenant.id,
                    id=new_id("webhook_endpoint"),
                    url=f"{self.base}/hook",
                    event_types=["*"],
                    enabled=True,
                    secret_ciphertext=signing.encrypt_secret(
                        secret_key, signing.new_endpoint_secret()
                    ),
                    created_at=now,
                    updated_at=now,
                )
            )
        self.queue = await jobs.JobQueue.connect(self.redis_url)
        jobs.activate(self.queue)
        self.redis = Redis.from_url(self.redis_url)

    async def reset(self) -> None:
        async with unit_of_work(self.sessions) as session:
            await session.execute(
                text("TRUNCATE webhook_attempts, webhook_deliveries, events, jobs CASCADE")
            )
        await self.redis.flushdb()
        await self.control.post("/_reset")

    # --- recording events --------------------------------------------------------------

    async def record(
        self, n: int, batch: int, rate: float | None
    ) -> tuple[dict[str, float], float]:
        """Record n events; returns {delivery id: commit time} and events recorded/s."""
        committed_at: dict[str, float] = {}  # event id -> commit time
        started = time.time()
        for index, first in enumerate(range(0, n, batch)):
            if rate:
                due = started + index * batch / rate
                await asyncio.sleep(max(0.0, due - time.time()))
            async with unit_of_work(self.sessions, self.tenant_id) as session:
                stamp: dict[str, float] = {}

                async def _stamp(stamp: dict[str, float] = stamp) -> None:
                    stamp["at"] = time.time()

                # First in line: runs right after the commit, before the jobs are pushed.
                after_commit(session, _stamp)
                events = [
                    await record_event(
                        session,
                        tenant_id=self.tenant_id,
                        type="webhook.test",
                        data={"endpoint_id": "-", "message": f"bench event {i}"},
                    )
                    for i in range(first, min(n, first + batch))
                ]
            committed_at.update({e.id: stamp["at"] for e in events})
        recorded_per_s = n / (time.time() - started)
        async with unit_of_work(self.sessions) as session:
            stmt = select(WebhookDelivery.id, WebhookDelivery.event_id)
            rows = (await session.execute(stmt)).all()
        return {d: committed_at[e] for d, e in rows if e in committed_at}, recorded_per_s

    # --- workers and the receiver's log ------------------------------------------------

    def start_workers(self, count: int, label: str) -> list[tuple[subprocess.Popen[bytes], Path]]:
        env = os.environ | {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CHAIRFILL_LOG_LEVEL": self.log_level,
        }
        started = []
        for i in range(count):
            log = self.logs / f"{label}-worker{i}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "workers", "--queue", "webhooks"],
                    env=env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=out,
                )
            started.append((process, log))
        return started

    async def wait_started(self, workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
        deadline = time.monotonic() + 60
        while not all("workers_started" in log.read_text() for _, log in workers):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in workers):
                raise SystemExit(f"a worker did not start; see {self.logs}")
            await asyncio.sleep(0.05)

    @staticmethod
    def cpu_seconds(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> float:
        """CPU seconds (user + system) the workers used so far."""
        times = [psutil.Process(process.pid).cpu_times() for process, _ in workers]
        return sum(t.user + t.system for t in times)

    def stop_workers(self, workers: list[tuple[subprocess.Popen[bytes], Path]]) -> float:
        """Stop the workers; returns the CPU seconds they used since they started."""
        cpu = self.cpu_seconds(workers)
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, _ in workers:
            process.wait(timeout=60)
        return cpu

    async def arrivals(self, expected: set[str], path: str = "/hook") -> list[tuple[str, float]]:
        """Wait until every expected id arrived (or nothing moves for STALL_SECONDS)."""
        last_count, last_change = -1, time.monotonic()
        while True:
            count = int((await self.control.get("/_count", params={"path": path})).text)
            if count >= len(expected):
                records = (await self.control.get("/_records", params={"path": path})).json()
                if expected <= {r[0] for r in records}:
                    await asyncio.sleep(0.5)  # let late duplicates land
                    break
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                break
            await asyncio.sleep(0.05)
        records = (await self.control.get("/_records", params={"path": path})).json()
        return [(str(r[0]), float(r[1])) for r in records]

    @staticmethod
    def measure(
        label: str,
        sent: dict[str, float],
        records: list[tuple[str, float]],
        latency: bool,
        note: str,
    ) -> Row:
        first_arrival: dict[str, float] = {}
        for webhook_id, at in records:
            first_arrival[webhook_id] = min(at, first_arrival.get(webhook_id, at))
        arrived = [first_arrival[d] for d in sent if d in first_arrival]
        span = max(arrived) - min(arrived) if len(arrived) > 1 else float("nan")
        row = Row(
            run=label,
            rate=len(arrived) / span if span else float("nan"),
            lost=len(set(sent) - set(first_arrival)),
            duplicates=len(records) - len(first_arrival),
            note=note,
        )
        if latency:
            waits = [(first_arrival[d] - t) * 1000 for d, t in sent.items() if d in first_arrival]
            row.p50_ms, row.p99_ms = percentile(waits, 0.50), percentile(waits, 0.99)
        return row

    # --- the runs ----------------------------------------------------------------------

    async def drain(self, workers: int, n: int, batch: int) -> Row:
        await self.reset()
        sent, _ = await self.record(n, max(batch, 500), rate=None)
        running = self.start_workers(workers, f"drain{workers}")
        started_cpu = 0.0
        try:
            await self.wait_started(running)
            started_cpu = self.cpu_seconds(running)
            records = await self.arrivals(set(sent))
        finally:
            cpu = self.stop_workers(running) - started_cpu
        note = f"{n:,} queued first; worker CPU {cpu / n * 1000:.2f} ms/delivery"
        return self.measure(f"drain, {workers} worker process(es)", sent, records, False, note)

    async def live(self, workers: int, n: int, batch: int, rate: float) -> Row:
        await self.reset()
        running = self.start_workers(workers, f"live{workers}")
        started_cpu = 0.0
        try:
            await self.wait_started(running)
            await asyncio.sleep(0.5)
            started_cpu = self.cpu_seconds(running)
            sent, recorded = await self.record(n, batch, rate)
            records = await self.arrivals(set(sent))
        finally:
            cpu = self.stop_workers(running) - started_cpu
        note = (
            f"offered {rate:,.0f}/s in batches of {batch}, recorded {recorded:,.0f}/s; "
            f"worker CPU {cpu / n * 1000:.2f} ms/delivery"
        )
        return self.measure(f"live, {workers} worker process(es)", sent, records, True, note)

    async def floor(self, n: int, concurrency: int, client: str) -> Row:
        await self.control.post("/_reset")
        url = f"{self.base}/floor"
        waits: list[float] = []
        ids = iter(range(n))

        async def loop(post: Callable[[int], Awaitable[None]]) -> None:
            for i in ids:
                started = time.perf_counter()
                await post(i)
                waits.append((time.perf_counter() - started) * 1000)

        def headers(i: int) -> dict[str, str]:
            return {"webhook-id": f"floor_{i}", "content-type": "application/json"}

        if client == "httpx":
            pool = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            async with httpx.AsyncClient(limits=pool, timeout=30) as http:

                async def post_httpx(i: int) -> None:
                    response = await http.post(url, content=FLOOR_BODY, headers=headers(i))
                    response.raise_for_status()

                await asyncio.gather(*(loop(post_httpx) for _ in range(concurrency)))
        else:
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def post_aiohttp(i: int) -> None:
                    async with session.post(url, data=FLOOR_BODY, headers=headers(i)) as response:
                        response.raise_for_status()
                        await response.read()

                await asyncio.gather(*(loop(post_aiohttp) for _ in range(concurrency)))
        records = await self.arrivals({f"floor_{i}" for i in range(n)}, "/floor")
        label = f"floor: bare {client} POST loop ({concurrency})"
        row = self.measure(label, {}, records, False, "")
        times = [at for _, at in records]
        row.rate = len(records) / (max(times) - min(times))
        row.lost, row.duplicates = n - len({r[0] for r in records}), 0
        row.p50_ms, row.p99_ms = percentile(waits, 0.5), percentile(waits, 0.99)
        row.note = f"{concurrency} concurrent requests, one process; latency = round trip"
        return row

    async def close(self) -> None:
        await self.control.aclose()
        await self.queue.close()
        await self.redis.aclose()
        if self.receiver is not None:
            self.receiver.terminate()
            try:
                self.receiver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # A loaded machine can take longer to let it finish; the figures are out.
                self.receiver.kill()
                self.receiver.wait()


def print_table(rows: list[Row]) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    header = f"| {'run':<36} | {'per s':>7} | {'p50 ms':>6} | {'p99 ms':>6} | lost | dups | notes"
    print(header)
    print("|" + "-" * 38 + "|---------:|-------:|-------:|-----:|-----:|------")
    for r in rows:
        print(
            f"| {r.run:<36} | {r.rate:>7,.0f} | {ms(r.p50_ms):>6} | {ms(r.p99_ms):>6} "
            f"| {r.lost:>4} | {r.duplicates:>4} | {r.note}"
        )


async def main(
    n: int, rate: float, batch: int, worker_counts: list[int], log_level: str, runs: list[str]
) -> None:
    admin = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    if not admin:
        raise SystemExit("Set DATABASE_URL (an admin URL; a scratch database is created)")
    database_url = recreate_database(admin)
    upgrade(database_url)
    bench = Bench(database_url, redis_url, log_level)
    concurrency = IN_FLIGHT
    try:
        await bench.start_receiver()
        await bench.setup()
        print(
            f"events: {n:,}   POSTs in flight per worker: {concurrency}   "
            f"CPUs: {os.cpu_count()}   load average: {os.getloadavg()[0]:.1f}   "
            f"worker log level: {log_level}   logs: {bench.logs}"
        )
        floors = (("httpx", concurrency), ("httpx", HTTPX_BEST), ("aiohttp", concurrency))
        rows = [await bench.floor(n, c, client) for client, c in floors]
        for workers in worker_counts:
            if "drain" in runs:
                rows.append(await bench.drain(workers, n, batch))
            if "live" in runs:
                rows.append(await bench.live(workers, n, batch, rate))
        print_table(rows)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        await bench.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="live runs: events/s")
    parser.add_argument("--batch", type=int, default=50, help="live runs: events/transaction")
    parser.add_argument("--workers", default="1,2", help="worker process counts to run")
    parser.add_argument("--log-level", default="INFO", help="the workers' CHAIRFILL_LOG_LEVEL")
    parser.add_argument("--runs", default="drain,live", help="which runs: drain, live or both")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    runs = args.runs.split(",")
    asyncio.run(main(args.events, args.rate, args.batch, counts, args.log_level, runs))
