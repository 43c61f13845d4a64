"""The patient's booking confirmation: recorded with the confirming transaction through
api.messaging.sending.send_message (source booking, purpose confirmation), delivered by the
sends queue to the sandbox provider, on the channel the patient prefers and consented to."""

from __future__ import annotations

import uuid

import pytest

from api.messaging.models import Message
from tests.booking.conftest import PATIENT, confirm, hold, push, widget_headers
from tests.messaging.conftest import SendJobs
from tests.messaging.support import rows


@pytest.fixture
def send_jobs(worker_context) -> SendJobs:
    return SendJobs(worker_context)


async def _held(client, headers, mirror, hour=10):
    response = await hold(
        client, headers, mirror.location_id, mirror.types["exam"], mirror.at(hour)
    )
    assert response.status_code == 201, response.text
    return response.json()


def _when(mirror, hour: int) -> str:
    day = mirror.day
    return f"{day.strftime('%A')}, {day.strftime('%B')} {day.day}, {day.year} at {hour}:00 AM"


async def test_a_new_patient_who_consented_gets_an_sms_once(
    client, mirror, practice, sessions, make_publishable_key, send_jobs
):
    widget = widget_headers(await make_publishable_key(practice.tenant.id, [mirror.location_id]))
    the_hold = await _held(client, widget, mirror)
    key = str(uuid.uuid4())
    body = PATIENT | {"sms_consent": True}
    first = await confirm(client, widget, the_hold["id"], body, key=key)
    assert first.status_code == 200, first.text
    # A retried confirmation replays; it does not send again.
    again = await confirm(client, widget, the_hold["id"], body, key=key)
    assert again.headers["idempotent-replayed"] == "true"

    [message] = await rows(sessions, Message)
    assert (message.source_kind, message.source_id, message.purpose) == (
        "booking",
        the_hold["id"],
        "confirmation",
    )
    assert (message.channel, message.status, message.to_address) == (
        "sms",
        "queued",
        "+15125550100",
    )
    assert message.patient_id == first.json()["patient_id"]
    assert await send_jobs.run_due() == 1

    listed = await client.get("/v1/sandbox/messages", headers=practice.headers)
    [sent] = listed.json()["data"]
    # The time is the office's (Chicago) wall time of the slot.
    assert sent["body_text"] == f"Hi Maria, you're booked at Main Street on {_when(mirror, 10)}."
    assert sent["to_address"] == "+15125550100"
    [delivered] = await rows(sessions, Message)
    assert delivered.status == "delivered" and delivered.chart_note == (
        "Booking confirmation sent by SMS"
    )


async def test_an_existing_chart_preferring_email_gets_an_email(
    client, mirror, practice, sessions, send_jobs
):
    await push(
        sessions,
        mirror.tenant_id,
        mirror.location_id,
        "patients",
        [
            {
                "external_id": "p1",
                "first_name": "Maria",
                "last_name": "Rivera",
                "birthdate": "1985-04-12",
                "status": "active",
                "mobile": "+15125550100",
                "email": "maria@example.com",
                "communication_preference": "email",
                "sms_consent": True,
                "email_consent": True,
            }
        ],
    )
    the_hold = await _held(client, mirror.headers, mirror, hour=11)
    # The form's boxes do not change an existing chart's consent (the PMS owns it).
    response = await confirm(client, mirror.headers, the_hold["id"], PATIENT)
    assert response.status_code == 200 and response.json()["patient_created"] is False
    assert await send_jobs.run_due() == 1
    listed = await client.get("/v1/sandbox/messages", headers=practice.headers)
    [sent] = listed.json()["data"]
    assert sent["channel"] == "email" and sent["to_address"] == "maria@example.com"
    assert sent["subject"] == "Your appointment at Main Street is booked"
    assert _when(mirror, 11) in sent["body_text"]


async def test_without_consent_the_confirmation_is_recorded_as_suppressed(
    client, mirror, practice, sessions, send_jobs
):
    the_hold = await _held(client, mirror.headers, mirror)
    response = await confirm(client, mirror.headers, the_hold["id"], PATIENT)
    assert response.status_code == 200, response.text
    [message] = await rows(sessions, Message)
    assert (message.status, message.failure_reason) == ("suppressed", "no_consent")
    assert await send_jobs.run_due() == 0
    listed = await client.get("/v1/sandbox/messages", headers=practice.headers)
    assert listed.json()["data"] == []


async def test_a_booking_sent_to_the_front_desk_sends_nothing_yet(
    client, mirror, sessions, send_jobs
):
    for external in ("p1", "p2"):
        row = {
            "external_id": external,
            "first_name": "Maria",
            "last_name": "Rivera",
            "birthdate": "1985-04-12",
            "status": "active",
            "mobile": "+15125550100",
            "sms_consent": True,
        }
        await push(sessions, mirror.tenant_id, mirror.location_id, "patients", [row])
    the_hold = await _held(client, mirror.headers, mirror)
    response = await confirm(client, mirror.headers, the_hold["id"], PATIENT)
    assert response.status_code == 202 and response.json()["status"] == "needs_review"
    assert await rows(sessions, Message) == []


async def test_a_failed_confirmation_leaves_no_message(client, mirror, sessions):
    the_hold = await _held(client, mirror.headers, mirror)
    bad = await confirm(client, mirror.headers, the_hold["id"], PATIENT | {"mobile": "12"})
    assert bad.status_code == 422
    assert await rows(sessions, Message) == []
