"""Campaign send throughput through the arq `sends` queue, next to the floor.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python -m bench.sends.run \\
        [--recipients 100000] [--workers 1,2] [--no-kill]

Builds a scratch database (`cf_bench_sends`, migrated from scratch), FLUSHDBs the Redis
database, starts the sinks, one process per channel (bench/sends/sinks.py: an aiosmtpd
SMTP server and a Twilio-compatible HTTP receiver on loopback, both honouring
idempotency keys), and one practice with one location and N patients (half prefer SMS,
half email), its email provider the SMTP sink and its SMS provider the HTTP sink. Then:

* floor: the same N messages sent straight to the sinks by a bare loop (the same provider
  classes and pooled connections the workers use, the same concurrency), no database,
  no queue;
* for 1 and 2 `python -m workers --queue sends` processes: one campaign (SMS and email,
  by preference) submitted through the campaign service; messages/s is submit to the last
  arrival at the sinks, and first to last arrival;
* kill: the same with 2 workers, one killed with SIGKILL when 40% have arrived and a new
  one started.

Every patient has their own address, so the sinks count per recipient. Columns:
lost = patients whose message never arrived (60 s without progress ends the wait);
re-handoffs = messages handed to a sink again under the same idempotency key (our
at-least-once retries; the sink acknowledged them without delivering again);
dup delivered = distinct messages delivered to a recipient beyond one (what a patient
would see twice). CPU: seconds of CPU per message in each process (workers, each sink,
the Postgres backends serving the bench database), from /proc via psutil; the machine
has two cores for all of them, so about 2 ms per message in total is what 1,000
messages/s can afford. The killed worker's own CPU is counted up to its kill.
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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
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
from api.engines import templates as engine
from api.messaging import provider_settings, templates
from api.messaging.batch import SEND_CONCURRENCY
from api.messaging.providers.base import OutboundMessage
from api.messaging.providers.pools import close_pools
from api.messaging.providers.smtp import SmtpConfig, SmtpProvider
from api.messaging.providers.twilio import TwilioConfig, TwilioProvider
from api.messaging.schemas import EmailContent, SmsContent, SmtpProviderIn, TwilioProviderIn
from api.messaging.unsubscribe import (
    UnsubscribeTarget,
    list_unsubscribe_headers,
    public_base,
    unsubscribe_url,
)
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
    delivered: int
    seconds: float
    first_to_last: float | None
    lost: int
    re_handoffs: int
    duplicates: int
    # CPU seconds per message, by process group.
    cpu: dict[str, float]
    note: str = ""


class Bench:
    def __init__(self, database_url: str, redis_url: str, n: int, log_level: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.n = n
        self.log_level = log_level
        self.sessions = session_maker(database_url)
        self.smtp_port, self.http_port, self.control_port = free_port(), free_port(), free_port()
        self.controls = {
            "email": httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.control_port}"),
            "sms": httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}"),
        }
        self.logs = Path(tempfile.mkdtemp(prefix="cf-bench-sends-"))
        self.sinks: list[subprocess.Popen[bytes]] = []
        # Every worker process started, so none outlives the bench (one left polling the
        # queue would take the next run's jobs).
        self.workers: list[subprocess.Popen[bytes]] = []

    # --- set-up --------------------------------------------------------------------------

    async def start_sinks(self) -> None:
        sink = [sys.executable, "-m", "bench.sends.sinks"]
        self.sinks = [
            subprocess.Popen(
                [
                    *sink,
                    *("--channel", "email", "--port", str(self.smtp_port)),
                    *("--control-port", str(self.control_port)),
                ],
                cwd=ROOT,
                preexec_fn=_die_with_parent,
            ),
            subprocess.Popen(
                [*sink, "--channel", "sms", "--port", str(self.http_port)],
                cwd=ROOT,
                preexec_fn=_die_with_parent,
            ),
        ]
        for _ in range(100):
            try:
                await self.stats()
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
        async with unit_of_work(self.sessions) as session:
            # Statistics, as autovacuum would have gathered them in a practice's database:
            # without them every look-up by patient id plans as a scan of the practice.
            await session.execute(text("ANALYZE patients"))
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
                    "TRUNCATE campaigns, campaign_recipients, messages, message_handoffs, jobs, "
                    "events, webhook_deliveries, communication_log, writebacks CASCADE"
                )
            )
        await self.redis.flushdb()
        for control in self.controls.values():
            await control.post("/_reset")

    async def stats(self) -> dict[str, dict[str, float]]:
        return {
            channel: (await control.get("/_stats")).json()
            for channel, control in self.controls.items()
        }

    async def sent_in_ledger(self) -> int:
        async with unit_of_work(self.sessions) as session:
            found = await session.execute(
                text("SELECT count(*) FROM messages WHERE status IN ('sent', 'delivered')")
            )
            return int(found.scalar_one())

    async def backend_cpu(self) -> dict[int, float]:
        """CPU seconds so far of each Postgres backend serving the bench database."""
        async with unit_of_work(self.sessions) as session:
            found = await session.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
            pids = [int(p) for p in found.scalars()]
        return {pid: cpu for pid in pids if (cpu := _cpu(pid)) is not None}

    # --- the floor -----------------------------------------------------------------------

    async def floor(self) -> Row:
        await self.reset()
        sinks_before = await self.stats()
        smtp = SmtpProvider(
            SmtpConfig(
                host="127.0.0.1",
                port=self.smtp_port,
                security="none",
                from_address="hello@bench.example",
            ),
            15,
            "floor",
        )
        twilio = TwilioProvider(
            TwilioConfig(
                account_sid=ACCOUNT_SID,
                auth_token=AUTH_TOKEN,
                from_number="+15125550199",
                base_url=f"http://127.0.0.1:{self.http_port}",
            ),
            15,
        )
        # The concurrency of one batch job per worker slot: what the workers may use.
        limit = asyncio.Semaphore(SEND_CONCURRENCY * 2)
        settings = Settings()
        email = EmailContent.model_validate(EMAIL)
        sms = SmsContent(channel="sms", body=SMS_BODY)
        used = {"email": templates.check(email, False), "sms": templates.check(sms, False)}
        office = {
            "office.name": "Main Street",
            "office.phone": "(512) 555-0199",
            "office.address": "",
            "booking.link": f"{public_base(settings)}/widget/{self.location_id}",
        }

        async def _one(i: int) -> None:
            # What a worker makes of each patient: the template rendered for them, the
            # unsubscribe link and headers, then the provider call.
            channel = "sms" if i % 2 == 0 else "email"
            values = office | {
                "patient.first_name": f"Pat{i}",
                "patient.last_name": "Bench",
                "patient.preferred_name": f"Pat{i}",
            }
            target = UnsubscribeTarget(self.tenant_id, f"pat_bench_{i:07d}", "email")
            url = unsubscribe_url(settings, target)
            footer = engine.Footer(lines=("Main Street",), unsubscribe_url=url)
            content = sms if channel == "sms" else email
            rendered = templates.render(content, values, used[channel], footer)
            message = OutboundMessage(
                message_id=f"mes_floor_{i}",
                channel=channel,
                to=f"+1512{i:07d}" if channel == "sms" else f"p{i}@bench.example",
                body_text=rendered.text,
                subject=rendered.subject,
                body_html=rendered.html,
                headers={} if channel == "sms" else list_unsubscribe_headers(url),
            )
            async with limit:
                result = await (twilio if channel == "sms" else smtp).send(message)
            if result.status == "failed":
                # The floor does not retry: a provider failure is a message lost here.
                failures[(result.error or "failed")[:60]] += 1

        failures: Counter[str] = Counter()
        started, cpu_started = time.time(), time.process_time()
        await asyncio.gather(*(_one(i) for i in range(1, self.n + 1)))
        elapsed = time.time() - started
        cpu = {"floor loop": time.process_time() - cpu_started}
        await close_pools()
        return self.row(
            "floor: bare loop straight to the sinks",
            started,
            elapsed,
            await self.stats(),
            sinks_before,
            cpu,
            "; ".join(f"{n} failed: {reason}" for reason, n in failures.most_common(3)),
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
                preexec_fn=_die_with_parent,
            )
        self.workers.append(process)
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
        sinks_before = await self.stats()
        label = f"{workers}w{'-kill' if kill else ''}"
        running = [self.start_worker(f"{label}-{i}") for i in range(workers)]
        await self.wait_started(running)
        backends_before = await self.backend_cpu()
        worker_cpu: dict[int, float] = {}
        started = time.time()
        campaign_id = await self.submit()
        killed = False
        last_total, last_change = -1.0, time.monotonic()
        while True:
            stats = await self.stats()
            for process, _ in running:
                worker_cpu[process.pid] = _cpu(process.pid) or worker_cpu.get(process.pid, 0.0)
            total = sum(s["handoffs"] for s in stats.values())
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
        await asyncio.sleep(1)  # let late handoffs land
        stats = await self.stats()
        for process, _ in running:
            worker_cpu[process.pid] = _cpu(process.pid) or worker_cpu.get(process.pid, 0.0)
        backends = await self.backend_cpu()
        status = await self.campaign_status(campaign_id)
        in_ledger = await self.sent_in_ledger()
        for process, _ in running:
            process.send_signal(signal.SIGTERM)
        for process, _ in running:
            process.wait()
        last = max(s["last"] or 0 for s in stats.values())
        note = f"campaign {status}; {in_ledger:,} sent in the ledger"
        if kill:
            note += "; one worker SIGKILLed at 40% and replaced"
        name = f"campaign, {workers} worker process{'es' if workers > 1 else ''}"
        cpu = {
            "workers": sum(worker_cpu.values()),
            "postgres": sum(v - backends_before.get(pid, 0.0) for pid, v in backends.items()),
        }
        return self.row(
            name + (", one killed" if kill else ""),
            started,
            last - started,
            stats,
            sinks_before,
            cpu,
            note,
        )

    def row(
        self,
        name: str,
        started: float,
        elapsed: float,
        stats: dict[str, dict[str, float]],
        before: dict[str, dict[str, float]],
        cpu: dict[str, float],
        note: str = "",
    ) -> Row:
        distinct = int(sum(s["distinct"] for s in stats.values()))
        delivered = int(sum(s["delivered"] for s in stats.values()))
        firsts = [s["first"] for s in stats.values() if s["first"]]
        lasts = [s["last"] for s in stats.values() if s["last"]]
        span = (max(lasts) - min(firsts)) if firsts else None
        for channel, sink in stats.items():
            cpu[f"{channel} sink"] = sink["cpu_seconds"] - before[channel]["cpu_seconds"]
        per_message = {k: v / max(delivered, 1) for k, v in cpu.items()}
        return Row(
            name,
            delivered,
            elapsed,
            span,
            self.n - distinct,
            int(sum(s["re_handoffs"] for s in stats.values())),
            int(sum(s["duplicates_delivered"] for s in stats.values())),
            per_message,
            note,
        )

    async def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.kill()
                process.wait()
        for control in self.controls.values():
            await control.aclose()
        for sink in self.sinks:
            sink.terminate()
            sink.wait()
        jobs.deactivate(self.queue)
        await self.queue.close()
        await self.redis.aclose()


def _die_with_parent() -> None:
    """In a child before exec: SIGKILL it when the bench dies (Linux prctl), so a bench
    interrupted by ^C or a timeout leaves no worker polling the queue."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _cpu(pid: int) -> float | None:
    """User + system CPU seconds of a live process (None once it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def print_table(rows: list[Row]) -> None:
    print(
        f"| {'run':<44} | delivered |  msg/s | 1st→last/s | lost | re-handoffs "
        "| dup delivered | CPU ms/message | notes"
    )
    print(
        "|" + "-" * 46 + "|----------:|-------:|-----------:|-----:|------------:|"
        "--------------:|----------------|------"
    )
    for r in rows:
        span = f"{r.delivered / r.first_to_last:,.0f}" if r.first_to_last else "-"
        cpu = ", ".join(f"{k} {v * 1000:.2f}" for k, v in r.cpu.items())
        total = sum(r.cpu.values()) * 1000
        print(
            f"| {r.run:<44} | {r.delivered:>9,} | {r.delivered / r.seconds:>6,.0f} | {span:>10} "
            f"| {r.lost:>4} | {r.re_handoffs:>11} | {r.duplicates:>13} "
            f"| {total:.2f} ({cpu}) | {r.note}"
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
