"""SMS through the Twilio stand-in: the REST call, signed delivery reports, and the
keywords (STOP mid-stream, START, HELP) and free-text replies coming back."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import text

from api.core.db import unit_of_work
from api.messaging.models import InboundMessage, Message
from api.practice.models import OptOut
from api.tasks.models import Task
from tests.messaging.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, twilio_signature
from tests.messaging.support import event_types, rows, send

STATUS_URL = "http://testserver/v1/messaging/twilio/status"
INBOUND_URL = "http://testserver/v1/messaging/twilio/inbound"
PATIENT_MOBILE = "+15125550100"


@pytest.fixture
async def sms_practice(client, practice, twilio):
    body = {
        "kind": "twilio",
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": FROM_NUMBER,
        "base_url": twilio.base_url,
    }
    response = await client.put("/v1/messaging/providers/sms", json=body, headers=practice.headers)
    assert response.status_code == 200, response.text
    return practice


async def post_signed(client, url, params, signature=None):
    headers = {"X-Twilio-Signature": signature or twilio_signature(url, params)}
    return await client.post(url.removeprefix("http://testserver"), data=params, headers=headers)


def inbound(body: str, sid: str, sender: str = PATIENT_MOBILE) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


async def test_send_status_callback_and_secrets(
    client, sms_practice, sessions, settings, make_patient, send_jobs, twilio
):
    practice = sms_practice
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id)
    await send(sessions, settings, practice.tenant.id, location.id, patient.id)
    await send_jobs.run_due()

    [sms] = twilio.sent
    assert sms.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert sms.form["To"] == PATIENT_MOBILE and sms.form["From"] == FROM_NUMBER
    assert sms.form["Body"].startswith("Hi Jordan, Main Street misses you!")
    assert sms.form["StatusCallback"].endswith("/v1/messaging/twilio/status")
    [message] = await rows(sessions, Message)
    assert (message.status, message.provider_message_id) == ("sent", sms.sid)
    # Our message id is the request's idempotency key: a provider that honours it never
    # sends the same message twice, whatever happens between its answer and our commit.
    assert sms.idempotency_key == message.id

    report = {"MessageSid": sms.sid, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    unsigned = await client.post("/v1/messaging/twilio/status", data=report)
    assert unsigned.status_code == 403
    forged = twilio_signature(STATUS_URL, report, token="not-the-token")
    assert (await post_signed(client, STATUS_URL, report, forged)).status_code == 403
    assert (await rows(sessions, Message))[0].status == "sent"
    assert (await post_signed(client, STATUS_URL, report)).status_code == 204
    [message] = await rows(sessions, Message)
    assert message.status == "delivered" and message.delivered_at is not None
    # A late "sent" report does not move it back.
    late = report | {"MessageStatus": "sent"}
    assert (await post_signed(client, STATUS_URL, late)).status_code == 204
    assert (await rows(sessions, Message))[0].status == "delivered"
    assert (await event_types(sessions, practice.tenant.id))[-2:] == [
        "message.sent",
        "message.delivered",
    ]

    # The auth token is stored encrypted and never returned.
    listed = await client.get("/v1/messaging/providers", headers=practice.headers)
    sms_setting = next(p for p in listed.json() if p["channel"] == "sms")
    assert sms_setting["secrets_set"] == ["auth_token"] and AUTH_TOKEN not in listed.text
    async with unit_of_work(sessions) as session:
        raw = (
            await session.execute(
                text("SELECT config::text, secrets_ciphertext FROM messaging_providers")
            )
        ).one()
    assert AUTH_TOKEN not in raw[0] and AUTH_TOKEN not in raw[1]
    assert base64.urlsafe_b64decode(raw[1])  # a Fernet token


async def test_failed_delivery_report(
    client, sms_practice, sessions, settings, make_patient, send_jobs, twilio
):
    location = sms_practice.locations[0]
    patient = await make_patient(sms_practice.tenant.id, location.id)
    await send(sessions, settings, sms_practice.tenant.id, location.id, patient.id)
    await send_jobs.run_due()
    report = {
        "MessageSid": twilio.sent[0].sid,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "AccountSid": ACCOUNT_SID,
    }
    assert (await post_signed(client, STATUS_URL, report)).status_code == 204
    [message] = await rows(sessions, Message)
    assert message.status == "failed" and "30003" in (message.failure_reason or "")
    assert "message.failed" in await event_types(sessions, sms_practice.tenant.id)


async def test_stop_mid_stream_then_start(
    client, sms_practice, sessions, settings, make_patient, send_jobs, twilio
):
    practice = sms_practice
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id)
    await send(
        sessions, settings, practice.tenant.id, location.id, patient.id, source=("cadence", "c1")
    )
    await send_jobs.run_due()
    # The next touch is queued, then the patient texts STOP before it goes out.
    queued = await send(
        sessions, settings, practice.tenant.id, location.id, patient.id, source=("cadence", "c2")
    )
    assert queued.message.status == "queued"
    answer = await post_signed(client, INBOUND_URL, inbound("  stop ", "SMin1"))
    assert answer.status_code == 200 and "<Response>" in answer.text
    [opt_out] = await rows(sessions, OptOut)
    assert (opt_out.patient_id, opt_out.channel, opt_out.source) == (patient.id, "sms", "sms_reply")
    await send_jobs.run_due()
    second = (await rows(sessions, Message, source_id="c2"))[0]
    assert (second.status, second.failure_reason) == ("suppressed", "opted_out")
    bodies = twilio.bodies_to(PATIENT_MOBILE)
    assert len(bodies) == 2 and "unsubscribed" in bodies[1]
    # STOP again (and Twilio redelivering the first) confirms nothing twice.
    await post_signed(client, INBOUND_URL, inbound("STOP", "SMin1"))
    await post_signed(client, INBOUND_URL, inbound("QUIT", "SMin2"))
    await send_jobs.run_due()
    assert len(twilio.bodies_to(PATIENT_MOBILE)) == 2
    later = await send(
        sessions, settings, practice.tenant.id, location.id, patient.id, source=("campaign", "x")
    )
    assert later.message.failure_reason == "opted_out"
    assert "message.opted_out" in await event_types(sessions, practice.tenant.id)

    await post_signed(client, INBOUND_URL, inbound("Start", "SMin3"))
    await send_jobs.run_due()
    assert "resubscribed" in twilio.bodies_to(PATIENT_MOBILE)[-1]
    assert await rows(sessions, OptOut, deleted_at=None) == []
    again = await send(
        sessions, settings, practice.tenant.id, location.id, patient.id, source=("campaign", "y")
    )
    assert again.message.status == "queued"
    await send_jobs.run_due()
    assert twilio.bodies_to(PATIENT_MOBILE)[-1].startswith("Hi Jordan")


async def test_help_and_other_replies(
    client, sms_practice, sessions, settings, make_patient, make_location, send_jobs, twilio
):
    practice = sms_practice
    location = practice.locations[0]
    async with unit_of_work(sessions) as session:
        await session.execute(
            text("UPDATE locations SET phone = '+15125550123' WHERE id = :id"), {"id": location.id}
        )
    patient = await make_patient(practice.tenant.id, location.id)
    await post_signed(client, INBOUND_URL, inbound("help", "SMh1"))
    await send_jobs.run_due()
    [help_text] = twilio.bodies_to(PATIENT_MOBILE)
    assert "Main Street" in help_text and "(512) 555-0123" in help_text

    reply = await post_signed(client, INBOUND_URL, inbound("Can I come Tuesday at 3?", "SMr1"))
    assert reply.status_code == 200
    [task] = await rows(sessions, Task)
    assert (task.kind, task.patient_id, task.location_id) == ("reply", patient.id, location.id)
    assert "Can I come Tuesday at 3?" in (task.notes or "")
    stored = (await rows(sessions, InboundMessage, provider_message_id="SMr1"))[0]
    assert stored.action == "reply" and stored.task_id == task.id
    assert "message.replied" in await event_types(sessions, practice.tenant.id)
    # YES with nothing to lift is an answer for the front desk, not an opt-in.
    await post_signed(client, INBOUND_URL, inbound("YES", "SMr2"))
    assert len(await rows(sessions, Task)) == 2
    await send_jobs.run_due()
    assert len(twilio.bodies_to(PATIENT_MOBILE)) == 1


async def test_inbound_for_another_account_or_unsigned_is_refused(client, sms_practice, sessions):
    params = inbound("STOP", "SMx1") | {"AccountSid": "AC" + "f" * 32}
    assert (await post_signed(client, INBOUND_URL, params)).status_code == 403
    assert (
        await client.post("/v1/messaging/twilio/inbound", data=inbound("STOP", "SMx2"))
    ).status_code == 403
    assert await rows(sessions, OptOut) == []
