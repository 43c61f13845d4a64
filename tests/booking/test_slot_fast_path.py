"""The slot endpoint's fast path (api/booking/fast_path.py): a repeated request is answered
before routing, byte for byte as the route answers it, and every case the fast path cannot
prove (revoked token, calendar write, other tenant, missing scope, stale data, a probe that
fails) is answered by the route exactly as before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from api.booking import answers, fast_path, service
from api.core.db import unit_of_work
from api.core.security import hash_token
from api.core.settings import RateLimitSettings
from tests.booking.conftest import (
    ORIGIN,
    build_mirror,
    get_slots,
    hold,
    next_weekday,
    push,
    starts,
    widget_headers,
)
from tests.conftest import make_settings
from tests.core.conftest import assert_problem, client_for, running_app


class Outcomes:
    """How many slot requests the fast path answered and passed on since creation."""

    def __init__(self) -> None:
        self.start = self._now()

    @staticmethod
    def _now() -> tuple[float, float]:
        return (
            fast_path.OUTCOMES.labels("answered")._value.get(),
            fast_path.OUTCOMES.labels("passed")._value.get(),
        )

    def since(self) -> tuple[int, int]:
        answered, passed = self._now()
        return int(answered - self.start[0]), int(passed - self.start[1])


async def _twice(client, headers, mirror, **params):
    day = mirror.day.isoformat()
    args = (client, headers, mirror.location_id, mirror.types["exam"], day, day)
    return await get_slots(*args, **params), await get_slots(*args, **params)


async def test_a_repeated_request_is_answered_before_routing_with_the_routes_bytes(client, mirror):
    outcomes = Outcomes()
    routed, fast = await _twice(client, mirror.headers | {"Accept-Encoding": "gzip"}, mirror)
    assert routed.status_code == fast.status_code == 200, fast.text
    assert fast.content == routed.content and len(fast.json()["data"]) > 10
    for name in ("content-type", "content-encoding", "content-length", "vary", "ratelimit-limit"):
        assert fast.headers.get(name) == routed.headers.get(name), name
    assert fast.headers["content-encoding"] == "gzip"
    assert fast.headers["x-request-id"] != routed.headers["x-request-id"]
    assert int(fast.headers["ratelimit-remaining"]) < int(routed.headers["ratelimit-remaining"])
    plain = (await _twice(client, mirror.headers | {"Accept-Encoding": "identity"}, mirror))[1]
    assert "content-encoding" not in plain.headers and plain.content == routed.content
    # Only the very first request went through the route.
    assert outcomes.since() == (3, 1)


async def test_a_revoked_token_is_refused_at_once(client, mirror, sessions):
    await _twice(client, mirror.headers, mirror)
    token = mirror.headers["Authorization"].removeprefix("Bearer ")
    async with unit_of_work(sessions) as session:
        await session.execute(
            text("UPDATE oauth_tokens SET revoked_at = now() WHERE access_token_hash = :h"),
            {"h": hash_token(token)},
        )
    outcomes = Outcomes()
    day = mirror.day.isoformat()
    refused = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert_problem(refused, 401)
    assert outcomes.since() == (0, 1)


async def test_a_calendar_write_is_seen_by_the_very_next_request(client, mirror):
    first, again = await _twice(client, mirror.headers, mirror)
    assert starts(first) == starts(again)
    taken = mirror.at(10)
    assert taken.isoformat() in starts(first)
    held = await hold(client, mirror.headers, mirror.location_id, mirror.types["exam"], taken)
    assert held.status_code == 201, held.text
    outcomes = Outcomes()
    after = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        mirror.types["exam"],
        mirror.day.isoformat(),
        mirror.day.isoformat(),
    )
    # The version moved with the hold's transaction: no answer of this process matches it.
    assert outcomes.since() == (0, 1)
    assert after.status_code == 200 and after.content != first.content


@pytest.mark.parametrize("who", ["other tenant", "no scope", "other location", "stale"])
async def test_what_the_route_refuses_is_refused_the_same_way(
    who, client, mirror, practice, other_practice, make_token, sessions
):
    await _twice(client, mirror.headers, mirror)
    headers = mirror.headers
    expected = 404
    if who == "other tenant":
        headers = other_practice.headers
    elif who == "no scope":
        token = await make_token(practice.tenant.id, ["patients:read"])
        headers, expected = {"Authorization": f"Bearer {token}"}, 403
    elif who == "other location":
        token = await make_token(
            practice.tenant.id, ["schedule:read"], location_ids=[practice.locations[1].id]
        )
        headers = {"Authorization": f"Bearer {token}"}
    else:
        async with unit_of_work(sessions) as session:
            await session.execute(
                text(
                    "UPDATE location_sync_states SET data_as_of = now() - interval '30 days'"
                    " WHERE location_id = :l"
                ),
                {"l": mirror.location_id},
            )
        expected = 409
    outcomes = Outcomes()
    day = mirror.day.isoformat()
    refused = await get_slots(client, headers, mirror.location_id, mirror.types["exam"], day, day)
    assert_problem(refused, expected)
    assert outcomes.since() == (0, 1)


async def test_bad_parameters_are_judged_by_the_route(client, mirror):
    await _twice(client, mirror.headers, mirror)
    outcomes = Outcomes()
    day = mirror.day.isoformat()
    path = f"/v1/locations/{mirror.location_id}/slots"
    exam = mirror.types["exam"]
    cases = [
        {"appointment_type": exam, "start": day},
        {"appointment_type": exam, "start": day, "end": "x" * 41},
        {"appointment_type": exam, "start": day, "end": "tomorrow"},
        {
            "appointment_type": exam,
            "start": day,
            "end": (mirror.day + timedelta(days=40)).isoformat(),
        },
    ]
    for params in cases:
        assert_problem(await client.get(path, params=params, headers=mirror.headers), 422)
    repeated = f"{path}?appointment_type={exam}&start={day}&end={day}&end={day}"
    assert (await client.get(repeated, headers=mirror.headers)).status_code == 200
    assert outcomes.since() == (0, 5)


async def test_a_widget_is_answered_with_cors_and_a_foreign_page_refused(
    client, mirror, make_publishable_key
):
    key = await make_publishable_key(mirror.tenant_id, [mirror.location_id])
    outcomes = Outcomes()
    routed, fast = await _twice(client, widget_headers(key), mirror)
    assert routed.status_code == fast.status_code == 200
    assert fast.content == routed.content
    assert fast.headers["access-control-allow-origin"] == ORIGIN
    # The key may also come in the query string (a page that cannot set headers).
    day = mirror.day.isoformat()
    in_query = await get_slots(
        client,
        {"Origin": ORIGIN},
        mirror.location_id,
        mirror.types["exam"],
        day,
        day,
        publishable_key=key,
    )
    assert in_query.status_code == 200 and in_query.content == routed.content
    assert outcomes.since() == (2, 1)
    foreign = widget_headers(key) | {"Origin": "https://elsewhere.example"}
    refused = await get_slots(client, foreign, mirror.location_id, mirror.types["exam"], day, day)
    assert_problem(refused, 403)
    # Of a repeated header the first counts, as for the route and the CORS middleware.
    twice = [("Authorization", f"Bearer {key}"), ("Origin", "https://elsewhere.example")]
    twice.append(("Origin", ORIGIN))
    path = f"/v1/locations/{mirror.location_id}/slots"
    params = {"appointment_type": mirror.types["exam"], "start": day, "end": day}
    assert_problem(await client.get(path, params=params, headers=twice), 403)
    assert outcomes.since() == (2, 3)


async def test_a_widget_key_for_other_locations_is_refused(
    client, mirror, practice, make_publishable_key
):
    await _twice(client, mirror.headers, mirror)
    elsewhere = await make_publishable_key(mirror.tenant_id, [practice.locations[1].id])
    outcomes = Outcomes()
    day = mirror.day.isoformat()
    refused = await get_slots(
        client, widget_headers(elsewhere), mirror.location_id, mirror.types["exam"], day, day
    )
    assert_problem(refused, 404)
    assert outcomes.since() == (0, 1)


async def test_an_expired_token_is_refused(client, mirror, sessions):
    await _twice(client, mirror.headers, mirror)
    token = mirror.headers["Authorization"].removeprefix("Bearer ")
    async with unit_of_work(sessions) as session:
        await session.execute(
            text(
                "UPDATE oauth_tokens SET expires_at = now() - interval '1 minute'"
                " WHERE access_token_hash = :h"
            ),
            {"h": hash_token(token)},
        )
    outcomes = Outcomes()
    day = mirror.day.isoformat()
    expired = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert_problem(expired, 401)
    assert outcomes.since() == (0, 1)


async def test_a_sync_batch_from_the_pms_is_seen_by_the_very_next_request(client, mirror, sessions):
    first, _ = await _twice(client, mirror.headers, mirror)
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "patients",
        [{"external_id": "p1", "first_name": "Ann", "last_name": "Lee", "status": "active"}],
    )
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "appointments",
        [
            {
                "external_id": "a1",
                "patient_external_id": "p1",
                "provider_external_id": "dr",
                "operatory_external_id": "op1",
                "start_at": mirror.at(9).isoformat(),
                "end_at": mirror.at(10).isoformat(),
                "status": "scheduled",
            }
        ],
    )
    outcomes = Outcomes()
    day = mirror.day.isoformat()
    after = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert outcomes.since() == (0, 1)
    assert after.status_code == 200 and after.content != first.content


async def test_the_probe_leaves_the_callers_role_and_tenant_as_they_were(mirror, sessions):
    token = mirror.headers["Authorization"].removeprefix("Bearer ")
    async with sessions() as session:
        row = (
            await session.execute(
                text(
                    "SELECT tenant_id, timezone FROM booking_slot_probe("
                    ":h, NULL, :l, now(), ARRAY['appointments'])"
                ),
                {"h": hash_token(token), "l": mirror.location_id},
            )
        ).one()
        assert row == (mirror.tenant_id, "America/Chicago")
        # Still inside the same transaction: the switch did not outlive the call.
        who = await session.execute(
            text("SELECT current_user = session_user, current_setting('app.tenant_id', true)")
        )
        as_connected, wall = who.one()
        assert as_connected and not wall


async def test_a_failing_probe_leaves_the_answer_to_the_route(app, client, mirror, monkeypatch):
    await _twice(client, mirror.headers, mirror)

    async def broken(*_args, **_kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(fast_path, "probe", broken)
    outcomes = Outcomes()
    day = mirror.day.isoformat()
    answered = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert answered.status_code == 200 and starts(answered)
    assert outcomes.since() == (0, 1)


async def test_requests_answered_before_routing_count_against_the_rate_limit_once(
    servers, practice, sessions
):
    limits = RateLimitSettings(client_per_minute=3)
    location_id = practice.locations[0].id
    exam = (await build_mirror(sessions, practice.tenant.id, location_id))["types"]["exam"]
    day = next_weekday(1).isoformat()
    settings = make_settings(servers, rate_limits=limits)
    async with running_app(settings) as limited, client_for(limited) as client:
        outcomes = Outcomes()
        remaining = []
        for _ in range(3):
            ok = await get_slots(client, practice.headers, location_id, exam, day, day)
            assert ok.status_code == 200, ok.text
            remaining.append(int(ok.headers["ratelimit-remaining"]))
        refused = await get_slots(client, practice.headers, location_id, exam, day, day)
        assert remaining == [2, 1, 0]
        assert_problem(refused, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers.get_list("ratelimit-limit") == ["3"]
        assert outcomes.since() == (3, 1)


async def test_requests_missing_the_same_answer_share_one_computation():
    flight = answers.InFlight()
    computed = 0
    release = asyncio.Event()
    slots = answers.SlotList(b"", [], [0])

    async def fill() -> answers.SlotList:
        nonlocal computed
        computed += 1
        await release.wait()
        return slots

    waiting = [asyncio.create_task(flight.once("k", fill)) for _ in range(5)]
    shared = asyncio.create_task(flight.shared("k"))
    await asyncio.sleep(0)
    assert len(flight) == 1 and await flight.shared("other") is None
    release.set()
    assert all(found is slots for found in await asyncio.gather(*waiting, shared))
    assert computed == 1 and len(flight) == 0


async def test_a_failed_computation_is_not_shared():
    flight = answers.InFlight()
    release = asyncio.Event()
    slots = answers.SlotList(b"", [], [0])

    async def failing() -> answers.SlotList:
        await release.wait()
        raise RuntimeError("the database went away")

    async def working() -> answers.SlotList:
        return slots

    first = asyncio.create_task(flight.once("k", failing))
    await asyncio.sleep(0)
    second = asyncio.create_task(flight.once("k", working))
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(RuntimeError):
        await first
    assert await second is slots


def test_an_answer_near_its_end_is_handed_out_for_refresh_once(monkeypatch):
    local = answers.LocalAnswers(max_bytes=10_000)
    slots = answers.SlotList(b"", [], [0])
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    monkeypatch.setattr(answers, "time", SimpleNamespace(time=now.timestamp))
    local.put("long", slots, now.timestamp() + 60)
    local.put("cut by a hold", slots, now.timestamp() + 10)
    assert not local.claim_refresh("long", now, ahead_seconds=15)
    later = now + timedelta(seconds=50)
    assert local.claim_refresh("long", later, ahead_seconds=15)
    assert not local.claim_refresh("long", later, ahead_seconds=15)
    # Short-lived from the start: a new computation would end at the same hold expiry.
    assert not local.claim_refresh("cut by a hold", now + timedelta(seconds=5), 15)
    assert not local.claim_refresh("missing", later, ahead_seconds=15)


async def test_an_answer_asked_for_near_its_end_is_computed_again_in_the_background(
    client, mirror, monkeypatch
):
    outcomes = Outcomes()
    routed, _ = await _twice(client, mirror.headers, mirror)
    assert outcomes.since() == (1, 1)
    refreshed = asyncio.Event()
    original = service.refresh_slot_answer

    async def watched(*args, **kwargs):
        await original(*args, **kwargs)
        refreshed.set()

    monkeypatch.setattr(service, "refresh_slot_answer", watched)
    # Shortly before the entry ends, a hit hands out its refresh (once).
    entry_ends = _entry_ends(mirror.tenant_id)

    near_end = datetime.fromtimestamp(entry_ends - 5, UTC)
    monkeypatch.setattr(fast_path, "utcnow", lambda: near_end)
    monkeypatch.setattr(service, "utcnow", lambda: near_end)
    day = mirror.day.isoformat()
    hit = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], day, day
    )
    assert hit.status_code == 200 and hit.content == routed.content
    await asyncio.wait_for(refreshed.wait(), 10)
    assert outcomes.since() == (2, 1)
    # Computed again (Redis only held the same, expiring copy): valid a whole TTL from then.
    assert _entry_ends(mirror.tenant_id) > entry_ends


def _entry_ends(tenant_id: str) -> float:
    """Until when this tenant's (one) slot answer in this process is valid."""
    prefix = f"chairfill:slots:{tenant_id}:"
    [entry] = [e for k, e in service.LOCAL_ANSWERS._entries.items() if k.startswith(prefix)]
    return entry.valid_until
