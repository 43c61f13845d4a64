"""Holds: re-checked at submit time, refused with a reason, idempotent, race-safe in the
database, expiring (expired holds never block; booking.expired is emitted)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import text

from api.booking import changes
from api.booking.report import enqueue_hold_expiries
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job
from tests.booking.conftest import confirm, count, get_slots, hold, starts


async def test_hold_places_a_tentative_hold(client, mirror, sessions, settings):
    before = utcnow()
    response = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("hld_") and body["status"] == "held"
    assert body["provider_id"] == mirror.providers["hy"]
    assert body["operatory_id"] == mirror.operatories["op2"]
    assert datetime.fromisoformat(body["start"]) == mirror.at(10)
    expires = datetime.fromisoformat(body["hold_expires_at"])
    ttl = settings.booking.hold_ttl_seconds
    assert before + timedelta(seconds=ttl - 5) < expires <= utcnow() + timedelta(seconds=ttl)
    # 60 minutes = 12 cells, for the provider and for the operatory.
    assert (
        await count(
            sessions, "SELECT count(*) FROM calendar_claims WHERE hold_id = :h", h=body["id"]
        )
        == 24
    )
    assert await count(sessions, "SELECT count(*) FROM events WHERE type = 'booking.held'") == 1


async def test_hold_refusals_carry_a_reason(client, mirror):
    loc, exam = mirror.location_id, mirror.types["exam"]

    async def reason(start, type_id=exam, **fields):
        response = await hold(client, mirror.headers, loc, type_id, start, **fields)
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("/booking-conflict")
        return response.json()["reason"]

    assert await reason(mirror.at(7)) == "outside_hours"
    assert await reason(mirror.at(10, 5)) == "off_grid"
    assert await reason(utcnow() + timedelta(minutes=10)) == "notice"
    assert await reason(mirror.at(10) + timedelta(days=120)) == "horizon"
    assert await reason(mirror.at(10), mirror.types["root"]) == "not_self_bookable"
    assert (
        await reason(mirror.at(10), mirror.types["clean"], provider_id=mirror.providers["dr"])
        == "provider_not_allowed"
    )
    assert (
        await reason(mirror.at(10), mirror.types["clean"], operatory_id=mirror.operatories["op1"])
        == "operatory_not_allowed"
    )
    first = await hold(client, mirror.headers, loc, mirror.types["clean"], mirror.at(10))
    assert first.status_code == 201
    assert await reason(mirror.at(10, 30), mirror.types["clean"]) == "taken"


async def test_hold_requires_an_idempotency_key_and_replays_it(client, mirror, sessions):
    body = {
        "location_id": mirror.location_id,
        "appointment_type_id": mirror.types["clean"],
        "start": mirror.at(10).isoformat(),
    }
    missing = await client.post("/v1/holds", json=body, headers=mirror.headers)
    assert missing.status_code == 400
    key = str(uuid.uuid4())
    first = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10), key=key
    )
    again = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10), key=key
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert await count(sessions, "SELECT count(*) FROM booking_holds") == 1


async def test_concurrent_holds_on_one_slot_exactly_one_wins(client, mirror, sessions):
    async def attempt():
        return await hold(
            client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(11)
        )

    responses = await asyncio.gather(*(attempt() for _ in range(25)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1 and statuses.count(409) == 24, statuses
    assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"taken"}
    assert await count(sessions, "SELECT count(*) FROM booking_holds") == 1


async def test_the_database_refuses_a_double_claim_whatever_the_code_checked(mirror, sessions):
    """Two transactions claim overlapping cells at the same time; the unique key lets one
    through (the other blocks until the first commits, then fails)."""
    from api.booking import claims

    start = mirror.at(9).astimezone(UTC)

    async def claim_in_own_transaction(hold_id: str, pause: float) -> str:
        try:
            async with unit_of_work(sessions, mirror.tenant_id) as session:
                await claims.claim(
                    session,
                    tenant_id=mirror.tenant_id,
                    location_id=mirror.location_id,
                    provider_id=mirror.providers["hy"],
                    operatory_id=mirror.operatories["op2"],
                    span_start=start,
                    span_end=start + timedelta(minutes=60),
                    owner_start=start,
                    hold_id=hold_id,
                    appointment_id=None,
                    hold_expires_at=utcnow() + timedelta(minutes=5),
                    now=utcnow(),
                )
                await asyncio.sleep(pause)
            return "won"
        except claims.ClaimTaken:
            return "taken"

    outcomes = await asyncio.gather(
        claim_in_own_transaction("hld_a", 0.3), claim_in_own_transaction("hld_b", 0.0)
    )
    assert sorted(outcomes) == ["taken", "won"]


async def test_expired_holds_never_block_and_are_reported(
    client, mirror, sessions, settings, worker_context
):
    first = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10)
    )
    assert first.status_code == 201
    day = mirror.day.isoformat()
    listed = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], day, day
    )
    assert mirror.at(10).isoformat() not in starts(listed)

    later = datetime.now(UTC) + timedelta(seconds=settings.booking.hold_ttl_seconds + 1)
    with time_machine.travel(later, tick=True):
        # Not yet swept by the job: the expired hold already blocks nobody.
        listed = await get_slots(
            client, mirror.headers, mirror.location_id, mirror.types["clean"], day, day
        )
        assert mirror.at(10).isoformat() in starts(listed)
        late = await confirm(client, mirror.headers, first.json()["id"])
        assert late.status_code == 409 and late.json()["reason"] == "hold_expired"
        second = await hold(
            client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10)
        )
        assert second.status_code == 201, second.text

        # The cron fans out one job per tenant; the job expires and reports the hold.
        async with unit_of_work(sessions) as session:
            assert await enqueue_hold_expiries(session, utcnow()) == 1
        from workers.runner import run_job

        async with unit_of_work(sessions) as session:
            job_id = (
                await session.execute(
                    text("SELECT id FROM jobs WHERE task = 'booking.expire_holds'")
                )
            ).scalar_one()
        await run_job({"chairfill": worker_context}, job_id)
    async with unit_of_work(sessions) as session:
        job = await session.get(Job, job_id)
        assert job is not None and job.status == "done", job and job.last_error
    expired = await count(
        sessions,
        "SELECT count(*) FROM events WHERE type = 'booking.expired' AND data->>'hold_id' = :h",
        h=first.json()["id"],
    )
    assert expired == 1
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM calendar_claims WHERE hold_id = :h",
            h=first.json()["id"],
        )
        == 0
    )
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM calendar_claims WHERE hold_id = :h",
            h=second.json()["id"],
        )
        == 24
    )
    # Running the expiry again finds nothing more to do.
    async with unit_of_work(sessions, mirror.tenant_id) as session:
        assert await changes.expire_holds(session, mirror.tenant_id, utcnow()) == 0
