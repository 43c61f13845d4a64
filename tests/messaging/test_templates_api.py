"""POST /v1/templates/preview: rendering for a sample or a real patient, SMS length and
segments, unknown variables, and clinical variables refused in SMS unless allowed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from api.core.db import unit_of_work
from api.core.errors import ValidationProblem
from api.core.ids import new_id
from api.messaging.schemas import SmsContent
from api.practice.models import Procedure, Recall
from tests.core.conftest import assert_problem
from tests.messaging.support import send


async def preview(client, headers, **body):
    return await client.post("/v1/templates/preview", json=body, headers=headers)


async def test_sms_preview_for_the_sample_patient(client, practice):
    body = "Hi {{patient.first_name}}! {{office.name}}: book at {{booking.link}}"
    response = await preview(client, practice.headers, content={"channel": "sms", "body": body})
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["sample_patient"] is True
    assert out["sms"]["text"].startswith("Hi Jordan! Main Street: book at http")
    assert f"/widget/{practice.locations[0].id}" in out["sms"]["text"]
    assert (out["sms"]["encoding"], out["sms"]["segments"]) == ("GSM-7", 1)
    assert out["variables_used"] == ["booking.link", "office.name", "patient.first_name"]

    emoji = await preview(
        client, practice.headers, content={"channel": "sms", "body": "Smile 😁 " + "a" * 70}
    )
    sms = emoji.json()["sms"]
    assert (sms["encoding"], sms["segments"], sms["non_gsm_characters"]) == ("UCS-2", 2, ["😁"])


async def test_preview_for_a_patient_of_the_tenant(
    client, practice, other_practice, sessions, make_patient
):
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id, first_name="Ana")
    async with unit_of_work(sessions, practice.tenant.id) as session:
        session.add(
            Recall(
                tenant_id=practice.tenant.id,
                id=new_id("recall"),
                location_id=location.id,
                external_id="r1",
                patient_id=patient.id,
                recall_type="prophy",
                due_date=dt.date(2026, 12, 1),
                disabled=False,
            )
        )
    body = "{{patient.first_name}}, your cleaning is due {{recall.next_date}}."
    response = await preview(
        client, practice.headers, content={"channel": "sms", "body": body}, patient_id=patient.id
    )
    assert response.json()["sample_patient"] is False
    assert response.json()["sms"]["text"] == "Ana, your cleaning is due December 1, 2026."
    stranger = await preview(
        client,
        other_practice.headers,
        content={"channel": "sms", "body": body},
        patient_id=patient.id,
    )
    assert stranger.status_code == 404


async def test_unknown_variables_and_broken_syntax_are_422(client, practice):
    response = await preview(
        client,
        practice.headers,
        content={"channel": "sms", "body": "Hi {{patient.nickname}} {{ office.name }}"},
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["variables"] == ["patient.nickname"]
    assert problem["errors"][0]["field"] == "content.body"
    assert "{{patient.nickname}}" in problem["errors"][0]["message"]
    email = await preview(
        client,
        practice.headers,
        content={
            "channel": "email",
            "subject": "Hello",
            "blocks": [
                {"type": "paragraph", "text": "ok"},
                {
                    "type": "columns",
                    "columns": [
                        {"blocks": [{"type": "button", "text": "Go", "url": "{{booking.url}}"}]}
                    ],
                },
            ],
        },
    )
    assert email.status_code == 422
    assert email.json()["errors"][0]["field"] == "content.blocks[1].columns[0].blocks[0].url"
    broken = await preview(
        client, practice.headers, content={"channel": "sms", "body": "Hi {{patient.first_name"}
    )
    assert broken.status_code == 422


async def test_sms_longer_than_260_characters_is_refused(client, practice):
    body = "{{office.address}} " + "x" * 255
    response = await preview(client, practice.headers, content={"channel": "sms", "body": body})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "content.body", "message": "longer than 260 characters"}
    ]


async def test_clinical_variables_need_the_tenant_setting_in_sms(
    client, practice, sessions, settings, make_patient
):
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id)
    async with unit_of_work(sessions, practice.tenant.id) as session:
        session.add(
            Procedure(
                tenant_id=practice.tenant.id,
                id=new_id("procedure"),
                location_id=location.id,
                external_id="p1",
                patient_id=patient.id,
                code="D2740",
                description="Crown",
                fee=Decimal("1250.00"),
                status="accepted",
            )
        )
    body = {"channel": "sms", "body": "Your {{treatment.description}} ({{treatment.amount}})"}
    refused = await preview(client, practice.headers, content=body, patient_id=patient.id)
    assert refused.status_code == 422
    assert refused.json()["variables"] == ["treatment.amount", "treatment.description"]
    # The send service refuses it the same way.
    with pytest.raises(ValidationProblem) as refusal:
        await send(
            sessions,
            settings,
            practice.tenant.id,
            location.id,
            patient.id,
            content=SmsContent(**body),
        )
    assert refusal.value.extra["variables"] == ["treatment.amount", "treatment.description"]
    # Email may carry it; so may SMS once the practice allows it.
    email = {
        "channel": "email",
        "subject": "Your plan",
        "blocks": [{"type": "paragraph", "text": "{{treatment.description}}: {{balance}}"}],
    }
    assert (await preview(client, practice.headers, content=email)).status_code == 200
    allowed = await client.put(
        "/v1/messaging/settings", json={"allow_clinical_sms": True}, headers=practice.headers
    )
    assert allowed.json()["allow_clinical_sms"] is True
    ok = await preview(client, practice.headers, content=body, patient_id=patient.id)
    assert ok.json()["sms"]["text"] == "Your Crown ($1,250.00)"


async def test_email_preview_renders_blocks(client, practice):
    content = {
        "channel": "email",
        "subject": "Hi {{patient.first_name}}",
        "preheader": "A note from {{office.name}}",
        "blocks": [
            {"type": "heading", "text": "Welcome <back>", "level": 2},
            {"type": "image", "src": "https://example.com/logo.png", "alt": "Logo", "width": 200},
            {
                "type": "columns",
                "columns": [
                    {"width": 60, "blocks": [{"type": "paragraph", "text": "Left"}]},
                    {"blocks": [{"type": "button", "text": "Book", "url": "{{booking.link}}"}]},
                ],
            },
        ],
        "style": {"text_color": "#333333"},
    }
    response = await preview(client, practice.headers, content=content)
    assert response.status_code == 200, response.text
    email = response.json()["email"]
    assert email["subject"] == "Hi Jordan"
    assert "Welcome &lt;back&gt;" in email["html"] and "max-width:360px" in email["html"]
    assert "color:#333333" in email["html"] and "Unsubscribe" in email["html"]
    assert "Welcome <back>" in email["text"] and "[Logo]" in email["text"]
    bad_color = content | {"style": {"text_color": "red;background:url(x)"}}
    assert (await preview(client, practice.headers, content=bad_color)).status_code == 422


async def test_variables_are_listed(client, practice):
    response = await client.get("/v1/templates/variables", headers=practice.headers)
    names = {v["name"]: v["clinical"] for v in response.json()}
    assert names["patient.first_name"] is False and names["balance"] is True


async def test_quiet_hours_are_local_times_without_offset(client, practice):
    before = (await client.get("/v1/messaging/settings", headers=practice.headers)).json()
    refused = await client.put(
        "/v1/messaging/settings",
        json={"allow_clinical_sms": False, "quiet_hours": {"start": "21:00-05:00", "end": "08:00"}},
        headers=practice.headers,
    )
    body = assert_problem(refused, 422)
    assert [e["field"] for e in body["errors"]] == ["quiet_hours.start"], body
    after = (await client.get("/v1/messaging/settings", headers=practice.headers)).json()
    assert after == before
