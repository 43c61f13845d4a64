"""REST: segments CRUD, scopes, idempotency, tenant isolation, preview and explain."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from api.core.db import unit_of_work
from api.practice import ingest
from tests.segments.conftest import patient

RULE = {
    "version": 1,
    "rule": {
        "all": [
            {"field": "status", "op": "in", "value": ["active"]},
            {"field": "balance", "op": "gt", "value": 200},
        ]
    },
}


def _today(zone: str = "America/Chicago") -> dt.date:
    return dt.datetime.now(ZoneInfo(zone)).date()


async def _load(sessions, tenant_id, location_id, entity, rows, watermark=None):
    async with unit_of_work(sessions, tenant_id) as session:
        await ingest.sync_batch(
            session,
            tenant_id=tenant_id,
            location_id=location_id,
            entity=entity,
            rows=rows,
            watermark=watermark,
            now=dt.datetime.now(dt.UTC),
        )


async def _owing_patients(sessions, practice, location_index=0, watermark=None):
    location = practice.locations[location_index]
    await _load(
        sessions,
        practice.tenant.id,
        location.id,
        "patients",
        [
            patient("rich", status="active"),
            patient("poor", status="active"),
            patient("gone", status="inactive"),
        ],
        watermark=watermark,
    )
    await _load(
        sessions,
        practice.tenant.id,
        location.id,
        "ledger",
        [
            {"external_id": f"L-{x}", "guarantor_external_id": x, "balance": b}
            for x, b in (("rich", "500"), ("poor", "10"), ("gone", "900"))
        ],
    )


async def _create(client, practice, body=None, **headers):
    return await client.post(
        "/v1/segments",
        json=body or {"name": "Owes", "rule": RULE},
        headers=practice.headers | headers,
    )


async def test_crud_round_trip(client, practice):
    created = await _create(client, practice)
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["id"].startswith("seg_")
    assert segment["refresh_cadence"] == "daily" and segment["refresh_local_time"] == "23:00:00"
    assert segment["location_ids"] == [] and segment["rule"] == RULE
    url = f"/v1/segments/{segment['id']}"
    assert (await client.get(url, headers=practice.headers)).json() == segment
    listed = (await client.get("/v1/segments", headers=practice.headers)).json()
    assert [s["id"] for s in listed["data"]] == [segment["id"]]
    patch = {
        "name": "Owes a lot",
        "refresh_cadence": "weekly",
        "refresh_weekday": 4,
        "location_ids": [practice.locations[1].id],
    }
    changed = await client.patch(url, json=patch, headers=practice.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Owes a lot"
    assert changed.json()["location_ids"] == [practice.locations[1].id]
    assert changed.json()["refresh_weekday"] == 4
    assert (await client.delete(url, headers=practice.headers)).status_code == 204
    assert (await client.get(url, headers=practice.headers)).status_code == 404


async def test_the_refresh_time_is_a_local_time_without_offset(client, practice):
    refused = await _create(
        client, practice, {"name": "Owes", "rule": RULE, "refresh_local_time": "23:00+01:00"}
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["refresh_local_time"]
    assert (await client.get("/v1/segments", headers=practice.headers)).json()["data"] == []
    created = await _create(
        client, practice, {"name": "Owes", "rule": RULE, "refresh_local_time": "06:15"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["refresh_local_time"] == "06:15:00"


async def test_invalid_rule_is_a_422_pointing_into_the_rule(client, practice):
    bad = {
        "version": 1,
        "rule": {
            "all": [
                {"field": "status", "op": "in", "value": ["active"]},
                {"field": "balance", "op": "gt", "value": 200},
                {"field": "balance", "op": "gt", "value": "a lot"},
            ]
        },
    }
    response = await _create(client, practice, {"name": "Bad", "rule": bad})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"] == [
        {"field": "/rule/all/2/value", "message": "expected a number"}
    ]
    preview = await client.post(
        "/v1/segments/preview", json={"rule": {"version": 3}}, headers=practice.headers
    )
    assert preview.status_code == 422
    assert {e["field"] for e in preview.json()["errors"]} == {"/version", "/rule"}
    created = (await _create(client, practice)).json()
    patched = await client.patch(
        f"/v1/segments/{created['id']}", json={"rule": bad}, headers=practice.headers
    )
    assert (
        patched.status_code == 422 and patched.json()["errors"][0]["field"] == "/rule/all/2/value"
    )


async def test_locations_must_be_visible(client, practice, other_practice):
    body = {"name": "X", "rule": RULE, "location_ids": [other_practice.locations[0].id]}
    response = await _create(client, practice, body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "location_ids[0]"


@pytest.mark.scopes("communications:review")
async def test_review_reads_but_cannot_create(client, practice):
    response = await _create(client, practice)
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["communications:manage"]
    assert (await client.get("/v1/segments", headers=practice.headers)).status_code == 200
    fields = (await client.get("/v1/segment-fields", headers=practice.headers)).json()
    assert {"last_visit_date", "overdue_hygiene", "primary_provider_name"} <= {
        f["name"] for f in fields
    }
    status = next(f for f in fields if f["name"] == "status")
    assert status["operators"] == ["in", "not_in"] and "inactive" in status["enum_values"]
    templates = (await client.get("/v1/segment-templates", headers=practice.headers)).json()
    assert "due_for_recall" in {t["key"] for t in templates}


@pytest.mark.scopes("patients:read")
async def test_catalog_needs_review(client, practice):
    response = await client.get("/v1/segment-fields", headers=practice.headers)
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["communications:review"]


@pytest.mark.scopes("communications:manage")
async def test_manage_creates_and_reads(client, practice):
    created = await _create(client, practice)
    assert created.status_code == 201
    got = await client.get(f"/v1/segments/{created.json()['id']}", headers=practice.headers)
    assert got.status_code == 200


async def test_idempotent_create(client, practice, sessions):
    first = await _create(client, practice, **{"Idempotency-Key": "seg-key-1"})
    again = await _create(client, practice, **{"Idempotency-Key": "seg-key-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    listed = (await client.get("/v1/segments", headers=practice.headers)).json()
    assert len(listed["data"]) == 1
    other_body = await _create(
        client, practice, {"name": "Other", "rule": RULE}, **{"Idempotency-Key": "seg-key-1"}
    )
    assert other_body.status_code == 422


async def test_create_from_template(client, practice):
    response = await _create(client, practice, {"template": "winback_perio_12_plus"})
    assert response.status_code == 201, response.text
    segment = response.json()
    assert segment["template"] == "winback_perio_12_plus"
    assert segment["name"].startswith("Win-back: perio")
    assert segment["rule"]["rule"]["all"][1]["value"]["recall_types"] == ["perio"]
    unknown = await _create(client, practice, {"template": "nope"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "template"
    both = await _create(client, practice, {"template": "lapsed", "rule": RULE})
    assert both.status_code == 422


async def test_preview_counts_samples_and_carries_data_as_of(client, practice, sessions):
    await _owing_patients(
        sessions, practice, watermark=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    )
    preview = await client.post(
        "/v1/segments/preview", json={"rule": RULE}, headers=practice.headers
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["count"] == 1
    assert [s["name"] for s in body["sample"]] == ["Frich Lee"]
    assert body["sample"][0]["location_id"] == practice.locations[0].id
    # The second location never synced: the oldest watermark is unknown.
    assert body["data_as_of"] is None
    only_first = await client.post(
        "/v1/segments/preview",
        json={"rule": RULE, "location_ids": [practice.locations[0].id]},
        headers=practice.headers,
    )
    assert only_first.json()["data_as_of"] == "2026-01-02T03:04:05Z"
    only_second = await client.post(
        "/v1/segments/preview",
        json={"rule": RULE, "location_ids": [practice.locations[1].id]},
        headers=practice.headers,
    )
    assert only_second.json()["count"] == 0
    segment = (
        await _create(
            client,
            practice,
            {"name": "Owes", "rule": RULE, "location_ids": [practice.locations[0].id]},
        )
    ).json()
    stored = (
        await client.get(f"/v1/segments/{segment['id']}/preview", headers=practice.headers)
    ).json()
    assert stored["count"] == 1 and stored["location_ids"] == [practice.locations[0].id]


async def test_explain_gives_every_predicate(client, practice, sessions):
    await _owing_patients(sessions, practice)
    listed = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    by_name = {p["external_id"]: p["id"] for p in listed}
    segment = (await _create(client, practice)).json()
    url = f"/v1/segments/{segment['id']}/explain"
    inside = (
        await client.get(url, params={"patient_id": by_name["rich"]}, headers=practice.headers)
    ).json()
    assert inside["matched"] is True and inside["today"] == _today().isoformat()
    status, balance = inside["tree"]["children"]
    assert status["pointer"] == "/rule/all/0" and status["observed"] == "active"
    assert balance == {
        "pointer": "/rule/all/1",
        "kind": "predicate",
        "result": True,
        "field": "balance",
        "op": "gt",
        "value": "200",
        "observed": "500.00",
        "children": None,
    }
    out = (
        await client.get(url, params={"patient_id": by_name["gone"]}, headers=practice.headers)
    ).json()
    assert out["matched"] is False
    assert [c["result"] for c in out["tree"]["children"]] == [False, True]
    missing = await client.get(url, params={"patient_id": "pat_nobody"}, headers=practice.headers)
    assert missing.status_code == 404


async def test_tenant_isolation(client, practice, other_practice, sessions):
    await _owing_patients(sessions, practice)
    await _owing_patients(sessions, other_practice)
    theirs = (await _create(client, other_practice)).json()
    url = f"/v1/segments/{theirs['id']}"
    h = practice.headers
    assert (await client.get(url, headers=h)).status_code == 404
    assert (await client.patch(url, json={"name": "Mine"}, headers=h)).status_code == 404
    assert (await client.delete(url, headers=h)).status_code == 404
    assert (await client.get(f"{url}/preview", headers=h)).status_code == 404
    assert (await client.get("/v1/segments", headers=h)).json()["data"] == []
    # Each tenant's preview counts only its own patients.
    preview = (await client.post("/v1/segments/preview", json={"rule": RULE}, headers=h)).json()
    assert preview["count"] == 1
    their_patients = (await client.get("/v1/patients", headers=other_practice.headers)).json()
    mine = (await _create(client, practice)).json()
    explained = await client.get(
        f"/v1/segments/{mine['id']}/explain",
        params={"patient_id": their_patients["data"][0]["id"]},
        headers=h,
    )
    assert explained.status_code == 404


async def test_location_limited_caller_sees_only_its_segments(client, practice, make_token):
    first, second = practice.locations
    wide = (await _create(client, practice, {"name": "Both", "rule": RULE})).json()
    narrow = (
        await _create(
            client, practice, {"name": "Second", "rule": RULE, "location_ids": [second.id]}
        )
    ).json()
    token = await make_token(practice.tenant.id, location_ids=[first.id])
    h = {"Authorization": f"Bearer {token}"}
    assert (await client.get(f"/v1/segments/{narrow['id']}", headers=h)).status_code == 404
    preview = (await client.get(f"/v1/segments/{wide['id']}/preview", headers=h)).json()
    assert preview["location_ids"] == [first.id]
