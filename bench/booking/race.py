"""Booking race: many widgets holding the same few slots at once, over real HTTP.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python -m bench.booking.race \\
        [--rounds 50] [--racers 200] [--slots 20] [--processes 2]

Builds a scratch database (`cf_booking_race`, migrated from scratch), one practice with
one provider and one operatory working 08:00-18:00 (America/Chicago) and a 30-minute
self-bookable type, then runs `--rounds` rounds. Each round takes a fresh weekday whose
20 half-hour slots are all free and fires `--racers` concurrent `POST /v1/holds`
(10 per slot, each with its own Idempotency-Key) at `--processes` real uvicorn
processes on loopback, alternating between them. Expected per round: exactly one 201 per
slot, every other answer 409 `taken`, and no two holds overlapping on the provider or the
operatory (checked in Postgres after the round).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg

from api.core.migrate import upgrade
from bench.booking.common import conninfo, practice, scratch_database, server

DB_NAME = "cf_booking_race"
ZONE = ZoneInfo("America/Chicago")
BATCHES = [
    ("providers", [{"external_id": "dr", "kind": "dentist", "name": "Dr. Race"}]),
    ("operatories", [{"external_id": "op", "name": "Op 1"}]),
    (
        "appointment-types",
        [{"external_id": "exam", "name": "Exam", "duration_minutes": 30, "self_bookable": True}],
    ),
    (
        "schedules",
        [
            {
                "external_id": f"w{d}",
                "kind": "weekly",
                "provider_external_id": "dr",
                "weekday": d,
                "start_time": "08:00",
                "end_time": "18:00",
            }
            for d in range(5)
        ],
    ),
]


def weekdays(count: int) -> list[date]:
    day, found = datetime.now(ZONE).date() + timedelta(days=2), []
    while len(found) < count:
        if day.weekday() < 5:
            found.append(day)
        day += timedelta(days=1)
    return found


async def overlaps(database_url: str, day: date) -> int:
    """Pairs of holds sharing provider or operatory time on `day` (must be 0)."""
    start = datetime.combine(day, datetime.min.time(), ZONE)
    async with await psycopg.AsyncConnection.connect(conninfo(database_url)) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM booking_holds a JOIN booking_holds b ON a.id < b.id "
                "AND (a.provider_id = b.provider_id OR a.operatory_id = b.operatory_id) "
                "AND a.start_at < b.end_at AND b.start_at < a.end_at "
                "WHERE a.start_at >= %s AND a.start_at < %s",
                (start, start + timedelta(days=1)),
            )
        ).fetchone()
        return int(row[0]) if row else -1


async def race(args: argparse.Namespace) -> None:
    admin = os.environ["DATABASE_URL"]
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    database_url = scratch_database(admin, DB_NAME)
    upgrade(database_url)
    setup = await practice(
        database_url, "Race Dental", ["schedule:read", "appointments:write"], BATCHES
    )
    location_id, type_id = setup.location_id, setup.type_id
    headers = {"Authorization": f"Bearer {setup.token}"}
    policy = {"min_notice_minutes": 0, "horizon_days": 366, "step_minutes": 30}
    days = weekdays(args.rounds)
    totals: Counter[str] = Counter()
    latencies: list[float] = []
    round_seconds: list[float] = []
    bad_rounds = 0
    with ExitStack() as stack:
        bases = [
            stack.enter_context(
                server(
                    database_url,
                    redis_url,
                    admin,
                    CHAIRFILL_LOG_LEVEL="ERROR",
                    CHAIRFILL_RATE_LIMITS__ENABLED="false",
                )
            )
            for _ in range(args.processes)
        ]
        limits = httpx.Limits(max_connections=args.racers, max_keepalive_connections=args.racers)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            put = await client.put(
                f"{bases[0]}/v1/locations/{location_id}/booking-policy",
                json=policy,
                headers=headers,
            )
            put.raise_for_status()

            async def attempt(n: int, day: date) -> tuple[int, str | None, float]:
                slot = n % args.slots
                start = datetime.combine(day, datetime.min.time(), ZONE) + timedelta(
                    hours=8, minutes=30 * slot
                )
                began = time.perf_counter()
                key = str(uuid.uuid4())
                for retry in range(3):
                    try:
                        response = await client.post(
                            f"{bases[n % len(bases)]}/v1/holds",
                            json={
                                "location_id": location_id,
                                "appointment_type_id": type_id,
                                "start": start.isoformat(),
                            },
                            headers=headers | {"Idempotency-Key": key},
                        )
                        break
                    except httpx.TransportError:
                        # Retried with the same key: the server answers it at most once.
                        totals["transport retries"] += 1
                        if retry == 2:
                            raise
                reason = response.json().get("reason") if response.status_code == 409 else None
                return response.status_code, reason, time.perf_counter() - began

            for number, day in enumerate(days, 1):
                began = time.perf_counter()
                results = await asyncio.gather(*(attempt(n, day) for n in range(args.racers)))
                round_seconds.append(time.perf_counter() - began)
                outcome = Counter(
                    "201" if s == 201 else f"{s} {r}" if r else str(s) for s, r, _ in results
                )
                latencies.extend(t for _, _, t in results)
                double = await overlaps(database_url, day)
                totals.update(outcome)
                totals["overlapping pairs"] += double
                ok = (
                    outcome["201"] == args.slots
                    and double == 0
                    and (outcome["409 taken"] == args.racers - args.slots)
                )
                bad_rounds += 0 if ok else 1
                if not ok or number % 10 == 0:
                    print(
                        f"  round {number:3d} {day}  {dict(outcome)}  overlaps={double}  "
                        f"{round_seconds[-1]:.2f} s",
                        flush=True,
                    )
    attempts = args.rounds * args.racers
    latencies.sort()
    print()
    print(
        f"{'booking race over HTTP':<44}{args.processes} uvicorn processes, "
        f"{args.rounds} rounds x {args.racers} racers x {args.slots} slots"
    )
    print(f"  {'attempts':<40}{attempts:>10,}")
    print(
        f"  {'holds placed (201)':<40}{totals['201']:>10,}   expected {args.rounds * args.slots:,}"
    )
    print(f"  {'refused 409 taken':<40}{totals['409 taken']:>10,}")
    skip = ("201", "409 taken", "overlapping pairs", "transport retries")
    other = {k: v for k, v in totals.items() if k not in skip}
    print(f"  {'other answers':<40}{sum(other.values()):>10,}   {other or ''}")
    print(f"  {'transport errors retried (same key)':<40}{totals['transport retries']:>10,}")
    print(f"  {'overlapping holds (double bookings)':<40}{totals['overlapping pairs']:>10,}")
    print(f"  {'rounds not exactly right':<40}{bad_rounds:>10,}")
    print(
        f"  {'round wall time p50 / max':<40}{statistics.median(round_seconds):>9.2f}s"
        f" / {max(round_seconds):.2f}s"
    )
    print(
        f"  {'hold latency p50 / p95 / max':<40}"
        f"{latencies[len(latencies) // 2] * 1000:>8.0f}ms / "
        f"{latencies[int(len(latencies) * 0.95)] * 1000:.0f}ms / {latencies[-1] * 1000:.0f}ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--racers", type=int, default=200)
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    asyncio.run(race(parser.parse_args()))


if __name__ == "__main__":
    main()
