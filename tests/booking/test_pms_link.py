"""Online bookings meet the PMS: once the bridge acknowledges the appointment write-back
with the PMS's id, our appointment (and a chart the booking created) carry that id, so the
bridge's next sync of them updates our rows instead of importing them again."""

from __future__ import annotations

import asyncio
import uuid

from api.core.db import unit_of_work
from api.practice import ingest_sql
from tests.booking.conftest import PATIENT, confirm, count, hold, push, utc


async def _book(client, mirror, patient=None, hour=10):
    held = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], mirror.at(hour)
    )
    assert held.status_code == 201, held.text
    done = await confirm(client, mirror.headers, held.json()["id"], patient)
    assert done.status_code == 200, done.text
    return done.json()


async def _claim_and_ack(client, mirror, **ack):
    claimed = await client.post(
        "/v1/sync/writebacks/claim",
        json={"location_id": mirror.location_id, "limit": 10, "lease_seconds": 60},
        headers=mirror.headers,
    )
    assert claimed.status_code == 200, claimed.text
    [item] = [w for w in claimed.json()["data"] if w["kind"] == "appointment_create"]
    acked = await client.post(
        f"/v1/sync/writebacks/{item['id']}/ack",
        json={"lease_id": claimed.json()["lease_id"], "outcome": "succeeded", **ack},
        headers=mirror.headers,
    )
    assert acked.status_code == 200, acked.text
    return item


async def _sync(client, mirror, entity, rows):
    response = await client.post(
        f"/v1/sync/locations/{mirror.location_id}/{entity}",
        json={"rows": rows},
        headers=mirror.headers | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 200, response.text


def _pms_appointment(mirror, external_id, patient_external_id, **fields):
    return {
        "external_id": external_id,
        "patient_external_id": patient_external_id,
        "provider_external_id": "dr",
        "appointment_type_external_id": "exam",
        "start_at": utc(mirror.at(10)).isoformat(),
        "end_at": utc(mirror.at(10, 30)).isoformat(),
        "status": "confirmed",
    } | fields


async def _appointments(sessions, mirror):
    return await count(
        sessions,
        "SELECT count(*) FROM appointments WHERE location_id = :l AND deleted_at IS NULL",
        l=mirror.location_id,
    )


async def test_the_pms_sync_of_an_acknowledged_booking_updates_it(client, mirror, sessions):
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "patients",
        [
            {
                "external_id": "p1",
                "first_name": "Maria",
                "last_name": "Rivera",
                "birthdate": "1985-04-12",
                "status": "active",
                "mobile": "+15125550100",
            }
        ],
    )
    booked = await _book(client, mirror)
    appointment_id = booked["appointment"]["id"]
    await _claim_and_ack(client, mirror, pms_id="APT-900")
    linked = await count(
        sessions,
        "SELECT count(*) FROM appointments WHERE id = :a AND external_id = 'APT-900'",
        a=appointment_id,
    )
    assert linked == 1

    await _sync(client, mirror, "appointments", [_pms_appointment(mirror, "APT-900", "p1")])
    assert await _appointments(sessions, mirror) == 1
    # The PMS's view (confirmed by the front desk) landed on our row.
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM appointments WHERE id = :a AND status = 'confirmed'",
            a=appointment_id,
        )
        == 1
    )


async def test_a_chart_the_booking_created_takes_its_pms_id_too(client, mirror, sessions):
    booked = await _book(client, mirror)
    assert booked["patient_created"] is True
    await _claim_and_ack(client, mirror, pms_id="APT-901", patient_pms_id="PT-77")
    await _sync(
        client,
        mirror,
        "patients",
        [
            {
                "external_id": "PT-77",
                "first_name": "Maria",
                "last_name": "Rivera",
                "birthdate": "1985-04-12",
                "status": "active",
                "mobile": "+15125550100",
            }
        ],
    )
    await _sync(client, mirror, "appointments", [_pms_appointment(mirror, "APT-901", "PT-77")])
    assert await count(sessions, "SELECT count(*) FROM patients") == 1
    assert await _appointments(sessions, mirror) == 1
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM appointments a JOIN patients p ON p.id = a.patient_id "
            "WHERE a.id = :a AND p.id = :p AND p.external_id = 'PT-77'",
            a=booked["appointment"]["id"],
            p=booked["patient_id"],
        )
        == 1
    )


