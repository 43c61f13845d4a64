"""The campaigns REST API: composing, the review step, the dashboard, who may do what,
tenant walls, Idempotency-Key and problems that write nothing."""

from __future__ import annotations

import pytest

from api.campaigns.models import Campaign
from api.core.infra_models import Job
from tests.campaigns.conftest import ACTIVE, EMAIL, campaign_body, create_and_submit
from tests.messaging.support import count, rows


async def _people(make_patient, practice):
    location = practice.locations[0]
    return [
        await make_patient(
            practice.tenant.id,
            location.id,
            first_name="Avery",
            last_name="Nguyen",
            mobile="+15125550001",
            email="avery@example.com",
        ),
        await make_patient(
            practice.tenant.id,
            location.id,
            first_name="Blake",
            last_name="Okafor",
            mobile="+15125550002",
            email="blake@example.com",
            communication_preference="email",
        ),
        await make_patient(
            practice.tenant.id,
            location.id,
            first_name="Casey",
            last_name="Okafor",
            mobile="+15125550003",
            status="inactive",
        ),
    ]


async def test_compose_review_exclude_and_submit(client, sms_ready, make_patient):
    practice = sms_ready
    avery, blake, _ = await _people(make_patient, practice)
    counted = await client.post(
        "/v1/campaigns/recipient-count",
        json={
            "location_ids": [practice.locations[0].id],
            "channels": ["sms"],
            "recipients": {"kind": "filters", "rule": ACTIVE},
        },
        headers=practice.headers,
    )
    assert counted.status_code == 200, counted.text
    assert counted.json()["count"] == 2

    created = await client.post(
        "/v1/campaigns",
        json=campaign_body(practice, channels=["sms", "email"], email=EMAIL),
        headers=practice.headers,
    )
    assert created.status_code == 201
    campaign = created.json()
    assert campaign["id"].startswith("cmp_") and campaign["status"] == "draft"
    cid = campaign["id"]

    summary = await client.get(f"/v1/campaigns/{cid}/summary", headers=practice.headers)
    assert summary.json()["total_recipients"] == 2
    assert summary.json()["by_channel"] == {"sms": 1, "email": 1}

    found = await client.get(
        f"/v1/campaigns/{cid}/recipients?search=okaf", headers=practice.headers
    )
    assert [r["patient_id"] for r in found.json()["data"]] == [blake.id]
    by_id = await client.get(
        f"/v1/campaigns/{cid}/recipients?search={avery.id}", headers=practice.headers
    )
    assert [r["first_name"] for r in by_id.json()["data"]] == ["Avery"]

    excluded = await client.post(
        f"/v1/campaigns/{cid}/exclusions",
        json={"patient_ids": [blake.id], "excluded": True},
        headers=practice.headers,
    )
    assert excluded.status_code == 204
    summary = await client.get(f"/v1/campaigns/{cid}/summary", headers=practice.headers)
    assert summary.json()["total_recipients"] == 1 and summary.json()["excluded"] == 1
    listed = await client.get(f"/v1/campaigns/{cid}/recipients", headers=practice.headers)
    assert {r["patient_id"]: r["excluded"] for r in listed.json()["data"]} == {
        avery.id: False,
        blake.id: True,
    }

    # Submit requires an Idempotency-Key; a retry with it replays, it does not resubmit.
    missing = await client.post(f"/v1/campaigns/{cid}/submit", headers=practice.headers)
    assert missing.status_code == 400
    keyed = practice.headers | {"Idempotency-Key": "submit-abc"}
    first = await client.post(f"/v1/campaigns/{cid}/submit", headers=keyed)
    again = await client.post(f"/v1/campaigns/{cid}/submit", headers=keyed)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["status"] == "scheduled"
    conflict = await client.post(
        f"/v1/campaigns/{cid}/submit", headers=practice.headers | {"Idempotency-Key": "other"}
    )
    assert conflict.status_code == 409


async def test_one_start_job_per_submit(client, sms_ready, make_patient, sessions):
    practice = sms_ready
    await _people(make_patient, practice)
    await create_and_submit(client, practice)
    assert len(await rows(sessions, Job, task="campaigns.start")) == 1


