"""The default sandbox provider, the send ledger's exactly-once key, and who may see what."""

from __future__ import annotations

import uuid

import pytest

from api.core.db import unit_of_work
from api.messaging.models import Message, SandboxMessage
from api.messaging.unsubscribe import public_base
from api.oauth2 import service as oauth_service
from api.practice.models import CommunicationLog, Writeback
from tests.messaging.support import count, event_types, rows, send


async def test_sandbox_records_and_lists_messages(
    client, practice, sessions, settings, make_patient, send_jobs
):
    location = practice.locations[0]
    patients = [
        await make_patient(practice.tenant.id, location.id, mobile=f"+1512555010{i}")
        for i in range(3)
    ]
    for patient in patients:
        outcome = await send(sessions, settings, practice.tenant.id, location.id, patient.id)
        assert outcome.created and outcome.message.status == "queued"
    assert await send_jobs.run_due() == 3

    messages = await rows(sessions, Message)
    assert {m.status for m in messages} == {"delivered"}
    assert all(m.provider_kind == "sandbox" and m.sent_at for m in messages)
    assert messages[0].body_text.startswith("Hi Jordan, Main Street misses you! Book: http")
    assert messages[0].sms_encoding == "GSM-7" and messages[0].sms_segments == 1
    # Each send leaves its trace in the mirror and the PMS write-back outbox.
    logs = await rows(sessions, CommunicationLog)
    assert [(c.channel, c.direction, c.kind) for c in logs] == [
        ("sms", "outbound", "marketing")
    ] * 3
    notes = await rows(sessions, Writeback, kind="chart_note")
    assert {n.payload["note"] for n in notes} == {"Campaign message sent by SMS"}
    assert (await event_types(sessions, practice.tenant.id)).count("message.delivered") == 3

    first = await client.get("/v1/sandbox/messages?limit=2", headers=practice.headers)
    assert first.status_code == 200
    page = first.json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    rest = await client.get(
        f"/v1/sandbox/messages?limit=2&cursor={page['next_cursor']}", headers=practice.headers
    )
    listed = page["data"] + rest.json()["data"]
    assert rest.json()["next_cursor"] is None
    assert sorted(m["to_address"] for m in listed) == sorted(p.mobile for p in patients)
    one = await client.get("/v1/sandbox/messages?to=%2B15125550101", headers=practice.headers)
    assert [m["to_address"] for m in one.json()["data"]] == ["+15125550101"]


async def test_the_same_send_key_sends_once(practice, sessions, settings, make_patient, send_jobs):
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id)
    first = await send(sessions, settings, practice.tenant.id, location.id, patient.id)
    again = await send(sessions, settings, practice.tenant.id, location.id, patient.id)
    assert first.created and not again.created
    assert again.message.id == first.message.id
    assert await send_jobs.run_due() == 1
    # A retried call after the send, and a job run again, change nothing.
    assert not (await send(sessions, settings, practice.tenant.id, location.id, patient.id)).created
    assert await send_jobs.run_due() == 0
    assert await count(sessions, SandboxMessage) == 1
    # Another channel or another source is another message.
    other = await send(
        sessions, settings, practice.tenant.id, location.id, patient.id, source=("cadence", "cad_1")
    )
    assert other.created


async def test_consent_and_address_are_checked_at_send_time(
    practice, sessions, settings, make_patient, send_jobs
):
    location = practice.locations[0]
    no_consent = await make_patient(practice.tenant.id, location.id, sms_consent=False)
    no_mobile = await make_patient(practice.tenant.id, location.id, mobile=None)
    for patient, reason in ((no_consent, "no_consent"), (no_mobile, "no_address")):
        outcome = await send(sessions, settings, practice.tenant.id, location.id, patient.id)
        assert (outcome.message.status, outcome.message.failure_reason) == ("suppressed", reason)
    assert await send_jobs.run_due() == 0
    assert await count(sessions, SandboxMessage) == 0


