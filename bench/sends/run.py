"""Campaign send throughput through the arq `sends` queue, next to the floor.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python -m bench.sends.run \\
        [--recipients 100000] [--workers 1,2] [--no-kill]

Builds a scratch database (`cf_bench_sends`, migrated from scratch), FLUSHDBs the Redis
database, starts the sinks in a process of their own (bench/sends/sinks.py: an aiosmtpd
SMTP server and a Twilio-compatible HTTP receiver on loopback) and one practice with one
location and N patients (half prefer SMS, half email), its email provider the SMTP sink
and its SMS provider the HTTP sink. Then:

* floor: the same N messages sent straight to the sinks by a bare loop (the same provider
  classes the workers use, the same concurrency), no database, no queue;
* for 1 and 2 `python -m workers --queue sends` processes: one campaign (SMS and email,
  by preference) submitted through the campaign service; messages/s is submit to the last
  arrival at the sinks, and first to last arrival;
* kill: the same with 2 workers, one killed with SIGKILL when 40% have arrived and a new
  one started.

Lost = patients whose message never arrived (60 s without progress ends the wait);
duplicates = arrivals beyond one per patient. Every patient has their own address, so
the sinks count per recipient.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy import text

from api.auth.principal import Principal
from api.auth.scopes import ALL_SCOPES
from api.campaigns import service as campaigns
from api.campaigns.schemas import CampaignCreate
from api.core import jobs
from api.core.clock import utcnow
from api.core.db import session_maker, unit_of_work
from api.core.embedded import free_port
from api.core.migrate import upgrade
from api.core.settings import Settings
from api.messaging import provider_settings
from api.messaging.batch import SEND_CONCURRENCY
from api.messaging.providers.base import OutboundMessage
from api.messaging.providers.smtp import SmtpConfig, SmtpProvider
from api.messaging.providers.twilio import TwilioConfig, TwilioProvider
from api.messaging.schemas import SmtpProviderIn, TwilioProviderIn
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate
from bench.booking.common import scratch_database

DB_NAME = "cf_bench_sends"
ROOT = Path(__file__).resolve().parents[2]
STALL_SECONDS = 60
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "bench-auth-token"
SMS_BODY = "Hi {{patient.first_name}}, {{office.name}} has openings this week: {{booking.link}}"
EMAIL = {
    "channel": "email",
    "subject": "Openings this week, {{patient.first_name}}",
    "blocks": [
        {"type": "heading", "text": "We have openings"},
        {"type": "paragraph", "text": "Call {{office.phone}} or book online."},
    ],
}


@dataclass
class Row:
    run: str
    messages: int
    seconds: float
    first_to_last: float | None
    lost: int
    duplicates: int
    note: str = ""


class Bench:
    def __init__(self, database_url: str, redis_url: str, n: int, log_level: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.n = n
        self.log_level = log_level
        self.sessions = session_maker(database_url)
        self.smtp_port, self.http_port = free_port(), free_port()
        self.control = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}")
        self.logs = Path(tempfile.mkdtemp(prefix="cf-bench-sends-"))
        self.sinks: subprocess.Popen[bytes] | None = None

    # --- set-up --------------------------------------------------------------------------

    async def start_sinks(self) -> None:
        self.sinks = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.sends.sinks",
                "--smtp-port",
                str(self.smtp_port),
                "--http-port",
                str(self.http_port),
            ],
            cwd=ROOT,
        )
        for _ in range(100):
            try:
                await self.control.get("/_stats")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        raise SystemExit("the sinks did not start")

    async def setup(self) -> None:
        settings = Settings()
        async with unit_of_work(self.sessions) as session:
            tenant = await tenancy_service.create_tenant(session, TenantCreate(name="Bench Dental"))
        self.tenant_id = tenant.id
        async with unit_of_work(self.sessions, tenant.id) as session:
            location = await tenancy_service.create_location(
                session,
                tenant.id,
                LocationCreate(
                    name="Main Street",
                    timezone="America/Chicago",
                    sms_registration_complete=True,
                    phone="+15125550199",
                ),
            )
            self.location_id = location.id
            await provider_settings.put_provider(
                session,
                tenant.id,
                "email",
                SmtpProviderIn(
                    kind="smtp",
                    host="127.0.0.1",
                    port=self.smtp_port,
                    security="none",
                    from_address="hello@bench.example",
                ),
                settings,
            )
            await provider_settings.put_provider(
                session,
                tenant.id,
                "sms",
                TwilioProviderIn(
                    kind="twilio",
                    account_sid=ACCOUNT_SID,
                    auth_token=AUTH_TOKEN,
                    from_number="+15125550199",
                    base_url=f"http://127.0.0.1:{self.http_port}",
                ),
                settings,
            )
            await session.execute(
                text(
                    "INSERT INTO patients (tenant_id, id, location_id, external_id, first_name, "
                    "last_name, status, mobile, email, communication_preference, sms_consent, "
                    "email_consent) SELECT :tenant, 'pat_bench_' || lpad(i::text, 7, '0'), "
                    ":location, 'ext' || i, 'Pat' || i, 'Bench', 'active', "
                    "'+1512' || lpad(i::text, 7, '0'), 'p' || i || '@bench.example', "
                    "CASE WHEN i % 2 = 0 THEN 'sms' ELSE 'email' END, true, true "
                    "FROM generate_series(1, :n) AS i"
                ),
                {"tenant": tenant.id, "location": location.id, "n": self.n},
            )
        self.principal = Principal(
            tenant_id=tenant.id,
            kind="client",
            client_id="bench",
            scopes=frozenset(ALL_SCOPES),
            location_ids=None,
        )
        self.queue = await jobs.JobQueue.connect(self.redis_url)
        jobs.activate(self.queue)
        self.redis = Redis.from_url(self.redis_url)

    async def reset(self) -> None:
        async with unit_of_work(self.sessions) as session:
            await session.execute(
                text(
                    "TRUNCATE campaigns, campaign_recipients, messages, jobs, events, "
                    "webhook_deliveries, communication_log, writebacks CASCADE"
                )
            )
        await self.redis.flushdb()
        await self.control.post("/_reset")

    async def stats(self) -> dict[str, dict[str, float]]:
        response = await self.control.get("/_stats")
        stats: dict[str, dict[str, float]] = response.json()
        return stats

    # --- the floor -----------------------------------------------------------------------

    async def floor(self) -> Row:
        await self.reset()
        smtp = SmtpProvider(
            SmtpConfig(
                host="127.0.0.1",
                port=self.smtp_port,
                security="none",
                from_address="hello@bench.example",
            ),
            15,
        )
        http_client = httpx.AsyncClient(limits=httpx.Limits(max_connections=SEND_CONCURRENCY))
        twilio = TwilioProvider(
            TwilioConfig(
                account_sid=ACCOUNT_SID,
                auth_token=AUTH_TOKEN,
                from_number="+15125550199",
                base_url=f"http://127.0.0.1:{self.http_port}",
            ),
            15,
            http_client,
        )
        # The concurrency of one batch job per worker slot: what the workers may use.
        limit = asyncio.Semaphore(SEND_CONCURRENCY * 2)

        async def _one(i: int) -> None:
            sms = i % 2 == 0
            message = OutboundMessage(
                message_id=f"mes_floor_{i}",
                channel="sms" if sms else "email",
                to=f"+1512{i:07d}" if sms else f"p{i}@bench.example",
                body_text=f"Hi Pat{i}, Main Street has openings this week: http://x/book",
                subject=None if sms else f"Openings this week, Pat{i}",
            )
            async with limit:
                await (twilio if sms else smtp).send(message)

        started = time.time()
        await asyncio.gather(*(_one(i) for i in range(1, self.n + 1)))
        elapsed = time.time() - started
        await http_client.aclose()
        return self.row(
            "floor: bare loop straight to the sinks", started, elapsed, await self.stats()
        )

    # --- workers -------------------------------------------------------------------------

    def start_worker(self, label: str) -> tuple[subprocess.Popen[bytes], Path]:
        env = os.environ | {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CHAIRFILL_LOG_LEVEL": self.log_level,
        }
        log = self.logs / f"{label}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "workers", "--queue", "sends"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=out,
            )
        return process, log

    async def wait_started(self, workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
        deadline = time.monotonic() + 60
        while not all("workers_started" in log.read_text() for _, log in workers):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in workers):
                raise SystemExit(f"a worker did not start; see {self.logs}")
            await asyncio.sleep(0.05)

    async def submit(self) -> str:
        data = CampaignCreate.model_validate(
            {
                "name": "Bench campaign",
                "channels": ["sms", "email"],
                "campaign_type": "instant",
                "location_ids": [self.location_id],
                "sms": {"channel": "sms", "body": SMS_BODY},
                "email": EMAIL,
                "recipients": {
                    "kind": "filters",
                    "rule": {
                        "version": 1,
                        "rule": {"field": "status", "op": "in", "value": ["active"]},
                    },
                },
            }
        )
        async with unit_of_work(self.sessions, self.tenant_id) as session:
            campaign = await campaigns.create_campaign(session, self.principal, data, utcnow())
            await campaigns.submit_campaign(session, self.principal, campaign.id, utcnow())
        return campaign.id

    async def campaign_status(self, campaign_id: str) -> str:
        async with unit_of_work(self.sessions, self.tenant_id) as session:
            found = await session.execute(
                text("SELECT status FROM campaigns WHERE id = :id"), {"id": campaign_id}
            )
            return str(found.scalar_one())

    async def run(self, workers: int, kill: bool) -> Row:
        await self.reset()
        label = f"{workers}w{'-kill' if kill else ''}"
        running = [self.start_worker(f"{label}-{i}") for i in range(workers)]
        await self.wait_started(running)
        started = time.time()
        campaign_id = await self.submit()
        killed = False
        last_total, last_change = -1.0, time.monotonic()
        while True:
            stats = await self.stats()
            total = sum(s["received"] for s in stats.values())
            if kill and not killed and total >= 0.4 * self.n:
                victim, _ = running.pop(0)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                replacement = self.start_worker(f"{label}-replacement")
                await self.wait_started([replacement])
                running.append(replacement)
                killed = True
            distinct = sum(s["distinct"] for s in stats.values())
            if distinct >= self.n and await self.campaign_status(campaign_id) == "completed":
                break
            if total != last_total:
                last_total, last_change = total, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # let late duplicates land
        stats = await self.stats()
        status = await self.campaign_status(campaign_id)
        for process, _ in running:
            process.send_signal(signal.SIGTERM)
        for process, _ in running:
            process.wait()
        last = max(s["last"] or 0 for s in stats.values())
        note = f"campaign {status}"
        if kill:
            note += "; one worker SIGKILLed at 40% and replaced"
        name = f"campaign, {workers} worker process{'es' if workers > 1 else ''}"
        return self.row(
            name + (", one killed" if kill else ""), started, last - started, stats, note
        )

    def row(
        self,
        name: str,
        started: float,
        elapsed: float,
        stats: dict[str, dict[str, float]],
        note: str = "",
    ) -> Row:
        distinct = int(sum(s["distinct"] for s in stats.values()))
        received = int(sum(s["received"] for s in stats.values()))
        firsts = [s["first"] for s in stats.values() if s["first"]]
        lasts = [s["last"] for s in stats.values() if s["last"]]
        span = (max(lasts) - min(firsts)) if firsts else None
        return Row(name, received, elapsed, span, self.n - distinct, received - distinct, note)

    async def close(self) -> None:
        await self.control.aclose()
        if self.sinks is not None:
            self.sinks.terminate()
            self.sinks.wait()
        jobs.deactivate(self.queue)
        await self.queue.close()
        await self.redis.aclose()


def print_table(rows: list[Row]) -> None:
    print(
        f"| {'run':<44} | {'messages':>8} | {'msg/s':>6} | {'1st→last/s':>10} | lost | dups | notes"
    )
    print("|" + "-" * 46 + "|---------:|-------:|-----------:|-----:|-----:|------")
    for r in rows:
        span = f"{r.messages / r.first_to_last:,.0f}" if r.first_to_last else "-"
        print(
            f"| {r.run:<44} | {r.messages:>8,} | {r.messages / r.seconds:>6,.0f} | {span:>10} "
            f"| {r.lost:>4} | {r.duplicates:>4} | {r.note}"
        )


async def main(n: int, worker_counts: list[int], kill: bool, log_level: str) -> None:
    admin = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    if not admin:
        raise SystemExit("Set DATABASE_URL (an admin URL; a scratch database is created)")
    database_url = scratch_database(admin, DB_NAME)
    upgrade(database_url)
    bench = Bench(database_url, redis_url, n, log_level)
    try:
        await bench.start_sinks()
        await bench.setup()
        print(
            f"recipients: {n:,} (half SMS, half email)   CPUs: {os.cpu_count()}   "
            f"load average: {os.getloadavg()[0]:.1f}   worker logs: {bench.logs}"
        )
        rows = [await bench.floor()]
        print_table(rows[-1:])
        for workers in worker_counts:
            rows.append(await bench.run(workers, kill=False))
            print_table(rows[-1:])
        if kill:
            rows.append(await bench.run(max(2, max(worker_counts)), kill=True))
        print()
        print_table(rows)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        await bench.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2", help="worker process counts to run")
    parser.add_argument("--no-kill", action="store_true", help="skip the killed-worker run")
    parser.add_argument("--log-level", default="INFO", help="the workers' CHAIRFILL_LOG_LEVEL")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    asyncio.run(main(args.recipients, counts, not args.no_kill, args.log_level))
