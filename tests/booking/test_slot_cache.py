"""Slot answers served from the cache as raw JSON: byte for byte what pydantic writes,
the same as a fresh computation, and never a slot that has since fallen inside the
notice period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.auth import service as auth_service
from api.booking import service
from api.booking.schemas import SlotOut, SlotsOut
from api.core.db import bind_tenant
from tests.booking.conftest import get_slots


async def test_a_cache_hit_sends_the_same_bytes_as_the_miss(client, mirror, redis):
    day = mirror.day.isoformat()
    miss = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert await redis.keys("chairfill:slots:*")
    hit = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert miss.status_code == hit.status_code == 200
    assert hit.headers["content-type"] == "application/json"
    assert hit.content == miss.content and len(hit.json()["data"]) > 10
    # Exactly the JSON the response model would have produced.
    assert SlotsOut.model_validate_json(hit.content).model_dump_json().encode() == hit.content


async def test_a_cached_slot_inside_the_notice_period_is_never_offered(
    client, mirror, sessions, redis, settings
):
    target = mirror.at(10).astimezone(UTC)
    notice = int((target - datetime.now(UTC)).total_seconds() // 60) - 1
    policy = await client.put(
        f"/v1/locations/{mirror.location_id}/booking-policy",
        json={"min_notice_minutes": notice},
        headers=mirror.headers,
    )
    assert policy.status_code == 200, policy.text
    first_now = target - timedelta(minutes=notice, seconds=30)  # earliest: 09:59:30
    later_now = first_now + timedelta(seconds=45)  # earliest: 10:00:15; the cache is valid
    deps = service.BookingDeps(settings=settings.booking, redis=redis, app_settings=settings)
    uncached = service.BookingDeps(settings=settings.booking, redis=None, app_settings=settings)

    async def answer(now: datetime, using: service.BookingDeps) -> SlotsOut:
        async with sessions() as session:
            bind_tenant(session, mirror.tenant_id)
            token = mirror.headers["Authorization"].removeprefix("Bearer ")
            principal = await auth_service.principal_for_access_token(session, token)
            return await service.find_slots(
                session,
                principal,
                using,
                location_id=mirror.location_id,
                appointment_type_id=mirror.types["exam"],
                start=mirror.day.isoformat(),
                end=mirror.day.isoformat(),
                provider_id=None,
                now=now,
            )

    first = await answer(first_now, deps)
    assert first.data[0].start == mirror.at(10)
    [key] = await redis.keys("chairfill:slots:*")
    stored = await redis.get(key)
    later = await answer(later_now, deps)
    # Served from the cache: a miss would have stored the entry again (a later validity).
    assert await redis.get(key) == stored
    assert later.data[0].start == mirror.at(10, 15)
    assert all(s.start >= later_now + timedelta(minutes=notice) for s in later.data)
    assert later == await answer(later_now, uncached)


def _slot(hour: int) -> SlotOut:
    start = datetime(2026, 11, 24, hour, tzinfo=UTC)
    return SlotOut(
        start=start, end=start + timedelta(minutes=30), providers=["p"], operatories=["o"]
    )


def test_slot_lists_cut_any_stale_slot_in_any_order():
    ordered = service.SlotList.of([_slot(9), _slot(10), _slot(11)])
    ten = datetime(2026, 11, 24, 10, tzinfo=UTC).timestamp()
    assert ordered.starting_from(0) == ordered.body
    assert ordered.starting_from(ten) == _slot(10).model_dump_json().encode() + b"," + (
        _slot(11).model_dump_json().encode()
    )
    assert ordered.starting_from(ten + 7200) == b""
    shuffled = service.SlotList.of([_slot(11), _slot(9), _slot(10)])
    assert shuffled.starting_from(ten) == _slot(11).model_dump_json().encode() + b"," + (
        _slot(10).model_dump_json().encode()
    )
    body = service.slots_json(shuffled.starting_from(ten), None, "America/Chicago")
    parsed = SlotsOut.model_validate_json(body)
    assert [s.start.hour for s in parsed.data] == [11, 10] and parsed.data_as_of is None
