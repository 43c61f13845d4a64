"""One-tap booking links: a cadence text carries `/b/{code}`; the link opens the widget
with the patient's name and the cadence's appointment type; confirming with the invite
books the invited patient (matched by birthdate, their chart's contact standing in) and
credits the cadence step."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from sqlalchemy import select

from api.auth.principal import Principal
from api.cadences import invites
from api.cadences import service as cadence_service
from api.cadences.models import BookingInvite, Enrollment
from api.cadences.schemas import CadenceCreate, EnrollRequest
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.messaging.models import Message
from api.messaging.unsubscribe import public_base
from api.oauth2 import service as oauth_service
from tests.booking.conftest import confirm, hold
from tests.cadences.conftest import WINBACK, patient_ids, patient_row, sync
from tests.core.conftest import assert_problem
from tests.support.live import live_server

MARIA = patient_row(
    "maria", last_name="Rivera", birthdate="1985-04-12", mobile="+15125550177", first_name="Maria"
)


async def _invited(client, practice, sessions, settings, mirror, ticks):
    tenant, main = mirror.tenant_id, mirror.location_id
    await sync(sessions, tenant, main, "patients", [MARIA])
    maria = (await patient_ids(sessions, tenant))["maria"]
    async with unit_of_work(sessions) as session:
        key = await oauth_service.create_publishable_key(
            session,
            tenant,
            name="widget",
            location_ids=[main],
            allowed_origins=[public_base(settings)],
        )
    cadence = await client.post(
        "/v1/cadences",
        json=WINBACK | {"appointment_type_id": mirror.types["clean"]},
        headers=practice.headers,
    )
    assert cadence.status_code == 201, cadence.text
    enrolled = await client.post(
        f"/v1/cadences/{cadence.json()['id']}/enrollments",
        json={"patient_ids": [maria]},
        headers=practice.headers,
    )
    assert enrolled.status_code == 200, enrolled.text
    with time_machine.travel(utcnow() + dt.timedelta(days=1), tick=False):
        await ticks.tick()
    async with unit_of_work(sessions, tenant) as session:
        text = (await session.execute(select(Message.body_text))).scalar_one()
    code = re.search(r"/b/([a-z0-9]+)", text)
    assert code, text
    return maria, key.key, code.group(1)


async def test_a_one_tap_link_books_the_invited_patient_and_credits_the_step(
    client,
    practice,
    sessions,
    settings,
    mirror,
    ticks,
):
    maria, key, code = await _invited(client, practice, sessions, settings, mirror, ticks)
    opened = await client.get(f"/b/{code}", follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == (
        f"/widget/{mirror.location_id}?invite={code}&publishable_key={key}"
    )
    invite = await client.get(f"/v1/booking-invites/{code}")
    assert invite.status_code == 200, invite.text
    assert invite.json() | {"expires_at": None} == {
        "location_id": mirror.location_id,
        "publishable_key": key,
        "appointment_type_id": mirror.types["clean"],
        "first_name": "Maria",
        "last_name": "Rivera",
        "expires_at": None,
    }

    held = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10)
    )
    assert held.status_code == 201, held.text
    # The widget sends the prefilled name, the birthdate the patient typed, and the code.
    booked = await confirm(
        client,
        mirror.headers,
        held.json()["id"],
        {"first_name": "Maria", "last_name": "Rivera", "birthdate": "1985-04-12", "invite": code},
    )
    assert booked.status_code == 200, booked.text
    assert booked.json()["patient_id"] == maria and booked.json()["patient_created"] is False
    async with unit_of_work(sessions, mirror.tenant_id) as session:
        enrollment = (await session.execute(select(Enrollment))).scalar_one()
        stored = (await session.execute(select(BookingInvite))).scalar_one()
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "booked")
    assert enrollment.booked_via_position == 1
    assert enrollment.booked_appointment_id == booked.json()["appointment"]["id"]
    assert stored.used_at is not None and stored.appointment_id == enrollment.booked_appointment_id


async def test_someone_else_with_the_link_books_as_themselves(
    client,
    practice,
    sessions,
    settings,
    mirror,
    ticks,
):
    maria, _, code = await _invited(client, practice, sessions, settings, mirror, ticks)
    held = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10)
    )
    other = {
        "first_name": "Maria",
        "last_name": "Rivera",
        "birthdate": "1990-01-01",
        "mobile": "+15125550999",
        "invite": code,
    }
    booked = await confirm(client, mirror.headers, held.json()["id"], other)
    assert booked.status_code == 200, booked.text
    assert booked.json()["patient_id"] != maria and booked.json()["patient_created"] is True
    async with unit_of_work(sessions, mirror.tenant_id) as session:
        enrollment = (await session.execute(select(Enrollment))).scalar_one()
    assert enrollment.status == "active" and enrollment.booked_via_position is None


async def test_unknown_expired_and_foreign_invites(
    client,
    practice,
    sessions,
    settings,
    mirror,
    ticks,
):
    _, _, code = await _invited(client, practice, sessions, settings, mirror, ticks)
    assert (await client.get("/b/nope-nope-nope")).status_code == 404
    assert_problem(await client.get("/v1/booking-invites/zzzzzzzzzzzz"), 404)
    held = await hold(
        client, mirror.headers, mirror.location_id, mirror.types["clean"], mirror.at(10)
    )
    refused = await confirm(
        client,
        mirror.headers,
        held.json()["id"],
        {
            "first_name": "Maria",
            "last_name": "Rivera",
            "birthdate": "1985-04-12",
            "invite": "zzzzzzzzzzzz",
        },
    )
    assert assert_problem(refused, 422)["errors"][0]["field"] == "invite"
    with time_machine.travel(utcnow() + dt.timedelta(days=30), tick=False):
        assert (await client.get(f"/b/{code}")).status_code == 404
        assert_problem(await client.get(f"/v1/booking-invites/{code}"), 404)


@pytest.mark.slow
async def test_the_widget_opens_a_one_tap_link_in_chromium(
    browser, servers, sessions, settings, mirror
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    tenant, main = mirror.tenant_id, mirror.location_id
    await sync(sessions, tenant, main, "patients", [MARIA])
    maria = (await patient_ids(sessions, tenant))["maria"]
    principal = Principal(
        tenant_id=tenant, kind="client", client_id="test", scopes=frozenset(), location_ids=None
    )
    with live_server(servers) as base_url:
        async with unit_of_work(sessions, tenant) as session:
            cadence = await cadence_service.create_cadence(
                session,
                principal,
                CadenceCreate(
                    name="Win-back", template="winback", appointment_type_id=mirror.types["exam"]
                ),
                utcnow(),
            )
            result = await cadence_service.enroll_patients(
                session, principal, cadence.id, EnrollRequest(patient_ids=[maria]), utcnow()
            )
            enrollment = (await session.execute(select(Enrollment))).scalar_one()
            invite = await invites.create_invite(session, cadence, enrollment, 1, utcnow())
        assert len(result.enrolled) == 1
        async with unit_of_work(sessions) as session:
            # Usable from the page's origin, and found for links made with our public URL.
            await oauth_service.create_publishable_key(
                session,
                tenant,
                name="widget",
                location_ids=[main],
                allowed_origins=[base_url, public_base(settings)],
            )
        wait = WebDriverWait(browser, 30)
        browser.get(f"{base_url}/b/{invite.code}")

        # The link's appointment type is chosen and its free times are shown at once.
        slot = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button.cf-slot")))
        assert Select(browser.find_element(By.ID, "cf-type")).first_selected_option.text == (
            "Exam (30 min)"
        )
        slot.click()
        first_name = wait.until(ec.visibility_of_element_located((By.ID, "cf-first-name")))
        assert first_name.get_attribute("value") == "Maria"
        assert browser.find_element(By.ID, "cf-last-name").get_attribute("value") == "Rivera"
        assert "Booking for Maria" in browser.find_element(By.ID, "cf-contact-hint").text
        birthdate = browser.find_element(By.ID, "cf-birthdate")
        browser.execute_script("arguments[0].value = '1985-04-12'", birthdate)
        browser.find_element(By.ID, "cf-confirm").click()
        done = wait.until(ec.visibility_of_element_located((By.ID, "cf-done-text")))
        assert done.get_attribute("data-status") == "confirmed", browser.find_element(
            By.ID, "cf-error"
        ).text
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    async with unit_of_work(sessions, tenant) as session:
        enrollment = (await session.execute(select(Enrollment))).scalar_one()
    assert (enrollment.exit_reason, enrollment.booked_via_position) == ("booked", 1)
