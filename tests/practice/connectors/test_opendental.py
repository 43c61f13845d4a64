from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import text

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.jobs import TASKS
from api.core.settings import Settings
from api.practice.connectors import opendental_rows, service

T0 = "2026-01-01 08:00:00"
T1 = "2026-01-01 09:00:00"
SIX_MONTHS, THREE_MONTHS = 6 << 16, 3 << 16


def seed(execute) -> None:
    execute(
        "INSERT INTO provider (ProvNum, Abbr, FName, LName, IsSecondary, IsHidden, DateTStamp) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (1, "DOC1", "Maria", "Lopez", 0, 0, T0),
        (2, "HYG1", "Sam", "Okafor", 1, 0, T0),
    )
    execute(
        "INSERT INTO operatory (OperatoryNum, OpName, IsHidden) VALUES (%s, %s, %s)",
        (1, "Op 1", 0),
        (2, "Hyg 1", 0),
    )
    execute(
        "INSERT INTO appointmenttype (AppointmentTypeNum, AppointmentTypeName, Pattern) "
        "VALUES (%s, %s, %s)",
        (1, "Prophy", "//XXXXXX////"),
    )
    patients = [
        # PatNum, LName, FName, PatStatus, Email, WirelessPhone, Pref, TxtMsgOk, Guarantor
        (5, "Rivera", "Leo", 0, "", "", 0, 0, 10),  # a child, guarantor has a higher PatNum
        (10, "Rivera", "Ana", 0, "Ana.Rivera@Example.COM", "(512) 555-0134", 8, 1, 10),
        (11, "Rivera", "Tom", 0, "tom@example.com", "", 5, 2, 10),
        (12, "Chen", "Wei", 2, "not-an-email", "12", 0, 0, 12),
        (13, "Gone", "Deleted", 4, "", "", 0, 0, 13),
    ]
    execute(
        "INSERT INTO patient (PatNum, LName, FName, PatStatus, Email, WirelessPhone, "
        "PreferContactMethod, TxtMsgOk, Guarantor, PriProv, Birthdate, DateFirstVisit, "
        "DateTStamp) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, '1985-04-12', "
        "'2019-03-01', %s)",
        *[(*p, T0) for p in patients],
    )
    execute(
        "INSERT INTO recalltype (RecallTypeNum, Description) VALUES (%s, %s)",
        (1, "Prophy"),
        (2, "Perio Maintenance"),
    )
    execute(
        "INSERT INTO recall (RecallNum, PatNum, RecallTypeNum, DateDue, RecallInterval, "
        "IsDisabled, DateTStamp) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (1, 10, 1, "2026-11-20", SIX_MONTHS, 0, T0),
        (2, 11, 2, "2026-12-01", THREE_MONTHS, 0, T0),
        (3, 12, 1, "0001-01-01", SIX_MONTHS, 1, T0),
    )
    execute(
        "INSERT INTO appointment (AptNum, PatNum, AptStatus, Pattern, Op, ProvNum, ProvHyg, "
        "IsHygiene, AptDateTime, AppointmentTypeNum, DateTStamp) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (100, 10, 1, "//XXXXXX////", 2, 1, 2, 1, "2026-11-24 09:00:00", 1, T0),
        (101, 10, 2, "XXXXXX", 1, 1, 0, 0, "2026-05-20 14:30:00", 0, T0),
        (102, 11, 6, "XXXX", 0, 1, 0, 0, "0001-01-01 00:00:00", 0, T0),
        (103, 11, 5, "XXXXXX", 1, 1, 0, 0, "2026-10-02 10:00:00", 0, T0),
    )
    execute(
        "INSERT INTO procedurecode (CodeNum, ProcCode, Descript) VALUES (%s, %s, %s)",
        (1, "D1110", "Prophylaxis - adult"),
        (2, "D2740", "Crown - porcelain/ceramic"),
        (3, "~GRP~", "Group Note"),
    )
    execute(
        "INSERT INTO treatplan (TreatPlanNum, PatNum, DateTP, Heading, TPStatus, SecDateTEdit) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (1, 10, "2026-05-20", "Active Treatment Plan", 1, T0),
    )
    execute("INSERT INTO treatplanattach (TreatPlanNum, ProcNum) VALUES (1, 201)")
    execute(
        "INSERT INTO procedurelog (ProcNum, PatNum, AptNum, ProcDate, ProcFee, ToothNum, Surf, "
        "ProcStatus, ProvNum, CodeNum, DateTP, DateTStamp) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (200, 10, 101, "2026-05-20", 95.0, "", "", 2, 2, 1, "2026-05-20", T0),
        (201, 10, 0, "2026-05-20", 1200.0, "30", "", 1, 1, 2, "2026-05-20", T0),
        (202, 10, 101, "2026-05-20", 0.0, "", "", 2, 1, 3, "0001-01-01", T0),
        (203, 11, 0, "2026-05-20", 150.0, "", "", 6, 1, 1, "0001-01-01", T0),
    )
    execute(
        "INSERT INTO schedule (ScheduleNum, SchedDate, StartTime, StopTime, SchedType, ProvNum, "
        "DateTStamp) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (1, "2026-11-24", "08:00:00", "17:00:00", 1, 1, T0),
        (2, "2026-11-24", "12:00:00", "13:00:00", 2, 0, T0),
        (3, "2026-11-25", "00:00:00", "00:00:00", 0, 0, T0),
    )
    execute("INSERT INTO scheduleop (ScheduleNum, OperatoryNum) VALUES (2, 2), (2, 1)")


