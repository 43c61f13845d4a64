"""REST: the tenant's do-not-contact list (add, list, remove); scopes, isolation, input."""

from __future__ import annotations

from sqlalchemy import text

from api.core.db import unit_of_work
from tests.audiences.conftest import person


async def test_add_list_remove(client, practice, load):
    await load(practice, "patients", [person("ana", 1)])
    patients = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    ana = patients[0]["id"]
    by_patient = await client.post(
        "/v1/do-not-contact",
        json={"patient_id": ana, "note": "deceased spouse's request"},
        headers=practice.headers,
    )
    assert by_patient.status_code == 201, by_patient.text
    by_phone = await client.post(
        "/v1/do-not-contact", json={"phone": "512-555-0199"}, headers=practice.headers
    )
    assert by_phone.json()["phone"] == "+15125550199"
    assert by_phone.json()["id"].startswith("dnc_")

    listed = (await client.get("/v1/do-not-contact", headers=practice.headers)).json()
    assert [e["id"] for e in listed["data"]] == sorted(
        [by_patient.json()["id"], by_phone.json()["id"]]
    )
    assert listed["next_cursor"] is None
    page = (await client.get("/v1/do-not-contact?limit=1", headers=practice.headers)).json()
    assert len(page["data"]) == 1 and page["next_cursor"]

    removed = await client.delete(
        f"/v1/do-not-contact/{by_phone.json()['id']}", headers=practice.headers
    )
    assert removed.status_code == 204
    again = await client.delete(
        f"/v1/do-not-contact/{by_phone.json()['id']}", headers=practice.headers
    )
    assert again.status_code == 404
    listed = (await client.get("/v1/do-not-contact", headers=practice.headers)).json()
    assert [e["patient_id"] for e in listed["data"]] == [ana]


async def test_bad_entries_write_nothing(client, practice, sessions):
    for body, field in (
        ({}, "body"),
        ({"phone": "not a number"}, "phone"),
        ({"email": "nobody-at-example"}, "email"),
        ({"patient_id": "pat_nope"}, "patient_id"),
        ({"phone": "+15125550100", "email": "x@"}, "email"),
    ):
        response = await client.post("/v1/do-not-contact", json=body, headers=practice.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == field, response.json()
    async with unit_of_work(sessions, practice.tenant.id) as session:
        count = await session.execute(text("SELECT count(*) FROM do_not_contact_entries"))
        assert count.scalar_one() == 0


async def test_scopes_and_idempotency(client, practice, make_token):
    review = {
        "Authorization": f"Bearer {await make_token(practice.tenant.id, ['communications:review'])}"
    }
    refused = await client.post(
        "/v1/do-not-contact", json={"phone": "+15125550100"}, headers=review
    )
    assert refused.status_code == 403
    assert refused.json()["required_scopes"] == ["communications:manage"]
    assert (await client.get("/v1/do-not-contact", headers=review)).status_code == 200
    export_only = {
        "Authorization": f"Bearer {await make_token(practice.tenant.id, ['audiences:read'])}"
    }
    denied = await client.get("/v1/do-not-contact", headers=export_only)
    assert denied.status_code == 403
    assert denied.json()["required_scopes"] == ["communications:review"]

    key = practice.headers | {"Idempotency-Key": "dnc-1"}
    first = await client.post("/v1/do-not-contact", json={"email": "a@example.com"}, headers=key)
    second = await client.post("/v1/do-not-contact", json={"email": "a@example.com"}, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert (
        len((await client.get("/v1/do-not-contact", headers=practice.headers)).json()["data"]) == 1
    )
    removed = await client.delete(f"/v1/do-not-contact/{first.json()['id']}", headers=review)
    assert removed.status_code == 403


async def test_another_tenants_entry_is_not_found(client, practice, other_practice, load):
    entry = await client.post(
        "/v1/do-not-contact", json={"phone": "+15125550100"}, headers=practice.headers
    )
    stranger = other_practice.headers
    gone = await client.delete(f"/v1/do-not-contact/{entry.json()['id']}", headers=stranger)
    assert gone.status_code == 404
    assert (await client.get("/v1/do-not-contact", headers=stranger)).json()["data"] == []
    # Another tenant's patient id is as unknown as a made-up one.
    await load(practice, "patients", [person("ana", 1)])
    ana = (await client.get("/v1/patients", headers=practice.headers)).json()["data"][0]["id"]
    borrowed = await client.post("/v1/do-not-contact", json={"patient_id": ana}, headers=stranger)
    assert borrowed.status_code == 422 and borrowed.json()["errors"][0]["field"] == "patient_id"
