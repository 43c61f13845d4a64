from __future__ import annotations

import pytest

from tests.practice.conftest import appointment, count_rows, patient


async def test_upsert_creates_then_updates_then_leaves_unchanged(sync, client, practice):
    first = await sync("patients", [patient("1"), patient("2")])
    assert first.status_code == 200, first.text
    assert first.json() | {"watermark": None} == {
        "entity": "patients",
        "location_id": practice.locations[0].id,
        "received": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "deletes_ignored": 0,
        "watermark": None,
        "data_as_of": None,
    }
    second = await sync("patients", [patient("1", last_name="Nguyen"), patient("2")])
    assert second.status_code == 200, second.text
    assert (second.json()["created"], second.json()["updated"], second.json()["unchanged"]) == (
        0,
        1,
        1,
    )
    page = (await client.get("/v1/patients", headers=practice.headers)).json()
    names = sorted((p["external_id"], p["last_name"]) for p in page["data"])
    assert names == [("1", "Nguyen"), ("2", "Rivera")]
    ids = {p["external_id"]: p["id"] for p in page["data"]}
    assert all(i.startswith("pat_") for i in ids.values())


async def test_contact_values_are_normalised(sync, client, practice):
    response = await sync(
        "patients", [patient("1", mobile="(512) 555-0134", email="Ann.Lee@Example.COM")]
    )
    assert response.status_code == 200, response.text
    data = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    assert (data[0]["mobile"], data[0]["email"]) == ("+15125550134", "Ann.Lee@example.com")


async def test_deletes_are_tombstones_hidden_from_reads(sync, client, practice, sessions):
    await sync("patients", [patient("1"), patient("2")])
    response = await sync("patients", deletes=["2", "nope"])
    assert response.status_code == 200, response.text
    assert (response.json()["deleted"], response.json()["deletes_ignored"]) == (1, 1)
    data = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    assert [p["external_id"] for p in data] == ["1"]
    tombstoned = await count_rows(
        sessions, "SELECT count(*) FROM patients WHERE external_id = '2' AND deleted_at IS NOT NULL"
    )
    assert tombstoned == 1
    # The PMS un-deletes: the same external id comes back to life with the same id.
    revived = await sync("patients", [patient("2")])
    assert revived.json()["updated"] == 1
    data = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    assert sorted(p["external_id"] for p in data) == ["1", "2"]


async def test_bad_rows_answer_422_per_row_and_write_nothing(sync, sessions):
    rows = [patient(str(i)) for i in range(20)]
    rows[3]["birthdate"] = "1985-13-45"
    rows[17]["mobile"] = "12"
    rows[17]["status"] = "asleep"
    rows[9]["favourite_color"] = "blue"
    response = await sync("patients", rows)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == [
        "rows[17].mobile",
        "rows[17].status",
        "rows[3].birthdate",
        "rows[9].favourite_color",
    ]
    assert "nothing was written" in response.json()["detail"]
    assert await count_rows(sessions, "SELECT count(*) FROM patients") == 0
    assert await count_rows(sessions, "SELECT count(*) FROM location_sync_states") == 0


async def test_a_row_that_is_not_an_object_is_a_row_error(sync, sessions):
    response = await sync("patients", [patient("1"), "2", None, [patient("3")]])  # type: ignore[list-item]
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["rows[1]", "rows[2]", "rows[3]"]
    assert {e["message"] for e in errors} == {"Input should be an object: one row of fields"}
    assert await count_rows(sessions, "SELECT count(*) FROM patients") == 0