async def run(sessions, settings: Settings, tenant_id: str, location_id: str, dsn: str | None):
    async with unit_of_work(sessions, tenant_id) as session:
        return await service.sync_opendental_location(
            session,
            tenant_id=tenant_id,
            location_id=location_id,
            now=utcnow(),
            secret_key=settings.secret_key,
            dsn=dsn,
        )


async def rows(sessions, sql: str, **params):
    async with sessions() as session:
        return [dict(r._mapping) for r in await session.execute(text(sql), params)]


@pytest.fixture
def small_pages(monkeypatch):
    # Pages of two rows, so paging and the family boundary are exercised too.
    monkeypatch.setattr(service, "OpenDentalConnector", _small_page_connector())


def _small_page_connector():
    from api.practice.connectors.opendental import OpenDentalConnector

    class SmallPages(OpenDentalConnector):
        def __init__(self, dsn, **kw):
            super().__init__(dsn, page_rows=2, **kw)

    return SmallPages


async def test_first_run_mirrors_open_dental(od, practice, sessions, settings, small_pages):
    dsn, execute = od
    seed(execute)
    location = practice.locations[0].id
    result = await run(sessions, settings, practice.tenant.id, location, dsn)

    counts = {
        name: (c.created, c.skipped, c.contacts_dropped) for name, c in result.entities.items()
    }
    assert counts["patients"] == (4, 0, 2)
    assert counts["procedures"] == (2, 1, 0)
    assert result.cursors["patients"] == T0

    patients = {
        r["external_id"]: r
        for r in await rows(
            sessions,
            "SELECT p.*, g.external_id AS g FROM patients p "
            "LEFT JOIN patients g ON g.id = p.guarantor_id",
        )
    }
    assert sorted(patients) == ["10", "11", "12", "5"]
    ana = patients["10"]
    assert (ana["mobile"], ana["email"], ana["communication_preference"]) == (
        "+15125550134",
        "Ana.Rivera@example.com",
        "sms",
    )
    assert (ana["sms_consent"], ana["last_visit_date"]) == (True, dt.date(2026, 5, 20))
    assert (patients["5"]["g"], patients["5"]["household_id"]) == ("10", "10")
    assert patients["11"]["communication_preference"] == "email"
    assert patients["11"]["sms_consent"] is False
    wei = patients["12"]
    assert (wei["status"], wei["mobile"], wei["email"]) == ("inactive", None, None)

    appointments = {
        r["external_id"]: r
        for r in await rows(
            sessions,
            "SELECT a.*, p.kind FROM appointments a JOIN providers p ON p.id = a.provider_id",
        )
    }
    assert sorted(appointments) == ["100", "101", "103"]
    hygiene = appointments["100"]
    # 09:00 in Chicago (CST) is 15:00 UTC; twelve Pattern characters are an hour.
    assert hygiene["start_at"] == dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    assert hygiene["end_at"] - hygiene["start_at"] == dt.timedelta(hours=1)
    assert (hygiene["status"], hygiene["kind"]) == ("scheduled", "hygienist")
    assert (appointments["101"]["status"], appointments["103"]["status"]) == ("completed", "broken")

    recalls = await rows(
        sessions,
        "SELECT external_id, recall_type, interval_months, due_date, "
        "disabled FROM recalls ORDER BY external_id",
    )
    assert [tuple(r.values()) for r in recalls] == [
        ("1", "prophy", 6, dt.date(2026, 11, 20), False),
        ("2", "perio", 3, dt.date(2026, 12, 1), False),
        ("3", "prophy", 6, None, True),
    ]
    procedures = await rows(
        sessions,
        "SELECT p.external_id, p.code, p.status, p.fee, p.tooth, "
        "t.name FROM procedures p LEFT JOIN treatment_plans t "
        "ON t.id = p.treatment_plan_id ORDER BY p.external_id",
    )
    assert [tuple(r.values()) for r in procedures] == [
        ("200", "D1110", "completed", Decimal("95.00"), None, None),
        ("201", "D2740", "proposed", Decimal("1200.00"), "30", "Active Treatment Plan"),
    ]
    schedules = await rows(
        sessions,
        "SELECT external_id, kind, start_time, start_at FROM schedule_entries ORDER BY external_id",
    )
    assert [(r["external_id"], r["kind"]) for r in schedules] == [
        ("1", "exception"),
        ("2", "block"),
    ]
    assert schedules[1]["start_at"] == dt.datetime(2026, 11, 24, 18, 0, tzinfo=dt.UTC)
    state = await rows(sessions, "SELECT data_as_of FROM location_sync_states")
    assert state[0]["data_as_of"] is not None


