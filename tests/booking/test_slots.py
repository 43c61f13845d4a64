"""Slots and next-available over the real mirror: hours, lunch, appointments, blocks,
exceptions, the appointment type's rules, DST days, range validation, access."""

from __future__ import annotations

from datetime import date, timedelta

from tests.booking.conftest import get_slots, local, push, starts


def hhmm(values: list[str]) -> list[str]:
    return [v[11:16] for v in values]


async def test_slots_follow_the_mirror(client, mirror, sessions):
    day = mirror.day.isoformat()
    exam = mirror.types["exam"]
    response = await get_slots(client, mirror.headers, mirror.location_id, exam, day, day)
    body = response.json()
    assert body["time_zone"] == "America/Chicago" and body["data_as_of"]
    by_start = {s["start"][11:16]: s for s in body["data"]}
    # Dr works 08-12 and 13-17, the hygienist 09-15; a 30-minute exam, 15-minute grid.
    assert hhmm(starts(response))[0] == "08:00" and hhmm(starts(response))[-1] == "16:30"
    assert by_start["08:00"]["providers"] == [mirror.providers["dr"]]
    assert set(by_start["10:00"]["providers"]) == {mirror.providers["dr"], mirror.providers["hy"]}
    assert by_start["11:45"]["providers"] == [mirror.providers["hy"]]  # runs into Dr's lunch
    assert by_start["08:00"]["start"].endswith("-06:00")
    assert by_start["08:00"]["end"][11:16] == "08:30"
    assert set(by_start["08:00"]["operatories"]) == set(mirror.operatories.values())

    # A PMS appointment (Dr, op1, 09:00-10:00), a block on the hygienist, a day off.
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
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "schedules",
        [
            {
                "external_id": "hy-block",
                "kind": "block",
                "provider_external_id": "hy",
                "start_at": mirror.at(13).isoformat(),
                "end_at": mirror.at(14).isoformat(),
            },
            {
                "external_id": "dr-off",
                "kind": "exception",
                "provider_external_id": "dr",
                "date": (mirror.day + timedelta(days=1)).isoformat(),
                "is_off": True,
            },
        ],
    )
    response = await get_slots(client, mirror.headers, mirror.location_id, exam, day, day)
    by_start = {s["start"][11:16]: s for s in response.json()["data"]}
    assert by_start["09:15"]["providers"] == [mirror.providers["hy"]]
    assert by_start["09:15"]["operatories"] == [mirror.operatories["op2"]]
    assert by_start["08:30"]["providers"] == [mirror.providers["dr"]]  # ends as it starts
    assert "08:45" not in by_start  # Dr is busy from 09:00, the hygienist starts at 09:00
    assert by_start["13:30"]["providers"] == [mirror.providers["dr"]]
    next_day = (mirror.day + timedelta(days=1)).isoformat()
    response = await get_slots(client, mirror.headers, mirror.location_id, exam, next_day, next_day)
    assert {p for s in response.json()["data"] for p in s["providers"]} == {mirror.providers["hy"]}


async def test_appointment_type_rules_and_provider_filter(client, mirror):
    day = mirror.day.isoformat()
    clean = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], day, day
    )
    assert hhmm(starts(clean))[0] == "09:00" and hhmm(starts(clean))[-1] == "14:00"
    assert all(s["operatories"] == [mirror.operatories["op2"]] for s in clean.json()["data"])
    only_dr = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        mirror.types["exam"],
        day,
        day,
        provider=mirror.providers["dr"],
    )
    assert {p for s in only_dr.json()["data"] for p in s["providers"]} == {mirror.providers["dr"]}

    refused = await get_slots(
        client, mirror.headers, mirror.location_id, mirror.types["root"], day, day
    )
    assert refused.status_code == 422
    assert refused.json()["reason"] == "not_self_bookable"
    wrong_provider = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        mirror.types["clean"],
        day,
        day,
        provider=mirror.providers["dr"],
    )
    assert wrong_provider.status_code == 422
    assert wrong_provider.json()["errors"][0]["field"] == "provider"
    unknown = await get_slots(client, mirror.headers, mirror.location_id, "atp_nope", day, day)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "appointment_type"