async def test_an_import_that_raced_the_ack_is_retired(client, mirror, sessions):
    await _book(client, mirror, PATIENT)
    await _claim_and_ack(client, mirror, pms_id="APT-902", patient_pms_id="PT-78")
    # The bridge imported the PMS appointment before it acknowledged (a second row).
    await _sync(
        client,
        mirror,
        "patients",
        [
            {
                "external_id": "PT-79",
                "first_name": "Ana",
                "last_name": "Lee",
                "birthdate": "1970-01-01",
                "status": "active",
            }
        ],
    )
    held = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["exam"], mirror.at(14)
    )
    second = await confirm(
        client,
        mirror.headers,
        held.json()["id"],
        {
            "first_name": "Ana",
            "last_name": "Lee",
            "birthdate": "1970-01-01",
            "email": "ana@example.com",
        },
    )
    assert second.status_code == 200, second.text
    imported = _pms_appointment(
        mirror,
        "APT-903",
        "PT-79",
        start_at=utc(mirror.at(14)).isoformat(),
        end_at=utc(mirror.at(14, 30)).isoformat(),
    )
    await _sync(client, mirror, "appointments", [imported])
    assert await _appointments(sessions, mirror) == 3
    await _claim_and_ack(client, mirror, pms_id="APT-903")
    assert await _appointments(sessions, mirror) == 2
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM appointments WHERE id = :a AND external_id = 'APT-903'",
            a=second.json()["appointment"]["id"],
        )
        == 1
    )
    # The next sync of APT-903 updates ours; the retired row stays retired.
    await _sync(client, mirror, "appointments", [imported | {"status": "confirmed"}])
    assert await _appointments(sessions, mirror) == 2


async def test_a_failed_write_back_links_nothing(client, mirror, sessions):
    booked = await _book(client, mirror, PATIENT)
    claimed = await client.post(
        "/v1/sync/writebacks/claim",
        json={"location_id": mirror.location_id, "limit": 10, "lease_seconds": 60},
        headers=mirror.headers,
    )
    [item] = claimed.json()["data"]
    acked = await client.post(
        f"/v1/sync/writebacks/{item['id']}/ack",
        json={
            "lease_id": claimed.json()["lease_id"],
            "outcome": "failed",
            "reason": "full",
            "pms_id": "APT-904",
        },
        headers=mirror.headers,
    )
    assert acked.status_code == 200, acked.text
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM appointments WHERE id = :a AND external_id LIKE 'online:%'",
            a=booked["appointment"]["id"],
        )
        == 1
    )


async def test_an_ack_renaming_a_booking_waits_for_a_sync_batch_of_appointments(
    client, mirror, sessions
):
    # A sync batch inserts the rows it found new by PMS id under its entity's lock; the
    # ack's rename to a PMS id takes the same lock, so it cannot land between the batch's
    # look-up and its insert.
    await _book(client, mirror)
    async with unit_of_work(sessions, mirror.tenant_id) as batch:
        await ingest_sql.lock_entity(batch, mirror.tenant_id, mirror.location_id, "appointments")
        ack = asyncio.create_task(_claim_and_ack(client, mirror, pms_id="A-77"))
        done, _ = await asyncio.wait([ack], timeout=0.5)
        assert not done  # waiting for the batch
    await asyncio.wait_for(ack, timeout=10)
    assert (
        await count(
            sessions,
            "SELECT count(*) FROM appointments WHERE location_id = :l AND external_id = 'A-77'",
            l=mirror.location_id,
        )
        == 1
    )
