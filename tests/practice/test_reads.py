from __future__ import annotations

import pytest

from tests.practice.conftest import appointment, patient


async def _chart(sync) -> None:
    await sync("providers", [{"external_id": "DR1", "kind": "dentist", "name": "Dr. Okafor"}])
    await sync(
        "patients",
        [
            patient("mom", guarantor_external_id="mom"),
            patient("kid", guarantor_external_id="mom", status="active"),
            patient("old", status="inactive"),
            patient("gone"),
        ],
        watermark="2026-11-20T14:00:00Z",
    )
    await sync("patients", deletes=["gone"])
    await sync(
        "recalls",
        [
            {
                "external_id": "r1",
                "patient_external_id": "kid",
                "recall_type": "prophy",
                "interval_months": 6,
                "due_date": "2026-10-01",
            },
            {
                "external_id": "r2",
                "patient_external_id": "kid",
                "recall_type": "bitewings",
                "interval_months": 12,
                "due_date": "2027-01-15",
            },
        ],
    )
    await sync("recalls", deletes=["r2"])
    await sync(
        "treatment-plans",
        [
            {
                "external_id": "tp1",
                "patient_external_id": "kid",
                "name": "Crowns",
                "status": "proposed",
            }
        ],
    )
    await sync(
        "procedures",
        [
            {
                "external_id": "p1",
                "patient_external_id": "kid",
                "treatment_plan_external_id": "tp1",
                "code": "D2740",
                "tooth": "14",
                "fee": "1250.00",
                "status": "proposed",
            },
            {
                "external_id": "p2",
                "patient_external_id": "kid",
                "code": "D1120",
                "fee": "85.50",
                "status": "accepted",
            },
            {
                "external_id": "p3",
                "patient_external_id": "kid",
                "code": "D0120",
                "fee": "60",
                "status": "completed",
                "completed_date": "2026-05-01",
            },
        ],
    )
    await sync(
        "ledger",
        [
            {
                "external_id": "mom",
                "guarantor_external_id": "mom",
                "balance": "310.00",
                "aging_0_30": "100.00",
                "aging_over_90": "210.00",
                "in_collections": False,
            }
        ],
    )
    await sync(
        "appointments",
        [
            appointment(
                "a1",
                "kid",
                start_at="2026-11-24T15:00:00Z",
                end_at="2026-11-24T16:00:00Z",
                provider_external_id="DR1",
            ),
            appointment(
                "a2",
                "mom",
                start_at="2026-11-25T15:00:00Z",
                end_at="2026-11-25T16:00:00Z",
                status="confirmed",
            ),
            appointment(
                "a3", "mom", start_at="2026-11-26T15:00:00Z", end_at="2026-11-26T16:00:00Z"
            ),
        ],
    )
    await sync("appointments", deletes=["a3"])


async def test_patient_list_filters_carry_data_as_of_and_hide_tombstones(sync, client, practice):
    await _chart(sync)
    h = practice.headers
    body = (await client.get("/v1/patients", headers=h)).json()
    assert sorted(p["external_id"] for p in body["data"]) == ["kid", "mom", "old"]
    assert {p["data_as_of"] for p in body["data"]} == {"2026-11-20T14:00:00Z"}
    inactive = (await client.get("/v1/patients", headers=h, params={"status": "inactive"})).json()
    assert [p["external_id"] for p in inactive["data"]] == ["old"]
    other = practice.locations[1].id
    empty = (await client.get("/v1/patients", headers=h, params={"location_id": other})).json()
    assert empty["data"] == []
    later = (
        await client.get(
            "/v1/patients", headers=h, params={"updated_since": "2999-01-01T00:00:00Z"}
        )
    ).json()
    assert later["data"] == []


async def test_patient_list_paginates(sync, client, practice):
    await sync("patients", [patient(str(i)) for i in range(7)])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/patients", headers=practice.headers, params=params)).json()
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(seen)