async def test_ranges_are_validated(client, mirror):
    exam = mirror.types["exam"]
    start = mirror.day
    too_long = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        exam,
        start.isoformat(),
        (start + timedelta(days=31)).isoformat(),
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "end"
    thirty_one = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        exam,
        start.isoformat(),
        (start + timedelta(days=30)).isoformat(),
    )
    assert thirty_one.status_code == 200
    backwards = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        exam,
        start.isoformat(),
        (start - timedelta(days=1)).isoformat(),
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "end"
    garbage = await get_slots(client, mirror.headers, mirror.location_id, exam, "soon", "later")
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["field"] == "start"
    naive = await get_slots(
        client, mirror.headers, mirror.location_id, exam, "2026-12-01T08:00:00", "2026-12-02"
    )
    assert naive.status_code == 422
    rfc = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        exam,
        mirror.at(10).isoformat(),
        mirror.at(11).isoformat(),
    )
    assert hhmm(starts(rfc)) == ["10:00", "10:15", "10:30", "10:45"]


async def test_dst_spring_forward_day_in_the_location_zone(client, mirror, sessions):
    dst = date(2027, 3, 14)  # Chicago: 02:00 CST becomes 03:00 CDT
    policy = await client.put(
        f"/v1/locations/{mirror.location_id}/booking-policy",
        json={"horizon_days": 366, "step_minutes": 30, "min_notice_minutes": 0},
        headers=mirror.headers,
    )
    assert policy.status_code == 200, policy.text
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "schedules",
        [
            {
                "external_id": "dr-dst",
                "kind": "exception",
                "provider_external_id": "dr",
                "date": dst.isoformat(),
                "start_time": "00:00",
                "end_time": "05:00",
            }
        ],
    )
    response = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        mirror.types["clean"],
        dst.isoformat(),
        dst.isoformat(),
        provider=mirror.providers["dr"],
    )
    assert response.status_code == 422  # cleaning is the hygienist's
    response = await get_slots(
        client,
        mirror.headers,
        mirror.location_id,
        mirror.types["exam"],
        dst.isoformat(),
        dst.isoformat(),
    )
    data = response.json()["data"]
    assert [s["start"][11:] for s in data] == [
        "00:00:00-06:00",
        "00:30:00-06:00",
        "01:00:00-06:00",
        "01:30:00-06:00",
        "03:00:00-05:00",
        "03:30:00-05:00",
        "04:00:00-05:00",
        "04:30:00-05:00",
    ]
    # 01:30 CST + 30 minutes is 03:00 CDT: a real half hour.
    assert data[3]["end"][11:] == "03:00:00-05:00"


async def test_next_available(client, mirror):
    response = await client.get(
        f"/v1/locations/{mirror.location_id}/next-available",
        params={"appointment_type": mirror.types["clean"], "after": mirror.day.isoformat()},
        headers=mirror.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["start"] == local(mirror.day, 9).isoformat()
    assert body["data"]["providers"] == [mirror.providers["hy"]]
    assert body["time_zone"] == "America/Chicago"


async def test_access_to_slots(client, mirror, practice, other_practice, make_token):
    day = mirror.day.isoformat()
    exam = mirror.types["exam"]
    stranger = await get_slots(client, other_practice.headers, mirror.location_id, exam, day, day)
    assert stranger.status_code == 404
    never_synced = await get_slots(client, mirror.headers, practice.locations[1].id, exam, day, day)
    assert never_synced.status_code == 409
    assert never_synced.json()["type"].endswith("/stale-data")
    token = await make_token(practice.tenant.id, ["patients:read"])
    no_scope = await get_slots(
        client, {"Authorization": f"Bearer {token}"}, mirror.location_id, exam, day, day
    )
    assert no_scope.status_code == 403
    limited = await make_token(
        practice.tenant.id, ["schedule:read"], location_ids=[practice.locations[1].id]
    )
    invisible = await get_slots(
        client, {"Authorization": f"Bearer {limited}"}, mirror.location_id, exam, day, day
    )
    assert invisible.status_code == 404
