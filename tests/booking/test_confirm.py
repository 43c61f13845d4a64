"""Confirming holds: patient matching (exact, none, ambiguous -> front-desk task),
write-backs, events, idempotent retries, publishable keys."""

from __future__ import annotations

import uuid

from tests.booking.conftest import (
    PATIENT,
    confirm,
    count,
    get_slots,
    hold,
    push,
    starts,
    widget_headers,
)


async def held(client, mirror, hour=10, headers=None):
    response = await hold(
        client,
        headers or mirror.headers,
        mirror.location_id,
        mirror.types["clean"],
        mirror.at(hour),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def push_patient(sessions, mirror, external_id, **fields):
    row = {
        "external_id": external_id,
        "first_name": "Maria",
        "last_name": "Rivera",
        "birthdate": "1985-04-12",
        "status": "active",
        "mobile": "+15125550100",
    }
    await push(sessions, mirror.tenant_id, mirror.location_id, "patients", [row | fields])


async def test_an_exact_match_books_into_the_existing_chart(client, mirror, sessions):
    await push_patient(sessions, mirror, "p1", email="maria@example.com")
    await push_patient(sessions, mirror, "p2", first_name="Mario")  # another person
    the_hold = await held(client, mirror)
    response = await confirm(
        client,
        mirror.headers,
        the_hold["id"],
        {
            "first_name": "maria",
            "last_name": "RIVERA",
            "birthdate": "1985-04-12",
            "email": "Maria@Example.com",
            "notes": "Prefers mornings",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "confirmed" and body["patient_created"] is False
    existing = await count(
        sessions,
        "SELECT count(*) FROM patients WHERE external_id = 'p1' AND id = :id",
        id=body["patient_id"],
    )
    assert existing == 1
    appointment = body["appointment"]
    assert appointment["status"] == "scheduled" and appointment["source"] == "online"
    assert appointment["provider_id"] == the_hold["provider_id"]
    assert body["hold"]["status"] == "confirmed"
    assert body["hold"]["appointment_id"] == appointment["id"]
    writeback = await count(
        sessions,
        "SELECT count(*) FROM writebacks WHERE kind = 'appointment_create' "
        "AND payload->>'appointment_id' = :a AND payload->>'notes' = 'Prefers mornings'",
        a=appointment["id"],
    )
    assert writeback == 1
    assert (
        await count(sessions, "SELECT count(*) FROM events WHERE type = 'booking.confirmed'") == 1
    )
    # The claims now belong to the appointment and never expire.
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM calendar_claims WHERE appointment_id = :a "
            "AND hold_expires_at IS NULL",
            a=appointment["id"],
        )
        == 24
    )


async def test_no_match_creates_the_patient(client, mirror, sessions):
    the_hold = await held(client, mirror)
    response = await confirm(client, mirror.headers, the_hold["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patient_created"] is True
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM patients WHERE id = :id AND external_id LIKE 'online:%' "
            "AND mobile = '+15125550100'",
            id=body["patient_id"],
        )
        == 1
    )
    assert (
        await count(
            sessions, "SELECT count(*) FROM writebacks WHERE payload->'patient'->>'new' = 'true'"
        )
        == 1
    )


async def test_an_ambiguous_match_goes_to_the_front_desk(client, mirror, sessions):
    await push_patient(sessions, mirror, "p1")
    await push_patient(sessions, mirror, "p2")  # a duplicate chart in the PMS
    the_hold = await held(client, mirror)
    response = await confirm(client, mirror.headers, the_hold["id"])
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "needs_review" and body["appointment"] is None
    task_id = body["task_id"]
    assert body["hold"]["status"] == "exception" and body["hold"]["task_id"] == task_id
    task = await client.get(f"/v1/tasks/{task_id}", headers=mirror.headers)
    assert task.status_code == 200
    assert task.json()["kind"] == "booking_exception"
    assert task.json()["hold_id"] == the_hold["id"]
    assert "2 charts" in task.json()["title"]
    assert await count(sessions, "SELECT count(*) FROM appointments") == 0
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM events WHERE type = 'booking.exception' "
            "AND data->>'task_id' = :t",
            t=task_id,
        )
        == 1
    )
    # The slot stays held while the front desk decides.
    day = mirror.day.isoformat()
    listed = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], day, day
    )
    assert mirror.at(10).isoformat() not in starts(listed)
    again = await confirm(client, mirror.headers, the_hold["id"])
    assert again.status_code == 409 and again.json()["reason"] == "hold_used"


async def test_confirm_retries_are_idempotent(client, mirror, sessions):
    the_hold = await held(client, mirror)
    key = str(uuid.uuid4())
    first = await confirm(client, mirror.headers, the_hold["id"], key=key)
    again = await confirm(client, mirror.headers, the_hold["id"], key=key)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await count(sessions, "SELECT count(*) FROM appointments") == 1
    assert await count(sessions, "SELECT count(*) FROM writebacks") == 1
    other_key = await confirm(client, mirror.headers, the_hold["id"])
    assert other_key.status_code == 409 and other_key.json()["reason"] == "hold_used"
    missing_key = await client.post(
        f"/v1/holds/{the_hold['id']}/confirm", json=PATIENT, headers=mirror.headers
    )
    assert missing_key.status_code == 400


async def test_confirm_needs_a_way_to_reach_the_patient(client, mirror):
    the_hold = await held(client, mirror)
    response = await confirm(
        client,
        mirror.headers,
        the_hold["id"],
        {"first_name": "Maria", "last_name": "Rivera", "birthdate": "1985-04-12"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "mobile"
    bad_phone = await confirm(client, mirror.headers, the_hold["id"], PATIENT | {"mobile": "12"})
    assert bad_phone.status_code == 422 and bad_phone.json()["errors"][0]["field"] == "mobile"


async def test_publishable_keys_book_only_their_own_locations_and_holds(
    client, mirror, practice, make_publishable_key
):
    key = await make_publishable_key(practice.tenant.id, [mirror.location_id])
    widget = widget_headers(key)
    day = mirror.day.isoformat()
    listed = await get_slots(client, widget, mirror.location_id, mirror.types["clean"], day, day)
    assert listed.status_code == 200 and listed.json()["data"]
    the_hold = await held(client, mirror, headers=widget)
    confirmed = await confirm(client, widget, the_hold["id"])
    assert confirmed.status_code == 200, confirmed.text

    other_location = await get_slots(
        client, widget, practice.locations[1].id, mirror.types["clean"], day, day
    )
    assert other_location.status_code == 404
    elsewhere = await hold(
        client, widget, practice.locations[1].id, mirror.types["clean"], mirror.at(10)
    )
    assert elsewhere.status_code == 404
    # Another widget's key cannot see, let alone confirm, this key's hold.
    second_key = widget_headers(
        await make_publishable_key(practice.tenant.id, [mirror.location_id])
    )
    staff_hold = await held(client, mirror, hour=12)
    assert (await confirm(client, second_key, staff_hold["id"])).status_code == 404
    assert (await client.get(f"/v1/holds/{the_hold['id']}", headers=second_key)).status_code == 404
    # A page on another origin is refused.
    foreign = widget | {"Origin": "https://evil.example"}
    assert (
        await get_slots(client, foreign, mirror.location_id, mirror.types["clean"], day, day)
    ).status_code == 403
