"""Email through a real SMTP server (aiosmtpd on loopback): the MIME that arrives, the
RFC 8058 one-click unsubscribe, and the opt-out it leaves behind."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api.core.db import unit_of_work
from api.messaging.models import Message
from api.practice.models import OptOut, Writeback
from tests.messaging.support import EMAIL, event_types, rows, send

SMTP_PASSWORD = "smtp-password-for-tests"


@pytest.fixture
async def email_practice(client, practice, smtp_server):
    controller, _ = smtp_server
    body = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": controller.port,
        "security": "none",
        "username": None,
        "password": SMTP_PASSWORD,
        "from_address": "hello@BrightSmiles.example",
        "from_name": "Bright Smiles Dental",
    }
    response = await client.put(
        "/v1/messaging/providers/email", json=body, headers=practice.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["config"]["from_address"] == "hello@brightsmiles.example"
    assert "password" not in response.json()["config"]
    return practice


async def test_email_arrives_as_multipart_with_one_click_unsubscribe(
    client, email_practice, sessions, settings, make_patient, send_jobs, smtp_server
):
    practice = email_practice
    _, mailbox = smtp_server
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id, preferred_name="Jo")
    outcome = await send(
        sessions,
        settings,
        practice.tenant.id,
        location.id,
        patient.id,
        content=EMAIL,
        source=("cadence", "winback-1"),
    )
    assert outcome.message.status == "queued"
    await send_jobs.run_due()

    [(recipients, mail)] = mailbox.messages
    assert recipients == ["jordan@example.com"]
    assert mail["Subject"] == "Time for your cleaning, Jordan"
    assert mail["From"] == "Bright Smiles Dental <hello@brightsmiles.example>"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "We miss you, Jo" in plain and "Book now: http" in plain
    assert "max-width:600px" in html and 'role="presentation"' in html
    assert "We miss you, Jo" in html
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith("<http") and "/v1/messaging/unsubscribe/" in unsubscribe
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = unsubscribe.strip("<>")
    assert url in plain and url in html.replace("&amp;", "&")

    [message] = await rows(sessions, Message)
    assert message.status == "sent" and message.provider_message_id == mail["Message-ID"]
    [note] = await rows(sessions, Writeback, kind="chart_note")
    assert note.payload["note"] == "Recall reminder sent by email"
    assert note.payload["patient_external_id"] == patient.external_id

    # The page behind the link asks first; a GET changes nothing (mail scanners follow it).
    path = url.split("localhost:8000", 1)[1]
    page = await client.get(path)
    assert page.status_code == 200 and "Unsubscribe" in page.text and "<form" in page.text
    assert await rows(sessions, OptOut) == []
    # What a mail app's button sends (RFC 8058): no credentials, only the token.
    done = await client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "unsubscribed" in done.text
    [opt_out] = await rows(sessions, OptOut)
    assert (opt_out.patient_id, opt_out.channel, opt_out.source) == (
        patient.id,
        "email",
        "email_unsubscribe",
    )
    assert (await client.post(path)).status_code == 200  # a repeat is harmless
    assert len(await rows(sessions, OptOut)) == 1
    assert (await event_types(sessions, practice.tenant.id)).count("message.opted_out") == 1

    later = await send(
        sessions,
        settings,
        practice.tenant.id,
        location.id,
        patient.id,
        content=EMAIL,
        source=("cadence", "winback-2"),
    )
    assert (later.message.status, later.message.failure_reason) == ("suppressed", "opted_out")
    # SMS is another channel: still allowed.
    sms = await send(sessions, settings, practice.tenant.id, location.id, patient.id)
    assert sms.message.status == "queued"


async def test_tampered_unsubscribe_token_is_refused(client, practice):
    assert (await client.post("/v1/messaging/unsubscribe/abc.def")).status_code == 404
    assert (await client.get("/v1/messaging/unsubscribe/nonsense")).status_code == 404


async def test_smtp_password_is_encrypted_at_rest(client, email_practice, sessions):
    async with unit_of_work(sessions) as session:
        config, ciphertext = (
            await session.execute(
                text("SELECT config::text, secrets_ciphertext FROM messaging_providers")
            )
        ).one()
    assert SMTP_PASSWORD not in config and SMTP_PASSWORD not in ciphertext
    listed = await client.get("/v1/messaging/providers", headers=email_practice.headers)
    assert SMTP_PASSWORD not in listed.text
    email = next(p for p in listed.json() if p["channel"] == "email")
    assert email["secrets_set"] == ["password"] and email["kind"] == "smtp"
    # Changing a setting without resending the password keeps it.
    body = email | {"kind": "smtp"}
    update = {k: v for k, v in body["config"].items()} | {"kind": "smtp", "from_name": "BSD"}
    changed = await client.put(
        "/v1/messaging/providers/email", json=update, headers=email_practice.headers
    )
    assert changed.json()["secrets_set"] == ["password"]
    assert changed.json()["config"]["from_name"] == "BSD"


async def test_an_unreachable_smtp_server_is_retried_later(
    client, practice, sessions, settings, make_patient, send_jobs
):
    body = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": 9,
        "security": "none",
        "from_address": "hello@example.com",
    }
    await client.put("/v1/messaging/providers/email", json=body, headers=practice.headers)
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id)
    await send(sessions, settings, practice.tenant.id, location.id, patient.id, content=EMAIL)
    await send_jobs.run_due()
    [message] = await rows(sessions, Message)
    assert message.status == "queued" and message.attempts == 1
    assert "SMTP unavailable" in (message.failure_reason or "")
    async with unit_of_work(sessions) as session:
        pending = (
            await session.execute(
                text("SELECT count(*) FROM jobs WHERE status = 'pending' AND run_at > now()")
            )
        ).scalar_one()
    assert pending == 1
