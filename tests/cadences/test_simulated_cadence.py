"""A whole win-back cadence in simulated time: day 1 text, day 4 email, day 9 text, day
14 call, for patients who book, reply, text STOP, share a household number, or never
answer. Time moves with time-machine; every tick runs the real cron fan-out and the real
job runner, and the sends go through the ledger to the sandbox provider."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import time_machine
from sqlalchemy import select

from api.cadences.models import Enrollment, StepRun
from api.core.db import unit_of_work
from api.messaging import inbound
from api.messaging.models import Message, SandboxMessage
from api.tasks.models import Task
from api.webhooks.models import Event
from tests.cadences.conftest import WINBACK, patient_ids, patient_row, sync

START = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)  # 08:00 in Chicago


def at(day: int, hour: int = 17) -> dt.datetime:
    """`day` 1 is December 1st; 17:00 UTC is 11:00 in Chicago, after the 10:00 send time."""
    return dt.datetime(2026, 12, day, hour, 0, tzinfo=dt.UTC)


PATIENTS = [
    patient_row("quinn", mobile="+15125550101", email="quinn@example.com"),
    patient_row("bella", mobile="+15125550102", email="bella@example.com"),
    patient_row("rory", mobile="+15125550103", email="rory@example.com"),
    patient_row("stella", mobile="+15125550104", email="stella@example.com"),
    patient_row("hana", mobile="+15125550105", email="home@example.com", household_id="H9"),
    patient_row("hugo", mobile="+15125550105", email="home@example.com", household_id="H9"),
    patient_row("nora", mobile="+15125550106", email="nora@example.com", sms_consent=False),
]


async def _status(sessions, tenant_id: str, patient_id: str) -> tuple[str, str | None]:
    async with unit_of_work(sessions, tenant_id) as session:
        stmt = select(Enrollment).where(Enrollment.patient_id == patient_id)
        enrollment = (await session.execute(stmt)).scalar_one()
        return enrollment.status, enrollment.exit_reason


async def _text(sessions, settings, tenant_id: str, sender: str, body: str, sid: str) -> str:
    async with unit_of_work(sessions, tenant_id) as session:
        form = {"From": sender, "Body": body, "MessageSid": sid, "To": "+15125550199"}
        return await inbound.handle_inbound(session, tenant_id, form, settings)


async def test_a_whole_winback_cadence(
    client, practice, sessions, settings, ticks, send_jobs, make_token
):
    tenant, main = practice.tenant.id, practice.locations[0].id
    with time_machine.travel(START, tick=False) as clock:
        await sync(
            sessions,
            tenant,
            main,
            "providers",
            [{"external_id": "DR", "kind": "dentist", "name": "Dr. Wu"}],
        )
        await sync(sessions, tenant, main, "patients", PATIENTS)
        ids = await patient_ids(sessions, tenant)
        names = {v: k for k, v in ids.items()}
        # A token minted in simulated time (the fixture's expired a week ago).
        headers = {"Authorization": f"Bearer {await make_token(tenant, None)}"}
        created = await client.post("/v1/cadences", json=WINBACK, headers=headers)
        assert created.status_code == 201, created.text
        cadence_id = created.json()["id"]
        enrolled = await client.post(
            f"/v1/cadences/{cadence_id}/enrollments",
            json={"patient_ids": list(ids.values())},
            headers=headers,
        )
        assert enrolled.status_code == 200, enrolled.text
        assert len(enrolled.json()["enrolled"]) == 7

        for day in range(1, 32):
            if day == 2:  # rory answers the day 1 text (15:00 UTC, before the tick)
                clock.move_to(at(2, 15))
                assert (
                    await _text(sessions, settings, tenant, "+15125550103", "Is Tuesday ok?", "SM1")
                    == "reply"
                )
                assert await _status(sessions, tenant, ids["rory"]) == ("exited", "replied")
            if day == 6:  # bella books through the front desk; the PMS syncs it
                clock.move_to(at(6, 15))
                await sync(
                    sessions,
                    tenant,
                    main,
                    "appointments",
                    [
                        {
                            "external_id": "A1",
                            "patient_external_id": "bella",
                            "provider_external_id": "DR",
                            "start_at": "2026-12-20T15:00:00Z",
                            "end_at": "2026-12-20T16:00:00Z",
                            "status": "scheduled",
                        }
                    ],
                )
                # Ended the moment the PMS said so, not at the next tick.
                assert await _status(sessions, tenant, ids["bella"]) == ("exited", "booked")
            if day == 7:  # stella texts STOP
                clock.move_to(at(7, 15))
                assert (
                    await _text(sessions, settings, tenant, "+15125550104", "STOP", "SM2") == "stop"
                )
                assert await _status(sessions, tenant, ids["stella"]) == ("exited", "opted_out")
            clock.move_to(at(day))
            await ticks.tick()
            await send_jobs.run_due()

    async with unit_of_work(sessions, tenant) as session:
        runs = list((await session.execute(select(StepRun))).scalars())
        enrollments = {
            names[e.patient_id]: e for e in (await session.execute(select(Enrollment))).scalars()
        }
        by_enrollment = {e.id: name for name, e in enrollments.items()}
        messages = list(
            (
                await session.execute(select(Message).where(Message.source_kind == "cadence"))
            ).scalars()
        )
        sandbox = list((await session.execute(select(SandboxMessage))).scalars())
        tasks = list((await session.execute(select(Task))).scalars())
        events = list(
            (await session.execute(select(Event).where(Event.type.like("cadence.%")))).scalars()
        )

    # Who got which step, on which day of December, with what outcome.
    got: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: (r.ran_at, r.position)):
        got[by_enrollment[run.enrollment_id]].append(
            (run.position, run.ran_at.day, run.channel, run.outcome)
        )
    full = [
        (1, 1, "sms", "sent"),
        (2, 4, "email", "sent"),
        (3, 9, "sms", "sent"),
        (4, 14, "call", "task_created"),
    ]
    assert got["quinn"] == full
    assert got["rory"] == full[:1]
    assert got["bella"] == full[:2]
    assert got["stella"] == full[:2]
    assert got["nora"] == [
        (1, 1, "sms", "suppressed"),
        (2, 4, "email", "sent"),
        (3, 9, "sms", "suppressed"),
        (4, 14, "call", "task_created"),
    ]
    # The household shares one number and address: each step reached it once.
    household = sorted(got["hana"] + got["hugo"])
    assert [(p, d, c) for p, d, c, _ in household] == [
        (p, d, c) for p, d, c, _ in sorted(full + full)
    ]
    for position in (1, 2, 3, 4):
        outcomes = sorted(o for p, _, _, o in household if p == position)
        assert outcomes[0] == "household_covered" and outcomes[1] in ("sent", "task_created")

    # Exits happened the day their cause did, in the middle of a delay, with the reason.
    def ended(name: str) -> tuple[str, str | None, int | None]:
        e = enrollments[name]
        return (
            e.status,
            e.exit_reason,
            (e.exited_at or e.completed_at).day if (e.exited_at or e.completed_at) else None,
        )

    assert ended("rory") == ("exited", "replied", 2)
    assert ended("bella") == ("exited", "booked", 6)
    assert enrollments["bella"].booked_appointment_id is not None
    assert ended("stella") == ("exited", "opted_out", 7)
    # Finished 14 days after the last step, so a late booking would still have counted.
    assert ended("quinn") == ("completed", None, 28)
    assert ended("nora") == ("completed", None, 28)

    # What reached the sandbox provider: exactly the sent steps, nothing twice.
    sent_keys = [(m.source_id, m.channel) for m in messages if m.status != "suppressed"]
    assert (
        len(sent_keys) == len(set(sent_keys)) == 3 + 1 + 2 + 2 + 3 + 1
    )  # quinn, rory, bella, stella, household, nora
    to_household = [s for s in sandbox if s.to_address in ("+15125550105", "home@example.com")]
    assert len(to_household) == 3
    stella_texts = [s for s in sandbox if s.to_address == "+15125550104"]
    assert len(stella_texts) == 2  # the day 1 text and the STOP confirmation, nothing after

    # Call tasks: quinn, nora and one for the household; rory's reply is a task too.
    calls = [names[t.patient_id] for t in tasks if t.kind == "call" and t.patient_id]
    assert sorted(c for c in calls if c not in ("hana", "hugo")) == ["nora", "quinn"]
    assert len([c for c in calls if c in ("hana", "hugo")]) == 1
    assert [t.kind for t in tasks if t.patient_id == ids["rory"]] == ["reply"]

    kinds = defaultdict(int)
    for event in events:
        kinds[event.type] += 1
    assert kinds["cadence.enrolled"] == 7
    assert kinds["cadence.exited"] == 3
    assert kinds["cadence.step_sent"] == len(runs)

    metrics = (
        await client.get(f"/v1/cadences/{cadence_id}/metrics", headers=practice.headers)
    ).json()
    assert metrics["total"] | {"median_days_to_booking": None} == {
        "enrolled": 7,
        "contacted": 7,
        "replied": 1,
        "booked": 1,
        "reactivation_rate": round(1 / 7, 4),
        "opted_out": 1,
        "median_days_to_booking": None,
    }
    # Enrolled Dec 1 08:00, the booking synced Dec 6 09:00 (Chicago): 5 days 1 hour.
    assert metrics["total"]["median_days_to_booking"] == 5.04