async def test_a_nul_character_is_a_row_error_not_a_server_error(sync, sessions):
    # PostgreSQL text cannot hold U+0000; the COPY would fail on it after validation.
    bad = patient("2") | {"first_name": "A\u0000nn"}
    response = await sync(
        "patients", [patient("1"), bad, patient("3") | {"household_id": "\u0000"}]
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["rows[1].first_name", "rows[2].household_id"]
    assert {e["message"] for e in errors} == {"Text must not contain a NUL character (U+0000)"}
    assert await count_rows(sessions, "SELECT count(*) FROM patients") == 0


async def test_duplicate_external_ids_name_both_rows(sync, sessions):
    response = await sync("patients", [patient("1"), patient("2"), patient("1")])
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "rows[2].external_id"
    assert "rows[0]" in error["message"]
    assert await count_rows(sessions, "SELECT count(*) FROM patients") == 0


async def test_upsert_and_delete_of_one_id_is_refused(sync):
    response = await sync("patients", [patient("1")], deletes=["1"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "deletes[0]"


async def test_unknown_references_are_row_errors(sync, sessions):
    await sync("patients", [patient("1")])
    response = await sync(
        "appointments",
        [
            appointment("a1", "1"),
            appointment("a2", "404"),
            appointment("a3", "1", provider_external_id="x"),
        ],
    )
    assert response.status_code == 422, response.text
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"rows[1].patient_external_id", "rows[2].provider_external_id"}
    assert "'404'" in errors["rows[1].patient_external_id"]
    assert await count_rows(sessions, "SELECT count(*) FROM appointments") == 0


async def test_references_resolve_to_our_ids(sync, client, practice):
    await sync("providers", [{"external_id": "DR1", "kind": "dentist", "name": "Dr. Okafor"}])
    await sync("operatories", [{"external_id": "OP1", "name": "Op 1"}])
    types = await sync(
        "appointment-types",
        [
            {
                "external_id": "T1",
                "name": "Adult prophy",
                "duration_minutes": 60,
                "self_bookable": True,
                "provider_external_ids": ["DR1"],
                "operatory_external_ids": ["OP1"],
            }
        ],
    )
    assert types.status_code == 200, types.text
    # A family in one batch: the guarantor is new too, and comes after its dependant.
    family = await sync(
        "patients",
        [
            patient("kid", guarantor_external_id="mom", primary_provider_external_id="DR1"),
            patient("mom", guarantor_external_id="mom"),
        ],
    )
    assert family.status_code == 200, family.text
    booked = await sync(
        "appointments",
        [
            appointment(
                "A1",
                "kid",
                provider_external_id="DR1",
                operatory_external_id="OP1",
                appointment_type_external_id="T1",
            )
        ],
    )
    assert booked.status_code == 200, booked.text
    h = practice.headers
    patients = {
        p["external_id"]: p for p in (await client.get("/v1/patients", headers=h)).json()["data"]
    }
    provider = (await client.get("/v1/providers", headers=h)).json()["data"][0]
    operatory = (await client.get("/v1/operatories", headers=h)).json()["data"][0]
    appointment_type = (await client.get("/v1/appointment-types", headers=h)).json()["data"][0]
    assert patients["kid"]["guarantor_id"] == patients["mom"]["id"]
    assert patients["mom"]["guarantor_id"] == patients["mom"]["id"]
    assert patients["kid"]["primary_provider_id"] == provider["id"]
    assert appointment_type["provider_ids"] == [provider["id"]]
    assert appointment_type["operatory_ids"] == [operatory["id"]]
    [appt] = (await client.get("/v1/appointments", headers=h)).json()["data"]
    assert (appt["patient_id"], appt["provider_id"], appt["operatory_id"]) == (
        patients["kid"]["id"],
        provider["id"],
        operatory["id"],
    )
    assert appt["appointment_type_id"] == appointment_type["id"]


async def test_more_than_10000_rows_is_refused(sync, sessions):
    response = await sync(
        "operatories", [{"external_id": str(i), "name": "Op"} for i in range(10_001)]
    )
    assert response.status_code == 413, response.text
    assert response.json()["type"].endswith("/batch-too-large")
    assert await count_rows(sessions, "SELECT count(*) FROM operatories") == 0


async def test_idempotency_key_is_required(sync):
    response = await sync("patients", [patient("1")], key=None)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/idempotency-key-required")


async def test_same_key_replays_the_stored_result(sync, sessions):
    first = await sync("patients", [patient("1")], key="batch-0001")
    replay = await sync("patients", [patient("1")], key="batch-0001")
    assert replay.status_code == 200
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == first.json()
    assert replay.json()["created"] == 1  # not re-run: it would say "unchanged"
    other_body = await sync("patients", [patient("2")], key="batch-0001")
    assert other_body.status_code == 422
    batches = await count_rows(
        sessions, "SELECT (entities->'patients'->>'batches')::int FROM location_sync_states"
    )
    assert batches == 1


async def test_another_tenants_location_answers_404(sync, other_practice, sessions):
    response = await sync("patients", [patient("1")], location_id=other_practice.locations[0].id)
    assert response.status_code == 404
    assert await count_rows(sessions, "SELECT count(*) FROM patients") == 0


async def test_token_limited_to_one_location_cannot_sync_another(sync, practice, make_token):
    main, lakeside = practice.locations
    token = await make_token(practice.tenant.id, ["pms:sync"], [main.id])
    headers = {"Authorization": f"Bearer {token}"}
    refused = await sync("patients", [patient("1")], location_id=lakeside.id, headers=headers)
    assert refused.status_code == 404
    allowed = await sync("patients", [patient("1")], location_id=main.id, headers=headers)
    assert allowed.status_code == 200


@pytest.mark.scopes("patients:read", "schedule:read")
async def test_sync_needs_the_pms_sync_scope(sync):
    response = await sync("patients", [patient("1")])
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["pms:sync"]


async def test_unknown_entity_is_refused(sync):
    response = await sync("invoices", [])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "entity"


async def test_schedule_rows_are_checked_by_kind(sync):
    await sync("providers", [{"external_id": "H1", "kind": "hygienist", "name": "Sam"}])
    rows = [
        {
            "external_id": "w1",
            "kind": "weekly",
            "provider_external_id": "H1",
            "weekday": 0,
            "start_time": "08:00",
            "end_time": "17:00",
        },
        {
            "external_id": "x1",
            "kind": "exception",
            "provider_external_id": "H1",
            "date": "2026-12-24",
            "is_off": True,
        },
        {
            "external_id": "b1",
            "kind": "block",
            "provider_external_id": "H1",
            "start_at": "2026-11-25T18:00:00Z",
            "end_at": "2026-11-25T19:00:00Z",
            "reason": "Lunch",
        },
        {
            "external_id": "w2",
            "kind": "weekly",
            "provider_external_id": "H1",
            "weekday": 1,
            "start_time": "17:00",
            "end_time": "08:00",
        },
    ]
    response = await sync("schedules", rows)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["rows[3]"]
    assert (await sync("schedules", rows[:3])).json()["created"] == 3


async def test_a_malformed_body_is_refused_as_before(client, practice):
    # The push route parses JSON with pydantic-core; what it refuses still fails as
    # FastAPI's own parser would.
    response = await client.post(
        f"/v1/sync/locations/{practice.locations[0].id}/patients",
        content=b'{"rows": [{"external_id": "1",',
        headers=practice.headers | {"Idempotency-Key": "k-1", "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "json" in response.text.lower()