async def test_second_run_is_incremental_with_tombstones(od, practice, sessions, settings):
    dsn, execute = od
    seed(execute)
    tenant, location = practice.tenant.id, practice.locations[0].id
    await run(sessions, settings, tenant, location, dsn)

    execute(f"UPDATE patient SET LName = 'Nguyen', DateTStamp = '{T1}' WHERE PatNum = 11")
    execute("DELETE FROM appointment WHERE AptNum = 103")
    execute(
        f"INSERT INTO deletedobject (ObjectNum, ObjectType, DateTStamp) VALUES (103, 0, '{T1}')"
    )
    execute("DELETE FROM recall WHERE RecallNum = 2")
    execute(f"UPDATE procedurelog SET ProcStatus = 6, DateTStamp = '{T1}' WHERE ProcNum = 201")
    execute(
        "INSERT INTO procedurelog (ProcNum, PatNum, ProcDate, ProcFee, ProcStatus, ProvNum, "
        f"CodeNum, DateTStamp) VALUES (204, 12, '2026-11-02', 95, 2, 2, 1, '{T1}')"
    )
    result = await run(sessions, settings, tenant, location, dsn)

    got = {n: (c.received, c.created, c.updated, c.deleted) for n, c in result.entities.items()}
    # Rows stamped within a minute of the cursor are read again (see STAMP_OVERLAP) and
    # written only when changed: Tom was renamed, Wei had a procedure completed.
    assert got["patients"] == (4, 0, 2, 0)
    assert got["appointments"][3] == 1
    assert got["recalls"][3] == 1
    assert got["procedures"][1:] == (1, 0, 1)
    assert result.cursors["patients"] == T1

    # Nothing changed since: only rows stamped at the new cursor are read again.
    again = await run(sessions, settings, tenant, location, dsn)
    got = {n: (c.received, c.updated, c.deleted) for n, c in again.entities.items()}
    assert got["patients"] == (2, 0, 0)
    assert got["appointments"] == (0, 0, 0)
    assert got["procedures"] == (1, 0, 0)

    live = await rows(
        sessions,
        "SELECT external_id FROM appointments WHERE deleted_at IS NULL ORDER BY external_id",
    )
    assert [r["external_id"] for r in live] == ["100", "101"]
    tombstones = await rows(
        sessions,
        "SELECT 'r' || external_id AS x FROM recalls WHERE "
        "deleted_at IS NOT NULL UNION ALL SELECT 'p' || external_id FROM "
        "procedures WHERE deleted_at IS NOT NULL ORDER BY 1",
    )
    assert [r["x"] for r in tombstones] == ["p201", "r2"]
    people = await rows(
        sessions,
        "SELECT external_id, last_name, last_visit_date FROM patients "
        "WHERE external_id IN ('11', '12') ORDER BY external_id",
    )
    assert [tuple(r.values()) for r in people] == [
        ("11", "Nguyen", None),
        ("12", "Chen", dt.date(2026, 11, 2)),
    ]


async def test_scheduled_sync_uses_the_encrypted_dsn(od, practice, sessions, settings, run_burst):
    dsn, execute = od
    seed(execute)
    tenant, location = practice.tenant.id, practice.locations[0].id
    async with unit_of_work(sessions, tenant) as session:
        await service.save_opendental_config(
            session, tenant_id=tenant, location_id=location, dsn=dsn, secret_key=settings.secret_key
        )
    stored = await rows(sessions, "SELECT dsn_ciphertext FROM connector_configs")
    assert "127.0.0.1" not in stored[0]["dsn_ciphertext"]

    assert TASKS[service.SYNC_TASK] == "sync"
    async with unit_of_work(sessions) as session:
        assert await service.enqueue_due_syncs(session, utcnow()) == 1
    async with unit_of_work(sessions) as session:
        # Same slot: nothing more is enqueued.
        assert await service.enqueue_due_syncs(session, utcnow()) == 0
    assert await run_burst("sync") == 1

    jobs = await rows(sessions, "SELECT status, last_error FROM jobs")
    assert jobs == [{"status": "done", "last_error": None}]
    config = await rows(sessions, "SELECT cursors, last_run_at FROM connector_configs")
    assert config[0]["cursors"]["appointments"] == T0
    mirrored = await rows(sessions, "SELECT count(*) AS n FROM patients")
    assert mirrored[0]["n"] == 4


def test_recall_intervals_and_types_follow_open_dental():
    assert opendental_rows.interval_months(SIX_MONTHS) == 6
    assert opendental_rows.interval_months((1 << 24) | (0 << 16)) == 12
    assert opendental_rows.interval_months(2 << 8) is None  # two weeks: not a month interval
    assert opendental_rows.recall_type("Perio Maintenance") == "perio"
    assert opendental_rows.recall_type("4BW") == "4bw"
