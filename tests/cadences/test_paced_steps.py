"""Cadence steps go through the same send path as campaigns: quiet hours hold a text
until they end (in the location's time), and a frequency cap counts cadences together."""

from __future__ import annotations

import datetime as dt

import time_machine
from sqlalchemy import select

from api.core.db import unit_of_work
from api.messaging.models import Message, SandboxMessage
from tests.cadences.conftest import WINBACK, patient_ids, patient_row, sync

START = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)  # 08:00 in Chicago


async def _messages(sessions, tenant_id: str) -> list[Message]:
    async with unit_of_work(sessions, tenant_id) as session:
        stmt = select(Message).where(Message.source_kind == "cadence").order_by(Message.id)
        return list((await session.execute(stmt)).scalars())


async def _sandbox(sessions, tenant_id: str) -> int:
    async with unit_of_work(sessions, tenant_id) as session:
        return len(list((await session.execute(select(SandboxMessage))).scalars()))


async def _setup(client, sessions, practice, make_token, settings_body, cadences=1):
    tenant, main = practice.tenant.id, practice.locations[0].id
    headers = {"Authorization": f"Bearer {await make_token(tenant, None)}"}
    saved = await client.put("/v1/messaging/settings", json=settings_body, headers=headers)
    assert saved.status_code == 200, saved.text
    await sync(sessions, tenant, main, "patients", [patient_row("amy", mobile="+15125550111")])
    amy = (await patient_ids(sessions, tenant))["amy"]
    for n in range(cadences):
        created = await client.post(
            "/v1/cadences", json=WINBACK | {"name": f"Win-back {n}"}, headers=headers
        )
        cadence_id = created.json()["id"]
        await client.post(
            f"/v1/cadences/{cadence_id}/enrollments",
            json={"patient_ids": [amy]},
            headers=headers,
        )


async def test_quiet_hours_hold_a_step_until_they_end(
    client, practice, sessions, ticks, send_jobs, make_token
):
    tenant = practice.tenant.id
    quiet = {"allow_clinical_sms": False, "quiet_hours": {"start": "09:00", "end": "12:00"}}
    with time_machine.travel(START, tick=False) as clock:
        await _setup(client, sessions, practice, make_token, quiet)
        clock.move_to(dt.datetime(2026, 12, 1, 16, 30, tzinfo=dt.UTC))  # 10:30 in Chicago
        await ticks.tick()
        await send_jobs.run_due()
        (message,) = await _messages(sessions, tenant)
        # Waiting, not dropped: due again when the quiet hours end, 12:00 Chicago.
        assert message.status == "queued"
        assert message.deferred_until == dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)
        assert await _sandbox(sessions, tenant) == 0
        clock.move_to(dt.datetime(2026, 12, 1, 18, 1, tzinfo=dt.UTC))
        await send_jobs.run_due()
        assert await _sandbox(sessions, tenant) == 1


async def test_a_frequency_cap_counts_every_cadence(
    client, practice, sessions, ticks, send_jobs, make_token
):
    tenant = practice.tenant.id
    cap = {
        "allow_clinical_sms": False,
        "frequency_caps": [{"channel": "sms", "limit": 1, "window_hours": 24}],
    }
    with time_machine.travel(START, tick=False) as clock:
        await _setup(client, sessions, practice, make_token, cap, cadences=2)
        clock.move_to(dt.datetime(2026, 12, 1, 16, 30, tzinfo=dt.UTC))
        await ticks.tick()
        await send_jobs.run_due()
    statuses = sorted((m.status, m.failure_reason) for m in await _messages(sessions, tenant))
    # Two cadences' day 1 texts, one patient, one SMS a day: the second is suppressed.
    assert statuses[1] == ("suppressed", "frequency_cap")
    assert statuses[0][0] in ("sent", "delivered")
    assert await _sandbox(sessions, tenant) == 1
