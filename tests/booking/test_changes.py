"""Reschedule and cancel (write-backs, events, freed slots), the slot cache's invalidation
on every kind of calendar write, a signed webhook end to end, scopes and tenancy."""

from __future__ import annotations

import uuid
from datetime import datetime

from tests.booking.conftest import (
    confirm,
    count,
    get_slots,
    hold,
    push,
    starts,
    widget_headers,
)
from tests.webhooks.conftest import create_endpoint


async def booked(client, mirror, hour=10):
    the_hold = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(hour)
    )
    assert the_hold.status_code == 201, the_hold.text
    response = await confirm(client, mirror.headers, the_hold.json()["id"])
    assert response.status_code == 200, response.text
    return response.json()["appointment"]


async def clean_starts(client, mirror):
    day = mirror.day.isoformat()
    return starts(
        await get_slots(client, mirror.headers, mirror.location_id, mirror.types["clean"], day, day)
    )


async def test_reschedule_and_cancel_write_back_and_free_the_slot(client, mirror, sessions):
    appointment = await booked(client, mirror)
    moved = await client.post(
        f"/v1/appointments/{appointment['id']}/reschedule",
        json={"start": mirror.at(13).isoformat()},
        headers=mirror.headers,
    )
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["start"]) == mirror.at(13)
    free = await clean_starts(client, mirror)
    assert mirror.at(10).isoformat() in free and mirror.at(13).isoformat() not in free
    assert (
        await count(sessions, "SELECT count(*) FROM writebacks WHERE kind = 'appointment_update'")
        == 1
    )
    assert (
        await count(sessions, "SELECT count(*) FROM events WHERE type = 'booking.rescheduled'") == 1
    )
    refused = await client.post(
        f"/v1/appointments/{appointment['id']}/reschedule",
        json={"start": mirror.at(16).isoformat()},
        headers=mirror.headers,
    )
    assert refused.status_code == 409 and refused.json()["reason"] == "outside_hours"

    cancelled = await client.post(
        f"/v1/appointments/{appointment['id']}/cancel",
        json={"reason": "patient called"},
        headers=mirror.headers,
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert mirror.at(13).isoformat() in await clean_starts(client, mirror)
    again = await client.post(
        f"/v1/appointments/{appointment['id']}/cancel", headers=mirror.headers
    )
    assert again.status_code == 200
    assert (
        await count(sessions, "SELECT count(*) FROM writebacks WHERE kind = 'appointment_cancel'")
        == 1
    )
    assert (
        await count(sessions, "SELECT count(*) FROM events WHERE type = 'booking.cancelled'") == 1
    )
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM calendar_claims WHERE appointment_id = :a",
            a=appointment["id"],
        )
        == 0
    )


async def test_the_slot_cache_follows_every_calendar_write(client, mirror, sessions, redis):
    ten = mirror.at(10).isoformat()
    assert ten in await clean_starts(client, mirror)
    assert await redis.keys("chairfill:slots:*")  # answered from the cache next time
    assert ten in await clean_starts(client, mirror)

    the_hold = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10)
    )
    assert ten not in await clean_starts(client, mirror)  # hold
    confirmed = await confirm(client, mirror.headers, the_hold.json()["id"])
    assert ten not in await clean_starts(client, mirror)  # confirm
    appointment_id = confirmed.json()["appointment"]["id"]
    await client.post(f"/v1/appointments/{appointment_id}/cancel", headers=mirror.headers)
    assert ten in await clean_starts(client, mirror)  # cancel

    # The bridge syncs a PMS appointment into the hygienist's 10:00: gone at once.
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "patients",
        [{"external_id": "p9", "first_name": "Ann", "last_name": "Lee", "status": "active"}],
    )
    assert ten in await clean_starts(client, mirror)
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "appointments",
        [
            {
                "external_id": "pms-1",
                "patient_external_id": "p9",
                "provider_external_id": "hy",
                "start_at": mirror.at(10).isoformat(),
                "end_at": mirror.at(11).isoformat(),
                "status": "scheduled",
            }
        ],
    )
    assert ten not in await clean_starts(client, mirror)  # sync
    # ... and a sync of the hygienist's schedule (a day off) too.
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "schedules",
        [
            {
                "external_id": "hy-off",
                "kind": "exception",
                "provider_external_id": "hy",
                "date": mirror.day.isoformat(),
                "is_off": True,
            }
        ],
    )
    assert await clean_starts(client, mirror) == []


async def test_booking_confirmed_webhook_is_signed_end_to_end(client, mirror, receiver, run_jobs):
    endpoint = await create_endpoint(
        client, mirror.headers, receiver.url(), event_types=["booking.*"]
    )
    appointment = await booked(client, mirror)
    assert await run_jobs.run_until_idle() >= 2
    payloads = [r.verify(endpoint["secret"]) for r in receiver.requests]
    by_type = {p["type"]: p for p in payloads}
    assert set(by_type) == {"booking.held", "booking.confirmed"}
    assert by_type["booking.confirmed"]["data"]["appointment_id"] == appointment["id"]
    assert by_type["booking.confirmed"]["data"]["start"] == mirror.at(10).isoformat()


async def test_scopes_tenancy_and_publishable_keys_on_changes(
    client, mirror, practice, other_practice, make_token, make_publishable_key
):
    appointment = await booked(client, mirror)
    path = f"/v1/appointments/{appointment['id']}"
    stranger = await client.post(f"{path}/cancel", headers=other_practice.headers)
    assert stranger.status_code == 404
    stranger_hold = await hold(
        client, other_practice.headers, mirror.location_id, mirror.types["clean"], mirror.at(12)
    )
    assert stranger_hold.status_code == 404
    read_only = {
        "Authorization": f"Bearer {await make_token(practice.tenant.id, ['schedule:read'])}"
    }
    assert (await client.post(f"{path}/cancel", headers=read_only)).status_code == 403
    no_write = await hold(
        client, read_only, mirror.location_id, mirror.types["clean"], mirror.at(12)
    )
    assert no_write.status_code == 403
    assert no_write.json()["required_scopes"] == ["appointments:write"]
    widget = widget_headers(await make_publishable_key(practice.tenant.id, [mirror.location_id]))
    reschedule = await client.post(
        f"{path}/reschedule",
        json={"start": mirror.at(13).isoformat()},
        headers=widget | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert reschedule.status_code == 403
    assert (await client.post(f"{path}/cancel", headers=widget)).status_code == 403
    assert (await client.get("/v1/tasks", headers=widget)).status_code == 403