async def test_patient_detail_has_recalls_open_treatment_and_balance(sync, client, practice):
    await _chart(sync)
    h = practice.headers
    patients = {
        p["external_id"]: p["id"]
        for p in (await client.get("/v1/patients", headers=h)).json()["data"]
    }
    response = await client.get(f"/v1/patients/{patients['kid']}", headers=h)
    assert response.status_code == 200, response.text
    kid = response.json()
    assert kid["data_as_of"] == "2026-11-20T14:00:00Z"
    assert [r["recall_type"] for r in kid["recalls"]] == ["prophy"]
    assert kid["recalls"][0]["due_date"] == "2026-10-01"
    assert sorted(p["code"] for p in kid["open_treatment"]["procedures"]) == ["D1120", "D2740"]
    assert kid["open_treatment"]["total_fee"] == "1335.50"
    assert [p["name"] for p in kid["open_treatment"]["plans"]] == ["Crowns"]
    assert kid["balance"]["balance"] == "310.00"
    assert kid["balance"]["guarantor_id"] == patients["mom"]


async def test_tombstoned_and_foreign_patients_answer_404(
    sync, client, practice, other_practice, sessions
):
    from sqlalchemy import text

    await _chart(sync)
    async with sessions() as session:
        gone = (
            await session.execute(text("SELECT id FROM patients WHERE external_id = 'gone'"))
        ).scalar_one()
    assert (await client.get(f"/v1/patients/{gone}", headers=practice.headers)).status_code == 404
    assert (
        await client.get(f"/v1/patients/{gone}", headers=other_practice.headers)
    ).status_code == 404


async def test_appointments_filter_by_range_status_and_provider(sync, client, practice):
    await _chart(sync)
    h = practice.headers
    all_ = (await client.get("/v1/appointments", headers=h)).json()["data"]
    assert [a["external_id"] for a in all_] == ["a1", "a2"]  # a3 is tombstoned
    assert all_[0]["data_as_of"] == "2026-11-20T14:00:00Z"
    window = (
        await client.get(
            "/v1/appointments",
            headers=h,
            params={"start_from": "2026-11-25T00:00:00Z", "start_before": "2026-11-26T00:00:00Z"},
        )
    ).json()["data"]
    assert [a["external_id"] for a in window] == ["a2"]
    confirmed = (
        await client.get("/v1/appointments", headers=h, params={"status": "confirmed"})
    ).json()
    assert [a["external_id"] for a in confirmed["data"]] == ["a2"]
    provider = (await client.get("/v1/providers", headers=h)).json()["data"][0]["id"]
    by_provider = (
        await client.get("/v1/appointments", headers=h, params={"provider_id": provider})
    ).json()
    assert [a["external_id"] for a in by_provider["data"]] == ["a1"]


async def test_a_token_limited_to_one_location_sees_only_its_rows(
    sync, client, practice, make_token
):
    main, lakeside = practice.locations
    await sync("patients", [patient("m1")], location_id=main.id)
    await sync("patients", [patient("l1")], location_id=lakeside.id)
    token = await make_token(practice.tenant.id, ["patients:read"], [lakeside.id])
    headers = {"Authorization": f"Bearer {token}"}
    data = (await client.get("/v1/patients", headers=headers)).json()["data"]
    assert [p["external_id"] for p in data] == ["l1"]
    refused = await client.get("/v1/patients", headers=headers, params={"location_id": main.id})
    assert refused.status_code == 404


@pytest.mark.scopes("schedule:read")
async def test_patients_need_patients_read(client, practice):
    response = await client.get("/v1/patients", headers=practice.headers)
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["patients:read"]


@pytest.mark.scopes("patients:read")
async def test_appointments_need_schedule_read(client, practice):
    for path in ("/v1/appointments", "/v1/providers", "/v1/operatories", "/v1/appointment-types"):
        response = await client.get(path, headers=practice.headers)
        assert response.status_code == 403, path
