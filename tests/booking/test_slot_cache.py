"""Slot answers served from the cache as raw JSON: byte for byte what pydantic writes,
the same as a fresh computation, and never a slot that has since fallen inside the
notice period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.auth import service as auth_service
from api.booking import answers, service
from api.booking.schemas import SlotOut, SlotsOut
from api.core.db import bind_tenant
from tests.booking.conftest import get_slots, hold


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
    ordered = answers.SlotList.of([_slot(9), _slot(10), _slot(11)])
    ten = datetime(2026, 11, 24, 10, tzinfo=UTC).timestamp()
    assert ordered.starting_from(0) == ordered.body
    assert ordered.starting_from(ten) == _slot(10).model_dump_json().encode() + b"," + (
        _slot(11).model_dump_json().encode()
    )
    assert ordered.starting_from(ten + 7200) == b""
    shuffled = answers.SlotList.of([_slot(11), _slot(9), _slot(10)])
    assert shuffled.starting_from(ten) == _slot(11).model_dump_json().encode() + b"," + (
        _slot(10).model_dump_json().encode()
    )
    body = answers.slots_json(shuffled.starting_from(ten), None, "America/Chicago")
    parsed = SlotsOut.model_validate_json(body)
    assert [s.start.hour for s in parsed.data] == [11, 10] and parsed.data_as_of is None


async def test_slot_answers_are_sent_gzipped_to_clients_that_take_it(client, mirror):
    day = mirror.day.isoformat()
    end = (mirror.day + timedelta(days=6)).isoformat()
    path = f"/v1/locations/{mirror.location_id}/slots"
    params = {"appointment_type": mirror.types["exam"], "start": day, "end": end}
    plain = await client.get(
        path, params=params, headers=mirror.headers | {"Accept-Encoding": "identity"}
    )
    zipped = await client.get(
        path, params=params, headers=mirror.headers | {"Accept-Encoding": "br;q=1, gzip;q=0.8"}
    )
    refused = await client.get(
        path, params=params, headers=mirror.headers | {"Accept-Encoding": "*, gzip;q=0"}
    )
    assert plain.status_code == zipped.status_code == refused.status_code == 200
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert plain.headers["vary"] == zipped.headers["vary"] == "Accept-Encoding"
    # Smaller on the wire, the same JSON once decoded (httpx decodes it).
    assert int(zipped.headers["content-length"]) < len(plain.content) / 4
    assert zipped.content == plain.content == refused.content


async def test_a_repeated_request_is_served_from_this_process_until_the_calendar_changes(
    client, mirror, redis
):
    day = mirror.day.isoformat()
    first = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert first.status_code == 200
    await redis.flushdb()  # only this process's copy is left
    again = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert again.content == first.content
    assert await redis.keys("chairfill:slots:*") == []  # not computed and stored again
    # A booking moves the calendar version: the local copy is not used for the new key.
    taken = first.json()["data"][0]["start"]
    held = await hold(
        client,
        mirror.headers,
        mirror.location_id,
        mirror.types["exam"],
        datetime.fromisoformat(taken),
        key="local-copy-1",
    )
    assert held.status_code == 201, held.text
    after = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert after.status_code == 200 and after.content != first.content
    assert await redis.keys("chairfill:slots:*")


def test_local_answers_keep_within_their_byte_budget_and_validity():
    now = datetime(2026, 11, 24, 8, tzinfo=UTC)
    lists = [answers.SlotList.of([_slot(9 + i), _slot(10 + i)]) for i in range(3)]
    size = len(lists[0].body)
    local = answers.LocalAnswers(max_bytes=2 * size + 1)
    for i, slots in enumerate(lists):
        local.put(f"k{i}", slots, valid_until=now.timestamp() + 60)
    assert local.get("k0", now) is None  # least recently used, evicted for k2
    assert local.get("k1", now) is lists[1] and local.get("k2", now) is lists[2]
    assert local.bytes_used <= local.max_bytes
    assert local.get("k1", now + timedelta(seconds=60)) is None  # past its validity
    assert len(local) == 1


def test_local_answers_render_each_cut_once_and_compress_it_once():
    now = datetime(2026, 11, 24, 8, tzinfo=UTC)
    slots = answers.SlotList.of([_slot(h) for h in range(8, 18)] * 3)
    local = answers.LocalAnswers(max_bytes=1 << 20)
    local.put("k", slots, valid_until=now.timestamp() + 60)
    nine = datetime(2026, 11, 24, 9, tzinfo=UTC).timestamp()
    first = local.render("k", slots, nine, None, "America/Chicago")
    assert local.render("k", slots, nine + 1, None, "America/Chicago") is not first
    same_cut = local.render("k", slots, nine - 1800, None, "America/Chicago")
    assert same_cut is first  # 08:30 and 09:00 keep the same slots
    assert first.gzipped() is first.gzipped() and first.gzipped() is not None
    parsed = SlotsOut.model_validate_json(first.body)
    assert min(s.start.hour for s in parsed.data) == 9
    # Only two renderings per entry are kept; all of it counts against the budget.
    local.render("k", slots, nine + 7200, None, "America/Chicago")
    assert local.render("k", slots, nine, None, "America/Chicago") is not first
    assert local.bytes_used <= local.max_bytes