async def test_lifecycle_actions_and_duplicate(client, sms_ready, make_patient, sessions):
    practice = sms_ready
    await _people(make_patient, practice)
    campaign = await create_and_submit(
        client, practice, campaign_type="scheduled", scheduled_for="2030-01-15T09:30:00"
    )
    cid = campaign["id"]
    assert campaign["status"] == "scheduled"
    paused = await client.post(f"/v1/campaigns/{cid}/pause", headers=practice.headers)
    assert paused.json()["status"] == "paused"
    edited = await client.patch(
        f"/v1/campaigns/{cid}", json={"name": "Winter recall"}, headers=practice.headers
    )
    assert edited.status_code == 200 and edited.json()["name"] == "Winter recall"
    resumed = await client.post(f"/v1/campaigns/{cid}/resume", headers=practice.headers)
    assert resumed.json()["status"] == "scheduled"
    # The pause made the first start job stale; resuming recorded a new one.
    assert len(await rows(sessions, Job, task="campaigns.start")) == 2
    copy = await client.post(f"/v1/campaigns/{cid}/duplicate", headers=practice.headers)
    assert copy.status_code == 201
    assert copy.json()["status"] == "draft" and copy.json()["name"] == "Copy of Winter recall"
    assert copy.json()["sms"] == campaign["sms"]
    cancelled = await client.post(f"/v1/campaigns/{cid}/cancel", headers=practice.headers)
    assert cancelled.json()["status"] == "cancelled"
    assert (
        await client.post(f"/v1/campaigns/{cid}/pause", headers=practice.headers)
    ).status_code == 409
    deleted = await client.delete(f"/v1/campaigns/{cid}", headers=practice.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/campaigns/{cid}", headers=practice.headers)
    assert gone.status_code == 404


async def test_dashboard_filters_and_counts(client, sms_ready, make_patient):
    practice = sms_ready
    await _people(make_patient, practice)
    await client.post("/v1/campaigns", json=campaign_body(practice), headers=practice.headers)
    email_only = campaign_body(
        practice,
        name="Benefits expire soon",
        channels=["email"],
        sms=None,
        email=EMAIL,
        location_ids=[practice.locations[1].id],
    )
    await client.post("/v1/campaigns", json=email_only, headers=practice.headers)
    await create_and_submit(
        client,
        practice,
        name="Holiday hours",
        campaign_type="scheduled",
        scheduled_for="2030-12-20T10:00:00",
    )

    def names(response):
        return sorted(c["name"] for c in response.json()["data"])

    everything = await client.get("/v1/campaigns", headers=practice.headers)
    assert len(everything.json()["data"]) == 3
    by_name = await client.get("/v1/campaigns?name=BENEFIT", headers=practice.headers)
    assert names(by_name) == ["Benefits expire soon"]
    by_method = await client.get("/v1/campaigns?method=email", headers=practice.headers)
    assert names(by_method) == ["Benefits expire soon"]
    by_location = await client.get(
        f"/v1/campaigns?location_id={practice.locations[0].id}", headers=practice.headers
    )
    assert names(by_location) == ["Fill the hygiene column", "Holiday hours"]
    by_date = await client.get(
        f"/v1/campaigns?location_id={practice.locations[0].id}"
        "&send_date_from=2030-12-20&send_date_to=2030-12-20",
        headers=practice.headers,
    )
    assert names(by_date) == ["Holiday hours"]
    by_type = await client.get("/v1/campaigns?campaign_type=scheduled", headers=practice.headers)
    assert names(by_type) == ["Holiday hours"]
    counts = await client.get("/v1/campaigns/counts", headers=practice.headers)
    assert counts.json() == {"active": 1, "completed": 0, "paused": 0, "draft": 2}
    page = await client.get("/v1/campaigns?limit=2", headers=practice.headers)
    rest = await client.get(
        f"/v1/campaigns?limit=2&cursor={page.json()['next_cursor']}", headers=practice.headers
    )
    assert len(page.json()["data"]) == 2 and len(rest.json()["data"]) == 1
    template = await client.get("/v1/campaigns/custom-list-template", headers=practice.headers)
    assert template.text.startswith("First Name,Last Name,Email,Mobile")


async def test_custom_list_upload_matches_patients(client, sms_ready, make_patient):
    practice = sms_ready
    avery, blake, _ = await _people(make_patient, practice)
    created = await client.post(
        "/v1/campaigns", json=campaign_body(practice), headers=practice.headers
    )
    cid = created.json()["id"]
    csv_text = (
        "First Name,Last Name,Email,Mobile\n"
        "Avery,Nguyen,,(512) 555-0001\n"
        "blake,okafor,BLAKE@example.com,\n"
        "Nobody,Known,nobody@example.com,\n"
    )
    uploaded = await client.post(
        f"/v1/campaigns/{cid}/custom-list",
        files={"file": ("list.csv", csv_text, "text/csv")},
        headers=practice.headers,
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {"rows": 3, "matched": 2, "unmatched_lines": [4]}
    summary = await client.get(f"/v1/campaigns/{cid}/summary", headers=practice.headers)
    assert summary.json()["campaign"]["recipients"]["kind"] == "custom_list"
    assert summary.json()["total_recipients"] == 2
    listed = await client.get(f"/v1/campaigns/{cid}/recipients", headers=practice.headers)
    assert {r["patient_id"] for r in listed.json()["data"]} == {avery.id, blake.id}
    bad = await client.post(
        f"/v1/campaigns/{cid}/custom-list",
        files={"file": ("list.csv", "First Name,Last Name,Email,Mobile\n,Nguyen,x,\n", "text/csv")},
        headers=practice.headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "row 2"
    # Two locations and a custom list do not go together.
    two = await client.patch(
        f"/v1/campaigns/{cid}",
        json={"location_ids": [loc.id for loc in practice.locations], "channels": ["email"]},
        headers=practice.headers,
    )
    assert two.status_code == 422
    assert two.json()["errors"][0]["field"] == "location_ids"


async def test_bad_input_is_a_problem_and_writes_nothing(client, sms_ready, sessions):
    practice = sms_ready
    cases = [
        ({"channels": []}, "channels"),
        ({"location_ids": [practice.locations[1].id]}, "location_ids[0]"),  # no SMS registration
        ({"location_ids": ["loc_unknown"]}, "location_ids[0]"),
        ({"sms": {"channel": "sms", "body": "Hi {{patient.nickname}}"}}, "sms.body"),
        ({"recipients": {"kind": "segment", "segment_id": "seg_missing"}}, "recipients.segment_id"),
        (
            {"scheduled_for": "2030-01-01T10:00:00+02:00", "campaign_type": "scheduled"},
            "scheduled_for",
        ),
    ]
    for change, field in cases:
        response = await client.post(
            "/v1/campaigns", json=campaign_body(practice, **change), headers=practice.headers
        )
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert any(e["field"].startswith(field) for e in response.json()["errors"]), (
            change,
            response.json(),
        )
    assert await count(sessions, Campaign) == 0
    # Not ready to submit: each missing piece is named.
    draft = await client.post(
        "/v1/campaigns", json={"name": "Just a name"}, headers=practice.headers
    )
    submitted = await client.post(
        f"/v1/campaigns/{draft.json()['id']}/submit",
        headers=practice.headers | {"Idempotency-Key": "not-ready"},
    )
    assert submitted.status_code == 422
    assert {e["field"] for e in submitted.json()["errors"]} >= {"channels", "recipients"}


async def test_only_the_creator_edits_a_draft(client, sms_ready, make_token):
    practice = sms_ready
    created = await client.post(
        "/v1/campaigns", json=campaign_body(practice), headers=practice.headers
    )
    cid = created.json()["id"]
    colleague = {"Authorization": f"Bearer {await make_token(practice.tenant.id)}"}
    edit = await client.patch(f"/v1/campaigns/{cid}", json={"name": "Mine"}, headers=colleague)
    assert edit.status_code == 403
    submit = await client.post(
        f"/v1/campaigns/{cid}/submit", headers=colleague | {"Idempotency-Key": "k"}
    )
    assert submit.status_code == 403
    # Reading and duplicating are fine: the copy is the colleague's own draft.
    assert (await client.get(f"/v1/campaigns/{cid}", headers=colleague)).status_code == 200
    copy = await client.post(f"/v1/campaigns/{cid}/duplicate", headers=colleague)
    mine = await client.patch(
        f"/v1/campaigns/{copy.json()['id']}", json={"name": "Mine"}, headers=colleague
    )
    assert mine.status_code == 200


async def test_another_tenants_campaign_is_not_found(client, sms_ready, other_practice):
    created = await client.post(
        "/v1/campaigns", json=campaign_body(sms_ready), headers=sms_ready.headers
    )
    cid = created.json()["id"]
    stranger = other_practice.headers
    for method, path in [
        ("GET", f"/v1/campaigns/{cid}"),
        ("PATCH", f"/v1/campaigns/{cid}"),
        ("DELETE", f"/v1/campaigns/{cid}"),
        ("POST", f"/v1/campaigns/{cid}/duplicate"),
        ("POST", f"/v1/campaigns/{cid}/pause"),
        ("POST", f"/v1/campaigns/{cid}/resume"),
        ("POST", f"/v1/campaigns/{cid}/cancel"),
        ("GET", f"/v1/campaigns/{cid}/summary"),
        ("GET", f"/v1/campaigns/{cid}/recipients"),
        ("GET", f"/v1/campaigns/{cid}/results"),
        ("GET", f"/v1/campaigns/{cid}/results/patients"),
    ]:
        body = {"name": "x"} if method == "PATCH" else None
        response = await client.request(method, path, json=body, headers=stranger)
        assert response.status_code == 404, (method, path, response.text)
    listed = await client.get("/v1/campaigns", headers=stranger)
    assert listed.json()["data"] == []


async def test_a_location_limited_caller_sees_only_its_campaigns(client, sms_ready, make_token):
    practice = sms_ready
    created = await client.post(
        "/v1/campaigns", json=campaign_body(practice), headers=practice.headers
    )
    limited = await make_token(practice.tenant.id, location_ids=[practice.locations[1].id])
    headers = {"Authorization": f"Bearer {limited}"}
    assert (
        await client.get(f"/v1/campaigns/{created.json()['id']}", headers=headers)
    ).status_code == 404


@pytest.mark.scopes("communications:review")
async def test_reviewers_read_but_do_not_write(client, practice):
    listed = await client.get("/v1/campaigns", headers=practice.headers)
    assert listed.status_code == 200
    refused = await client.post("/v1/campaigns", json={"name": "x"}, headers=practice.headers)
    assert refused.status_code == 403
    assert "communications:manage" in refused.json()["detail"]


@pytest.mark.scopes("patients:read")
async def test_reading_needs_review(client, practice):
    refused = await client.get("/v1/campaigns", headers=practice.headers)
    assert refused.status_code == 403
    assert "communications:review" in refused.json()["detail"]
