"""End to end: the reference widget in headless Chromium against a real server process
books a slot with a publishable key; the appointment and its PMS write-back exist."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from api.core.db import unit_of_work
from api.oauth2 import service as oauth_service
from tests.support.live import live_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _require_chromium() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    reason = (
        "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the widget test: it {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser():
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The browser runs in Tokyo: the page must still show the office's (Chicago) times.
    service = Service(executable_path=str(CHROMEDRIVER), env=os.environ | {"TZ": "Asia/Tokyo"})
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _clock(start: str) -> str:
    """How en-US shows the wall time of an RFC 3339 start with its own offset."""
    moment = datetime.fromisoformat(start)
    return f"{moment.hour % 12 or 12}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


@pytest.mark.slow
async def test_a_patient_books_through_the_widget(browser, servers, sessions, mirror):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with live_server(servers) as base_url:
        async with unit_of_work(sessions) as session:
            key = await oauth_service.create_publishable_key(
                session,
                mirror.tenant_id,
                name="widget e2e",
                location_ids=[mirror.location_id],
                allowed_origins=[base_url],
            )
        wait = WebDriverWait(browser, 30)
        browser.get(f"{base_url}/widget/{mirror.location_id}?publishable_key={key.key}")

        wait.until(lambda d: d.find_element(By.ID, "cf-type").is_enabled())
        Select(browser.find_element(By.ID, "cf-type")).select_by_visible_text("Exam (30 min)")
        zone_note = wait.until(ec.visibility_of_element_located((By.ID, "cf-zone"))).text
        assert "America/Chicago" in zone_note

        first_slot = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button.cf-slot")))
        start = first_slot.get_attribute("data-start")
        assert start and re.search(r"-0[56]:00$", start), start
        assert first_slot.text == _clock(start)
        first_slot.send_keys(Keys.ENTER)  # keyboard, not a mouse click

        first_name = wait.until(ec.visibility_of_element_located((By.ID, "cf-first-name")))
        assert browser.switch_to.active_element == first_name
        first_name.send_keys("Maria")
        browser.find_element(By.ID, "cf-last-name").send_keys("Rivera")
        birthdate = browser.find_element(By.ID, "cf-birthdate")
        # A date input's typed format follows the browser's locale; set its value directly.
        browser.execute_script("arguments[0].value = '1985-04-12'", birthdate)
        browser.find_element(By.ID, "cf-mobile").send_keys("+1 512 555 0100")
        browser.find_element(By.ID, "cf-sms-consent").send_keys(Keys.SPACE)
        browser.find_element(By.ID, "cf-notes").send_keys("First visit")
        browser.find_element(By.ID, "cf-confirm").click()

        done = wait.until(ec.visibility_of_element_located((By.ID, "cf-done-text")))
        assert done.get_attribute("data-status") == "confirmed", browser.find_element(
            By.ID, "cf-error"
        ).text
        assert "You are booked for" in done.text and "CST" in done.text
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []

    async with sessions() as session:
        appointments = (
            await session.execute(
                text(
                    "SELECT a.id, a.start_at, a.source, p.first_name, p.sms_consent "
                    "FROM appointments a JOIN patients p ON p.id = a.patient_id "
                    "WHERE a.location_id = :loc"
                ),
                {"loc": mirror.location_id},
            )
        ).all()
        assert len(appointments) == 1
        appointment_id, start_at, source, first, consent = appointments[0]
        assert start_at == datetime.fromisoformat(start)
        assert (source, first, consent) == ("online", "Maria", True)
        writebacks = (
            await session.execute(
                text(
                    "SELECT status, payload->>'notes' FROM writebacks "
                    "WHERE kind = 'appointment_create' AND payload->>'appointment_id' = :a"
                ),
                {"a": appointment_id},
            )
        ).all()
        assert writebacks == [("pending", "First visit")]
