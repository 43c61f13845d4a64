"""REST: audiences and their members, changes and CSV export; scopes, tenant isolation,
idempotency and bad input."""

from __future__ import annotations

import csv
import io

from sqlalchemy import text

from api.core.db import unit_of_work
from tests.audiences.conftest import make_audience, make_segment, person, rebuild


async def _patients(load, practice, count: int, location: int = 0) -> None:
    await load(practice, "patients", [person(f"p{i:03d}", i) for i in range(count)], location)


async def test_members_changes_and_versions(client, practice, load, run_burst):
    await _patients(load, practice, 5)
    await _patients(load, practice, 2, location=1)
    segment = await make_segment(client, practice, location_ids=[])
    audience = await make_audience(client, practice, segment["id"], name="Recall texts")
    assert (audience["version"], audience["total"], audience["name"]) == (0, 0, "Recall texts")
    assert audience["suppression"]["contacted_within_days"] == 14

    built = await rebuild(client, practice, audience["id"], run_burst)
    assert (built["version"], built["total"]) == (1, 7)
    assert built["data_as_of"] is not None and built["built_at"] is not None

    # Two pages of three, then the last one; the cursor keeps version 1.
    url = f"/v1/audiences/{audience['id']}/members"
    first = (await client.get(url, params={"limit": 3}, headers=practice.headers)).json()
    assert first["version"] == 1 and len(first["data"]) == 3
    member = first["data"][0]
    assert member["mobile"].startswith("+1512555") and member["email"].endswith("@example.com")
    assert member["member_since_version"] == 1
    seen = [m["patient_id"] for m in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (
            await client.get(url, params={"limit": 3, "cursor": cursor}, headers=practice.headers)
        ).json()
        seen += [m["patient_id"] for m in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 7 and seen == sorted(seen)

    # p000 stops matching, p001 is deleted in the PMS, p100 is new.
    await load(
        practice,
        "patients",
        [person("p000", 0, last_name="Kim"), person("p100", 100)],
        deletes=["p001"],
    )
    second = await rebuild(client, practice, audience["id"], run_burst)
    assert (second["version"], second["total"]) == (2, 6)
    changes = await client.get(
        f"/v1/audiences/{audience['id']}/changes",
        params={"since_version": 1},
        headers=practice.headers,
    )
    assert changes.status_code == 200, changes.text
    body = changes.json()
    assert (body["since_version"], body["to_version"], body["added"], body["removed"]) == (
        1,
        2,
        1,
        2,
    )
    by_name = {c["first_name"] or c["patient_id"]: (c["change"], c["reason"]) for c in body["data"]}
    assert by_name["P100"] == ("added", "matched_rule")
    assert ("removed", "no_longer_matches") in by_name.values()
    assert ("removed", "patient_removed") in by_name.values()

    everything = await client.get(
        f"/v1/audiences/{audience['id']}/changes",
        params={"since_version": 0},
        headers=practice.headers,
    )
    assert everything.json()["added"] == 6 and everything.json()["removed"] == 0
    none = await client.get(
        f"/v1/audiences/{audience['id']}/changes",
        params={"since_version": 2},
        headers=practice.headers,
    )
    assert none.json()["data"] == [] and none.json()["added"] == 0

    # Version 1 can still be read as it was.
    old = (await client.get(url, params={"version": 1}, headers=practice.headers)).json()
    assert old["version"] == 1 and len(old["data"]) == 7

    # Paging the changes one at a time sees each change once.
    ids, cursor = [], None
    while True:
        params = {"since_version": 1, "limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (
            await client.get(
                f"/v1/audiences/{audience['id']}/changes", params=params, headers=practice.headers
            )
        ).json()
        ids += [c["patient_id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == 3 == len(set(ids))


async def test_updated_event_in_the_same_transaction(client, practice, load, run_burst, sessions):
    await _patients(load, practice, 3)
    segment = await make_segment(client, practice)
    audience = await make_audience(client, practice, segment["id"])
    await rebuild(client, practice, audience["id"], run_burst)
    async with unit_of_work(sessions, practice.tenant.id) as session:
        rows = (
            await session.execute(
                text("SELECT type, data FROM events WHERE type LIKE 'audience.%' ORDER BY id")
            )
        ).all()
    assert [r.type for r in rows] == ["audience.updated"]
    data = rows[0].data
    assert (data["added"], data["removed"], data["total"], data["version"]) == (3, 0, 3, 1)
    assert data["trigger"] == "manual" and data["audience_id"] == audience["id"]


async def test_ascend_csv_export(client, practice, load, run_burst):
    await load(
        practice,
        "patients",
        [person("ana", 1, first_name="Ana María", last_name="Lee"), person("bo", 2, email=None)],
    )
    segment = await make_segment(client, practice)
    audience = await make_audience(
        client, practice, segment["id"], suppression={"no_contact": True}
    )
    await rebuild(client, practice, audience["id"], run_burst)
    response = await client.get(
        f"/v1/audiences/{audience['id']}/export.csv", headers=practice.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["First Name", "Last Name", "Email", "Mobile Phone"]
    assert sorted(rows[1:]) == [
        ["Ana María", "Lee", "ana@example.com", "5125550001"],
        ["Bo", "Lee", "", "5125550002"],
    ]


async def test_scopes(client, practice, make_token, load):
    segment = await make_segment(client, practice)
    audience = await make_audience(client, practice, segment["id"])
    review = {
        "Authorization": f"Bearer {await make_token(practice.tenant.id, ['communications:review'])}"
    }
    reader = {"Authorization": f"Bearer {await make_token(practice.tenant.id, ['audiences:read'])}"}
    body = {"segment_id": segment["id"], "channel": "email"}

    refused = await client.post("/v1/audiences", json=body, headers=review)
    assert refused.status_code == 403
    assert refused.json()["required_scopes"] == ["communications:manage"]
    rebuild_refused = await client.post(f"/v1/audiences/{audience['id']}/rebuild", headers=review)
    assert rebuild_refused.status_code == 403
    assert (
        await client.delete(f"/v1/audiences/{audience['id']}", headers=review)
    ).status_code == 403
    assert (await client.get(f"/v1/audiences/{audience['id']}", headers=review)).status_code == 200
    assert (await client.get("/v1/audiences", headers=review)).status_code == 200

    for path in ("members", "export.csv"):
        denied = await client.get(f"/v1/audiences/{audience['id']}/{path}", headers=review)
        assert denied.status_code == 403
        assert denied.json()["required_scopes"] == ["audiences:read"]
        allowed = await client.get(f"/v1/audiences/{audience['id']}/{path}", headers=reader)
        assert allowed.status_code == 200
    changes = f"/v1/audiences/{audience['id']}/changes?since_version=0"
    assert (await client.get(changes, headers=review)).status_code == 403
    assert (await client.get(changes, headers=reader)).status_code == 200
    # Counts need review, not the export scope.
    assert (await client.get(f"/v1/audiences/{audience['id']}", headers=reader)).status_code == 403


async def test_another_tenants_audience_is_not_found(client, practice, other_practice):
    segment = await make_segment(client, practice)
    audience = await make_audience(client, practice, segment["id"])
    stranger = other_practice.headers
    base = f"/v1/audiences/{audience['id']}"
    for method, path in (
        ("GET", base),
        ("GET", f"{base}/preview"),
        ("GET", f"{base}/members"),
        ("GET", f"{base}/changes?since_version=0"),
        ("GET", f"{base}/export.csv"),
        ("POST", f"{base}/rebuild"),
        ("DELETE", base),
    ):
        response = await client.request(method, path, headers=stranger)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    listed = await client.get("/v1/audiences", headers=stranger)
    assert listed.json()["data"] == []
    # Nor can they make an audience of our segment.
    borrowed = await client.post(
        "/v1/audiences", json={"segment_id": segment["id"], "channel": "sms"}, headers=stranger
    )
    assert borrowed.status_code == 422 and borrowed.json()["errors"][0]["field"] == "segment_id"


async def test_bad_input_writes_nothing(client, practice, sessions):
    segment = await make_segment(client, practice)
    for body, field in (
        ({"segment_id": segment["id"], "channel": "fax"}, "channel"),
        ({"segment_id": "seg_nope", "channel": "sms"}, "segment_id"),
        (
            {
                "segment_id": segment["id"],
                "channel": "sms",
                "suppression": {"contacted_within_days": 0},
            },
            "suppression.contacted_within_days",
        ),
        (
            {"segment_id": segment["id"], "channel": "sms", "suppression": {"typo": True}},
            "suppression.typo",
        ),
    ):
        response = await client.post("/v1/audiences", json=body, headers=practice.headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == field
    async with unit_of_work(sessions, practice.tenant.id) as session:
        assert (await session.execute(text("SELECT count(*) FROM audiences"))).scalar_one() == 0

    audience = await make_audience(client, practice, segment["id"])
    base = f"/v1/audiences/{audience['id']}"
    too_far = await client.get(
        f"{base}/changes", params={"since_version": 3}, headers=practice.headers
    )
    assert too_far.status_code == 422 and too_far.json()["errors"][0]["field"] == "since_version"
    missing = await client.get(f"{base}/changes", headers=practice.headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "since_version"
    forged = await client.get(
        f"{base}/members", params={"cursor": "bm9wZQ"}, headers=practice.headers
    )
    assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "cursor"
    version = await client.get(f"{base}/members", params={"version": 9}, headers=practice.headers)
    assert version.status_code == 422 and version.json()["errors"][0]["field"] == "version"


async def test_idempotent_create_and_rebuild(client, practice, load, sessions):
    await _patients(load, practice, 2)
    segment = await make_segment(client, practice)
    body = {"segment_id": segment["id"], "channel": "sms"}
    key = {"Idempotency-Key": "aud-key-1"}
    first = await client.post("/v1/audiences", json=body, headers=practice.headers | key)
    again = await client.post("/v1/audiences", json=body, headers=practice.headers | key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = await client.post(
        "/v1/audiences", json=body | {"channel": "email"}, headers=practice.headers | key
    )
    assert other.status_code == 422

    url = f"/v1/audiences/{first.json()['id']}/rebuild"
    key = {"Idempotency-Key": "rebuild-1"}
    queued = await client.post(url, headers=practice.headers | key)
    replayed = await client.post(url, headers=practice.headers | key)
    assert queued.status_code == replayed.status_code == 202
    assert queued.json()["job_id"] == replayed.json()["job_id"]
    async with unit_of_work(sessions, practice.tenant.id) as session:
        jobs = await session.execute(
            text("SELECT count(*) FROM jobs WHERE task = 'audiences.rebuild'")
        )
        assert jobs.scalar_one() == 1


async def test_rebuild_on_stale_data_answers_409(client, practice, load):
    # Location 1 was never synced: the audience covers it, so a rebuild cannot run.
    await _patients(load, practice, 1)
    segment = await make_segment(client, practice, location_ids=[])
    audience = await make_audience(client, practice, segment["id"])
    response = await client.post(
        f"/v1/audiences/{audience['id']}/rebuild", headers=practice.headers
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/stale-data")
    assert problem["location_id"] == practice.locations[1].id


async def test_delete(client, practice):
    segment = await make_segment(client, practice)
    audience = await make_audience(client, practice, segment["id"])
    gone = await client.delete(f"/v1/audiences/{audience['id']}", headers=practice.headers)
    assert gone.status_code == 204
    after = await client.get(f"/v1/audiences/{audience['id']}", headers=practice.headers)
    assert after.status_code == 404
