"""The cadences API: definitions, validation, enrollment rules, pause/resume, continuous
enrollment from a segment, tenant isolation, scopes, idempotency and GraphQL parity."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import time_machine
from sqlalchemy import func, select

from api.cadences.models import Cadence, Enrollment, StepRun
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.wall_clock import LOCAL_TIME_PATTERN
from api.practice import ingest
from tests.cadences.conftest import WINBACK, patient_ids, patient_row, sync
from tests.core.conftest import assert_problem
from tests.graphql.conftest import GraphQLClient

SMS_STEP = {
    "delay_days": 0,
    "channel": "sms",
    "content": {"channel": "sms", "body": "Hi {{patient.first_name}}"},
}


async def _count(sessions, tenant_id: str, model) -> int:
    async with unit_of_work(sessions, tenant_id) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def _cadence(client, practice, body=WINBACK) -> dict:
    response = await client.post("/v1/cadences", json=body, headers=practice.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_winback_template_is_the_day_1_4_9_14_sequence(client, practice):
    templates = (await client.get("/v1/cadence-templates", headers=practice.headers)).json()
    steps = templates[0]["steps"]
    assert [(s["delay_days"] + 1, s["channel"]) for s in steps] == [
        (1, "sms"),
        (4, "email"),
        (9, "sms"),
        (14, "call"),
    ]
    assert set(steps[0]["variants"]) == {"hygiene", "unscheduled_treatment", "dormant"}
    cadence = await _cadence(client, practice)
    assert cadence["steps"] == steps and cadence["status"] == "active"
    assert cadence["exits"] == {
        "booked": True,
        "replied": True,
        "opted_out": True,
        "recall_fulfilled": True,
        "balance_paid": False,
        "left_segment": True,
    }
    assert cadence["reentry_after_days"] is None and cadence["household_aware"] is True


async def test_crud_duplicate_and_delete(client, practice, sessions):
    cadence = await _cadence(client, practice)
    url = f"/v1/cadences/{cadence['id']}"
    patched = await client.patch(
        url,
        json={"name": "Hygiene win-back", "reentry_after_days": 180, "steps": [SMS_STEP]},
        headers=practice.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Hygiene win-back"
    assert len(patched.json()["steps"]) == 1 and patched.json()["reentry_after_days"] == 180
    copy = await client.post(f"{url}/duplicate", headers=practice.headers)
    assert copy.status_code == 201
    assert copy.json()["status"] == "paused" and copy.json()["name"] == "Hygiene win-back (copy)"
    listed = (await client.get("/v1/cadences", headers=practice.headers)).json()["data"]
    assert [c["id"] for c in listed] == sorted([cadence["id"], copy.json()["id"]])
    assert (await client.delete(url, headers=practice.headers)).status_code == 204
    assert_problem(await client.get(url, headers=practice.headers), 404)
    assert await _count(sessions, practice.tenant.id, Cadence) == 1


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([{"delay_days": 0, "channel": "call", "content": SMS_STEP["content"]}], "steps.0"),
        ([{"delay_days": 0, "channel": "email", "content": SMS_STEP["content"]}], "steps.0"),
        ([{"delay_days": 0, "channel": "sms"}], "steps.0"),
        ([{"delay_days": -1, "channel": "call"}], "steps.0.delay_days"),
        (
            [
                {
                    "delay_days": 0,
                    "channel": "sms",
                    "content": {"channel": "sms", "body": "{{patient.shoe_size}}"},
                }
            ],
            "steps[0].content.body",
        ),
        (
            [
                {
                    "delay_days": 0,
                    "channel": "sms",
                    "content": {"channel": "sms", "body": "Owed: {{treatment.amount}}"},
                }
            ],
            "steps[0].content.body",
        ),
        (
            [{"delay_days": 5, "channel": "call"}, {"delay_days": 2, "channel": "call"}],
            "steps[1].delay_days",
        ),
        ([], "steps"),
    ],
)
async def test_bad_steps_are_refused_and_nothing_is_written(
    client, practice, sessions, steps, field
):
    response = await client.post(
        "/v1/cadences", json={"name": "Bad", "steps": steps}, headers=practice.headers
    )
    body = assert_problem(response, 422)
    assert any(e["field"].startswith(field) for e in body["errors"]), body
    assert await _count(sessions, practice.tenant.id, Cadence) == 0


@pytest.mark.parametrize("sent", ["10:00:00+05:00", "10:00Z", "25:00", "ten"])
async def test_a_send_time_is_a_local_time_of_day_without_offset(client, practice, sessions, sent):
    response = await client.post(
        "/v1/cadences",
        json={"name": "Bad time", "steps": [SMS_STEP], "send_local_time": sent},
        headers=practice.headers,
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["send_local_time"], body
    assert await _count(sessions, practice.tenant.id, Cadence) == 0


async def test_a_send_time_round_trips_in_the_documented_shape(client, practice):
    cadence = await _cadence(
        client, practice, {"name": "Morning", "steps": [SMS_STEP], "send_local_time": "09:30"}
    )
    assert cadence["send_local_time"] == "09:30:00"
    assert re.fullmatch(LOCAL_TIME_PATTERN, cadence["send_local_time"])
    patched = await client.patch(
        f"/v1/cadences/{cadence['id']}",
        json={"send_local_time": "18:45:30"},
        headers=practice.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["send_local_time"] == "18:45:30"


async def test_unknown_segment_location_and_template_are_named(client, practice):
    body = assert_problem(
        await client.post(
            "/v1/cadences",
            json=WINBACK | {"sources": [{"segment_id": "seg_nope"}], "location_ids": []},
            headers=practice.headers,
        ),
        422,
    )
    assert body["errors"][0]["field"] == "sources[0].segment_id"
    body = assert_problem(
        await client.post(
            "/v1/cadences", json=WINBACK | {"location_ids": ["loc_x"]}, headers=practice.headers
        ),
        422,
    )
    assert body["errors"][0]["field"] == "location_ids[0]"
    body = assert_problem(
        await client.post(
            "/v1/cadences", json={"name": "x", "template": "nope"}, headers=practice.headers
        ),
        422,
    )
    assert body["errors"][0]["field"] == "template"


async def test_enrollment_rules(client, practice, sessions):
    tenant, main = practice.tenant.id, practice.locations[0].id
    await sync(
        sessions,
        tenant,
        main,
        "providers",
        [{"external_id": "DR", "kind": "dentist", "name": "Dr. Wu"}],
    )
    await sync(
        sessions,
        tenant,
        main,
        "patients",
        [patient_row("amy", mobile="+15125550111"), patient_row("bo"), patient_row("cy")],
    )
    await sync(
        sessions,
        tenant,
        main,
        "appointments",
        [
            {
                "external_id": "A1",
                "patient_external_id": "bo",
                "provider_external_id": "DR",
                "start_at": "2030-01-02T15:00:00Z",
                "end_at": "2030-01-02T16:00:00Z",
                "status": "scheduled",
            }
        ],
    )
    ids = await patient_ids(sessions, tenant)
    cadence = await _cadence(client, practice, WINBACK | {"reentry_after_days": 30})
    url = f"/v1/cadences/{cadence['id']}/enrollments"

    unknown = await client.post(
        url, json={"patient_ids": [ids["amy"], "pat_unknown"]}, headers=practice.headers
    )
    assert assert_problem(unknown, 422)["errors"] == [
        {"field": "patient_ids[1]", "message": "no patient 'pat_unknown'"}
    ]
    assert await _count(sessions, tenant, Enrollment) == 0

    first = await client.post(
        url,
        json={"patient_ids": [ids["amy"], ids["bo"]], "variant": "hygiene"},
        headers=practice.headers,
    )
    assert first.status_code == 200, first.text
    assert [e["patient_id"] for e in first.json()["enrolled"]] == [ids["amy"]]
    assert first.json()["enrolled"][0]["variant"] == "hygiene"
    assert first.json()["skipped"] == [{"patient_id": ids["bo"], "reason": "already_booked"}]
    again = await client.post(url, json={"patient_ids": [ids["amy"]]}, headers=practice.headers)
    assert again.json() == {
        "enrolled": [],
        "skipped": [{"patient_id": ids["amy"], "reason": "already_enrolled"}],
    }

    amy = first.json()["enrolled"][0]
    removed = await client.delete(f"{url}/{amy['id']}", headers=practice.headers)
    assert removed.json()["status"] == "exited" and removed.json()["exit_reason"] == "removed"
    not_yet = await client.post(url, json={"patient_ids": [ids["amy"]]}, headers=practice.headers)
    assert not_yet.json()["skipped"] == [
        {"patient_id": ids["amy"], "reason": "reentry_not_allowed"}
    ]

    detail = await client.get(f"{url}/{amy['id']}", headers=practice.headers)
    assert detail.json()["steps"] == [] and detail.json()["exit_reason"] == "removed"
    listed = await client.get(url, params={"status": "exited"}, headers=practice.headers)
    assert [e["id"] for e in listed.json()["data"]] == [amy["id"]]


async def test_reentry_after_the_waiting_period(client, practice, sessions, make_token):
    tenant, main = practice.tenant.id, practice.locations[0].id
    await sync(sessions, tenant, main, "patients", [patient_row("amy")])
    amy = (await patient_ids(sessions, tenant))["amy"]
    cadence = await _cadence(client, practice, WINBACK | {"reentry_after_days": 30})
    url = f"/v1/cadences/{cadence['id']}/enrollments"
    enrollment = (
        await client.post(url, json={"patient_ids": [amy]}, headers=practice.headers)
    ).json()["enrolled"][0]
    await client.delete(f"{url}/{enrollment['id']}", headers=practice.headers)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=31), tick=False):
        headers = {"Authorization": f"Bearer {await make_token(tenant, None)}"}
        back = await client.post(url, json={"patient_ids": [amy]}, headers=headers)
    assert [e["patient_id"] for e in back.json()["enrolled"]] == [amy]


async def test_pause_holds_steps_and_resume_moves_them_without_a_burst(
    client, practice, sessions, ticks, make_token
):
    tenant, main = practice.tenant.id, practice.locations[0].id
    start = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        headers = {"Authorization": f"Bearer {await make_token(tenant, None)}"}
        await sync(sessions, tenant, main, "patients", [patient_row("amy", mobile="+15125550111")])
        amy = (await patient_ids(sessions, tenant))["amy"]
        cadence = (await client.post("/v1/cadences", json=WINBACK, headers=headers)).json()
        url = f"/v1/cadences/{cadence['id']}"
        await client.post(f"{url}/enrollments", json={"patient_ids": [amy]}, headers=headers)
        paused = await client.post(f"{url}/pause", headers=headers)
        assert paused.json()["status"] == "paused"
        clock.move_to(dt.datetime(2026, 12, 5, 17, tzinfo=dt.UTC))
        await ticks.tick()
        assert await _count(sessions, tenant, StepRun) == 0  # nothing while paused
        headers = {"Authorization": f"Bearer {await make_token(tenant, None)}"}
        resumed = await client.post(f"{url}/resume", headers=headers)
        assert resumed.json()["status"] == "active" and resumed.json()["active_enrollments"] == 1
        enrollment = (await client.get(f"{url}/enrollments", headers=headers)).json()["data"][0]
        # Day 1 (Dec 1 16:00Z) moved by the 4 days 3 hours paused.
        assert enrollment["next_due_at"] == "2026-12-05T19:00:00Z"
        await ticks.tick()
        assert await _count(sessions, tenant, StepRun) == 0
        clock.move_to(dt.datetime(2026, 12, 5, 19, 1, tzinfo=dt.UTC))
        await ticks.tick()
        assert await _count(sessions, tenant, StepRun) == 1  # the first step, alone


async def test_continuous_enrollment_from_a_segment_and_leaving_it(
    client, practice, sessions, ticks
):
    tenant, main = practice.tenant.id, practice.locations[0].id
    await sync(
        sessions,
        tenant,
        main,
        "patients",
        [
            patient_row("amy", last_visit_date="2025-03-10"),
            patient_row("bo", last_visit_date="2025-06-10"),
            patient_row("cy", last_visit_date="2026-10-01"),
        ],
    )
    ids = await patient_ids(sessions, tenant)
    segment = await client.post(
        "/v1/segments",
        json={"name": "Lapsed", "template": "lapsed", "location_ids": [main]},
        headers=practice.headers,
    )
    assert segment.status_code == 201, segment.text
    cadence = await _cadence(
        client,
        practice,
        WINBACK | {"sources": [{"segment_id": segment.json()["id"], "variant": "dormant"}]},
    )
    assert await ticks.enroll() == 1
    listed = (
        await client.get(f"/v1/cadences/{cadence['id']}/enrollments", headers=practice.headers)
    ).json()["data"]
    assert sorted(e["patient_id"] for e in listed) == sorted([ids["amy"], ids["bo"]])
    assert {(e["source"], e["variant"]) for e in listed} == {("segment", "dormant")}
    # bo comes in (the PMS says so): he leaves the lapsed window and the cadence.
    await sync(
        sessions, tenant, main, "patients", [patient_row("bo", last_visit_date="2026-11-20")]
    )
    with time_machine.travel(utcnow() + dt.timedelta(hours=1), tick=False):
        assert await ticks.enroll() == 1
    async with unit_of_work(sessions, tenant) as session:
        rows = {e.patient_id: e for e in (await session.execute(select(Enrollment))).scalars()}
    assert (rows[ids["bo"]].status, rows[ids["bo"]].exit_reason) == ("exited", "left_segment")
    assert rows[ids["amy"]].status == "active"


async def test_tenant_isolation_scopes_and_idempotency(
    client, practice, other_practice, make_token, sessions
):
    cadence = await _cadence(client, practice)
    for method, path in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("POST", "/duplicate"),
        ("GET", "/enrollments"),
        ("GET", "/metrics"),
        ("POST", "/enrollments"),
    ]:
        json = (
            {"patient_ids": ["pat_x"]}
            if path == "/enrollments"
            else ({} if method == "PATCH" else None)
        )
        response = await client.request(
            method, f"/v1/cadences/{cadence['id']}{path}", json=json, headers=other_practice.headers
        )
        assert_problem(response, 404)
    review = {
        "Authorization": f"Bearer {await make_token(practice.tenant.id, ['communications:review'])}"
    }
    assert (await client.get(f"/v1/cadences/{cadence['id']}", headers=review)).status_code == 200
    assert_problem(await client.post("/v1/cadences", json=WINBACK, headers=review), 403)
    assert_problem(await client.post(f"/v1/cadences/{cadence['id']}/pause", headers=review), 403)
    nothing = {"Authorization": f"Bearer {await make_token(practice.tenant.id, ['patients:read'])}"}
    assert_problem(await client.get("/v1/cadences", headers=nothing), 403)

    key = {"Idempotency-Key": str(uuid.uuid4())} | practice.headers
    first = await client.post("/v1/cadences", json=WINBACK, headers=key)
    again = await client.post("/v1/cadences", json=WINBACK, headers=key)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    reused = await client.post("/v1/cadences", json=WINBACK | {"name": "Other"}, headers=key)
    assert_problem(reused, 422)
    assert await _count(sessions, practice.tenant.id, Cadence) == 2


async def test_a_location_limited_caller_sees_only_its_cadences(client, practice, make_token):
    main, lakeside = practice.locations[0].id, practice.locations[1].id
    everywhere = await _cadence(client, practice)
    lakeside_only = await _cadence(client, practice, WINBACK | {"location_ids": [lakeside]})
    token = await make_token(practice.tenant.id, None, [main])
    headers = {"Authorization": f"Bearer {token}"}
    listed = (await client.get("/v1/cadences", headers=headers)).json()["data"]
    assert [c["id"] for c in listed] == [everywhere["id"]]
    assert_problem(await client.get(f"/v1/cadences/{lakeside_only['id']}", headers=headers), 404)
    mine = await client.post("/v1/cadences", json=WINBACK, headers=headers)
    assert mine.json()["location_ids"] == [main]


async def test_graphql_parity(client, practice, sessions):
    tenant, main = practice.tenant.id, practice.locations[0].id
    await sync(sessions, tenant, main, "patients", [patient_row("amy")])
    amy = (await patient_ids(sessions, tenant))["amy"]
    gql = GraphQLClient(client)
    created = await gql.execute(
        "mutation($input: CadenceInput!) { createCadence(input: $input) { id status steps } }",
        {"input": {"name": "GraphQL win-back", "template": "winback"}},
        practice.headers,
    )
    cadence = created["data"]["createCadence"]
    assert [s["channel"] for s in cadence["steps"]] == ["sms", "email", "sms", "call"]
    enrolled = await gql.execute(
        "mutation($id: ID!, $p: [String!]!) { enrollInCadence(cadenceId: $id, patientIds: $p) "
        "{ enrolled { id patientId status nextPosition } skipped { patientId reason } } }",
        {"id": cadence["id"], "p": [amy]},
        practice.headers,
    )
    assert enrolled["data"]["enrollInCadence"]["enrolled"][0]["patientId"] == amy
    paused = await gql.execute(
        "mutation($id: ID!) { pauseCadence(id: $id) { status activeEnrollments } }",
        {"id": cadence["id"]},
        practice.headers,
    )
    assert paused["data"]["pauseCadence"] == {"status": "paused", "activeEnrollments": 1}
    metrics = await gql.execute(
        "query($id: ID!) { cadenceMetrics(id: $id) "
        "{ total { key enrolled booked } byVariant { key enrolled } } }",
        {"id": cadence["id"]},
        practice.headers,
    )
    assert metrics["data"]["cadenceMetrics"] == {
        "total": {"key": "total", "enrolled": 1, "booked": 0},
        "byVariant": [{"key": "default", "enrolled": 1}],
    }
    rest = (
        await client.get(f"/v1/cadences/{cadence['id']}/metrics", headers=practice.headers)
    ).json()
    assert rest["total"]["enrolled"] == 1
    bad = await gql.execute(
        "mutation($input: CadenceInput!) { createCadence(input: $input) { id } }",
        {"input": {"name": "x", "steps": [{"delay_days": 0, "channel": "fax"}]}},
        practice.headers,
    )
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"
    assert bad["errors"][0]["extensions"]["errors"][0]["field"].startswith("input.steps.0")


async def test_large_enrollments_are_written_in_chunks(client, practice, sessions, monkeypatch):
    # PostgreSQL takes at most 32,767 parameters a statement: a segment of 2,200 patients
    # once failed as one INSERT. Chunks of two stand in for chunks of a thousand here.
    from api.cadences import repository

    monkeypatch.setattr(repository, "INSERT_CHUNK", 2)
    tenant, main = practice.tenant.id, practice.locations[0].id
    await sync(sessions, tenant, main, "patients", [patient_row(f"p{i}") for i in range(5)])
    ids = sorted((await patient_ids(sessions, tenant)).values())
    cadence = await _cadence(client, practice)
    response = await client.post(
        f"/v1/cadences/{cadence['id']}/enrollments",
        json={"patient_ids": ids},
        headers=practice.headers,
    )
    assert sorted(e["patient_id"] for e in response.json()["enrolled"]) == ids
    assert await _count(sessions, tenant, Enrollment) == 5


async def test_a_patient_deleted_in_the_pms_leaves_at_the_next_tick(
    client, practice, sessions, ticks
):
    tenant, main = practice.tenant.id, practice.locations[0].id
    await sync(sessions, tenant, main, "patients", [patient_row("amy", mobile="+15125550111")])
    amy = (await patient_ids(sessions, tenant))["amy"]
    cadence = await _cadence(client, practice)
    url = f"/v1/cadences/{cadence['id']}/enrollments"
    await client.post(url, json={"patient_ids": [amy]}, headers=practice.headers)
    async with unit_of_work(sessions, tenant) as session:
        await ingest.sync_batch(
            session,
            tenant_id=tenant,
            location_id=main,
            entity="patients",
            rows=[],
            deletes=["amy"],
            watermark=None,
            now=utcnow(),
        )
    with time_machine.travel(utcnow() + dt.timedelta(days=1), tick=False):
        await ticks.tick()
    async with unit_of_work(sessions, tenant) as session:
        enrollment = (await session.execute(select(Enrollment))).scalar_one()
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "removed")
    assert await _count(sessions, tenant, StepRun) == 0


async def test_a_caller_cannot_enroll_patients_of_locations_it_does_not_see(
    client, practice, sessions, make_token
):
    tenant, main, lakeside = practice.tenant.id, *[loc.id for loc in practice.locations]
    await sync(sessions, tenant, main, "patients", [patient_row("amy")])
    await sync(sessions, tenant, lakeside, "patients", [patient_row("bo")])
    ids = await patient_ids(sessions, tenant)
    cadence = await _cadence(client, practice)  # every location
    main_only = {"Authorization": f"Bearer {await make_token(tenant, None, [main])}"}
    refused = await client.post(
        f"/v1/cadences/{cadence['id']}/enrollments",
        json={"patient_ids": [ids["amy"], ids["bo"]]},
        headers=main_only,
    )
    assert assert_problem(refused, 422)["errors"] == [
        {"field": "patient_ids[1]", "message": f"no patient {ids['bo']!r}"}
    ]
    assert await _count(sessions, tenant, Enrollment) == 0


async def test_graphql_names_a_bad_enrollment_status(client, practice):
    cadence = await _cadence(client, practice)
    bad = await GraphQLClient(client).execute(
        'query($id: ID!) { cadenceEnrollments(cadenceId: $id, status: "gone") { nextCursor } }',
        {"id": cadence["id"]},
        practice.headers,
    )
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"
    assert bad["errors"][0]["extensions"]["errors"][0]["field"] == "status"