async def test_manual_send_over_rest_and_the_ledger(
    client, practice, other_practice, sessions, make_patient, send_jobs
):
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id)
    body = {
        "location_id": location.id,
        "patient_id": patient.id,
        "content": {"channel": "sms", "body": "See you soon, {{patient.first_name}}!"},
        "purpose": "reminder",
    }
    headers = practice.headers | {"Idempotency-Key": str(uuid.uuid4())}
    sent = await client.post("/v1/messages", json=body, headers=headers)
    assert sent.status_code == 201, sent.text
    replay = await client.post("/v1/messages", json=body, headers=headers)
    assert replay.json()["id"] == sent.json()["id"]
    await send_jobs.run_due()
    message_id = sent.json()["id"]
    got = await client.get(f"/v1/messages/{message_id}", headers=practice.headers)
    assert got.json()["status"] == "delivered"
    assert got.json()["body_text"] == "See you soon, Jordan!"
    listed = await client.get("/v1/messages?source_kind=manual", headers=practice.headers)
    assert [m["id"] for m in listed.json()["data"]] == [message_id]

    # Another tenant sees nothing of it, and cannot send to the patient.
    assert (
        await client.get(f"/v1/messages/{message_id}", headers=other_practice.headers)
    ).status_code == 404
    assert (await client.get("/v1/messages", headers=other_practice.headers)).json()["data"] == []
    assert (await client.get("/v1/sandbox/messages", headers=other_practice.headers)).json()[
        "data"
    ] == []
    stranger = body | {"location_id": other_practice.locations[0].id}
    refused = await client.post(
        "/v1/messages",
        json=stranger,
        headers=other_practice.headers | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert refused.status_code == 404


@pytest.mark.scopes("patients:read")
async def test_every_endpoint_needs_its_scope(client, practice):
    h = practice.headers
    calls = [
        ("GET", "/v1/messages", None, "communications:review"),
        ("GET", "/v1/messages/mes_x", None, "communications:review"),
        ("GET", "/v1/sandbox/messages", None, "communications:review"),
        ("GET", "/v1/templates/variables", None, "communications:review"),
        (
            "POST",
            "/v1/templates/preview",
            {"content": {"channel": "sms", "body": "x"}},
            "communications:review",
        ),
        ("GET", "/v1/messaging/settings", None, "communications:review"),
        ("PUT", "/v1/messaging/settings", {"allow_clinical_sms": True}, "communications:manage"),
        ("GET", "/v1/messaging/providers", None, "communications:manage"),
        ("PUT", "/v1/messaging/providers/sms", {"kind": "sandbox"}, "communications:manage"),
        ("DELETE", "/v1/messaging/providers/sms", None, "communications:manage"),
    ]
    for method, path, body, scope in calls:
        response = await client.request(method, path, json=body, headers=h)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["required_scopes"] == [scope]
    body = {
        "location_id": practice.locations[0].id,
        "patient_id": "pat_x",
        "content": {"channel": "sms", "body": "Hi"},
    }
    send = await client.post(
        "/v1/messages", json=body, headers=h | {"Idempotency-Key": str(uuid.uuid4())}
    )
    assert send.status_code == 403
    assert send.json()["required_scopes"] == ["communications:manage"]
    assert (await client.get("/v1/messages")).status_code == 401


async def test_booking_links_open_the_widget_with_a_key_it_may_use(
    practice, sessions, settings, make_patient
):
    tenant, main = practice.tenant.id, practice.locations[0].id
    patient = await make_patient(tenant, main)
    # Without a key the link still opens the right page (the widget explains what is missing).
    first = await send(sessions, settings, tenant, main, patient.id, source=("manual", "m1"))
    assert f"{public_base(settings)}/widget/{main} " in first.message.body_text + " "
    async with unit_of_work(sessions) as session:
        # A key for another site only, and a revoked one, are not usable from our widget page.
        await oauth_service.create_publishable_key(
            session,
            tenant,
            name="site",
            location_ids=[main],
            allowed_origins=["https://bright-smiles.example"],
        )
        ours = await oauth_service.create_publishable_key(
            session,
            tenant,
            name="chairfill widget",
            location_ids=[main],
            allowed_origins=[public_base(settings)],
        )
    second = await send(sessions, settings, tenant, main, patient.id, source=("manual", "m2"))
    assert f"/widget/{main}?publishable_key={ours.key}" in second.message.body_text
