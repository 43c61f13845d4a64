"""The Open Dental connector's ledger, communication log and opt-outs: the family aging on
the guarantor's patient row, commlog, commoptout and patient.TxtMsgOk, mapped into the
mirror, read again incrementally, with deletions, and seen by segments and sends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.ids import new_id
from api.engines.rules import LocationDay, compile_rule, parse_rule
from api.messaging import repository as messaging_repository
from api.practice.models import CommunicationLog, OptOut
from api.segments import repository as segments_repository
from tests.practice.connectors.test_opendental import T0, T1, rows, run, seed

STANDARD, COLLECTIONS = 20, 21
ANA_MOBILE = "+15125550134"
TODAY = dt.date(2026, 11, 23)


def seed_accounts(execute) -> None:
    """On top of `seed`: billing and commlog types, the families' aging, contacts and
    opt-outs. Every UPDATE sets DateTStamp itself (MariaDB would stamp the wall clock)."""
    execute(
        "INSERT INTO definition (DefNum, Category, ItemOrder, ItemName, ItemValue) "
        "VALUES (%s, %s, %s, %s, %s)",
        (STANDARD, 4, 0, "Standard Billing", ""),
        (COLLECTIONS, 4, 1, "Collections", "C"),
        (22, 4, 2, "Excluded from collections", "CE"),
        (30, 27, 0, "Appt Related", "APPT"),
        (31, 27, 1, "Recall", "RECALL"),
        (32, 27, 2, "Statement Sent", ""),
        (33, 27, 3, "Misc", "MISC"),
    )
    # The Rivera family (guarantor Ana, 10) owes 450 of which insurance should pay 100,
    # most of it older than 90 days, and is with a collections agency.
    execute(
        f"UPDATE patient SET BillingType = {COLLECTIONS}, BalTotal = 450, InsEst = 100, "
        f"Bal_0_30 = 50, BalOver90 = 400, DateTStamp = '{T0}' WHERE PatNum = 10"
    )
    execute(
        f"UPDATE patient SET BillingType = {STANDARD}, BalTotal = -25.5, DateTStamp = '{T0}' "
        "WHERE PatNum = 12"
    )
    # Leo (a child of the family) texted STOP from the family's mobile.
    execute(
        "UPDATE patient SET WirelessPhone = '(512) 555-0134', TxtMsgOk = 2, "
        f"DateTStamp = '{T0}' WHERE PatNum = 5"
    )
    execute(
        "INSERT INTO commlog (CommlogNum, PatNum, CommDateTime, CommType, Mode_, "
        "SentOrReceived, CommSource, Note, DateTStamp) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, '', %s)",
        (1, 10, "2026-11-02 10:15:00", 31, 3, 1, 0, T0),  # recall call
        (2, 10, "2026-11-03 18:40:00", 30, 5, 2, 3, T0),  # reply to a reminder text
        (3, 11, "2026-10-01 09:00:00", 32, 1, 0, 0, T0),  # statement by email
        (4, 11, "2026-10-02 09:00:00", 33, 0, 0, 0, T0),  # a note: no channel
        (5, 13, "2026-10-03 09:00:00", 31, 3, 1, 0, T0),  # a deleted patient's
        (6, 12, "2026-10-04 09:00:00", 0, 2, 1, 0, T0),  # a letter, no type
    )
    execute(
        "INSERT INTO commoptout (CommOptOutNum, PatNum, OptOutSms, OptOutEmail) "
        "VALUES (%s, %s, %s, %s)",
        (1, 11, 1, 4),  # Tom: no automated texts at all; no eReminder emails
        (2, 10, 0, 16),  # Ana: no Web Sched Recall emails
        (3, 13, 1, 1),  # a deleted patient
    )


async def run_at(sessions, settings, practice, dsn):
    return await run(sessions, settings, practice.tenant.id, practice.locations[0].id, dsn)


def counts(result, entity: str) -> tuple[int, ...]:
    c = result.entities[entity]
    return (c.received, c.created, c.updated, c.deleted, c.skipped)


async def ledger(sessions) -> list[tuple]:
    found = await rows(
        sessions,
        "SELECT l.external_id, g.external_id AS guarantor, l.balance, l.in_collections, "
        "l.aging_0_30, l.aging_31_60, l.aging_61_90, l.aging_over_90 FROM ledger_balances l "
        "JOIN patients g ON g.id = l.guarantor_id WHERE l.deleted_at IS NULL "
        "ORDER BY l.external_id",
    )
    return [tuple(r.values()) for r in found]


async def communications(sessions) -> list[tuple]:
    found = await rows(
        sessions,
        "SELECT c.external_id, p.external_id AS patient, c.channel, c.direction, "
        "c.contacted_at, c.source, c.kind FROM communication_log c "
        "JOIN patients p ON p.id = c.patient_id WHERE c.deleted_at IS NULL "
        "ORDER BY c.external_id",
    )
    return [tuple(r.values()) for r in found]


async def opt_outs(sessions) -> dict[str, tuple]:
    found = await rows(
        sessions,
        "SELECT o.external_id, p.external_id AS patient, o.channel, o.contact_value, "
        "o.source, o.opted_out_at FROM opt_outs o LEFT JOIN patients p ON p.id = o.patient_id "
        "WHERE o.deleted_at IS NULL",
    )
    return {r["external_id"]: tuple(r.values())[1:] for r in found}


async def segment(sessions, practice, *predicates) -> set[str]:
    """External ids of the location's patients a rule selects, through the rule compiler."""
    location = practice.locations[0]
    compiled = compile_rule(
        parse_rule({"version": 1, "rule": {"all": list(predicates)}}),
        tenant_id=practice.tenant.id,
        locations=[LocationDay(location.id, TODAY, location.timezone)],
    )
    async with unit_of_work(sessions, practice.tenant.id) as session:
        matched = {pid for pid, _ in await segments_repository.matching_patients(session, compiled)}
    people = await rows(sessions, "SELECT id, external_id FROM patients")
    return {r["external_id"] for r in people if r["id"] in matched}


async def test_first_run_maps_ledger_contacts_and_opt_outs(od, practice, sessions, settings):
    dsn, execute = od
    seed(execute)
    seed_accounts(execute)
    before = utcnow()
    result = await run_at(sessions, settings, practice, dsn)

    assert counts(result, "ledger")[:2] == (2, 2)  # the two families' heads
    assert counts(result, "communications") == (4, 4, 0, 0, 1)  # the note is skipped
    assert counts(result, "opt-outs")[:2] == (4, 4)

    zero = Decimal("0.00")
    assert await ledger(sessions) == [
        ("10", "10", Decimal("350.00"), True, Decimal("50.00"), zero, zero, Decimal("400.00")),
        ("12", "12", Decimal("-25.50"), False, zero, zero, zero, zero),
    ]
    # CommDateTime is Chicago wall-clock time (CST after 1 November 2026, CDT before).
    assert await communications(sessions) == [
        ("commlog:1", "10", "phone", "outbound", dt.datetime(2026, 11, 2, 16, 15, tzinfo=dt.UTC),
         "opendental", "recall"),
        ("commlog:2", "10", "sms", "inbound", dt.datetime(2026, 11, 4, 0, 40, tzinfo=dt.UTC),
         "opendental_reminder", "appointment"),
        ("commlog:3", "11", "email", "outbound", dt.datetime(2026, 10, 1, 14, 0, tzinfo=dt.UTC),
         "opendental", "statement_sent"),
        ("commlog:6", "12", "letter", "outbound", dt.datetime(2026, 10, 4, 14, 0, tzinfo=dt.UTC),
         "opendental", None),
    ]  # fmt: skip
    found = await opt_outs(sessions)
    assert {k: v[:4] for k, v in found.items()} == {
        "commoptout:1:sms": ("11", "sms", None, "opendental"),  # Tom has no mobile on file
        "commoptout:2:email": ("10", "email", "Ana.Rivera@example.com", "opendental"),
        "txtmsgok:11": ("11", "sms", None, "opendental"),
        "txtmsgok:5": ("5", "sms", ANA_MOBILE, "opendental"),
    }
    # Open Dental keeps no time for these: the run that first saw them stands in.
    assert all(before <= v[4] <= utcnow() for v in found.values())

    # What segments and sends see.
    owes = {"field": "balance", "op": "gt", "value": 300}
    assert await segment(sessions, practice, owes) == {"5", "10", "11"}  # via the guarantor
    collections = {"field": "in_collections", "op": "is", "value": True}
    assert await segment(sessions, practice, collections) == {"5", "10", "11"}
    recall_call = {"field": "contacted", "op": "exists", "value": {"kinds": ["recall"]}}
    assert await segment(sessions, practice, recall_call) == {"10"}
    patients = {r["external_id"]: r["id"] for r in await rows(sessions, "SELECT * FROM patients")}
    async with unit_of_work(sessions, practice.tenant.id) as session:
        # Ana said yes to texts, but her number texted STOP (Leo's record): no texts to it.
        assert await messaging_repository.is_opted_out(
            session, practice.tenant.id, "sms", patients["10"], ANA_MOBILE
        )
        assert await messaging_repository.is_opted_out(
            session, practice.tenant.id, "email", patients["10"], "ana.rivera@example.com"
        )
        assert not await messaging_repository.is_opted_out(
            session, practice.tenant.id, "email", patients["11"], "tom@example.com"
        )


async def add_chairfill_records(sessions, practice) -> None:
    """A STOP and a sent text Chairfill recorded itself at the location."""
    tenant, location = practice.tenant.id, practice.locations[0].id
    patient = (await rows(sessions, "SELECT id FROM patients WHERE external_id = '12'"))[0]["id"]
    now = utcnow()
    async with unit_of_work(sessions, tenant) as session:
        session.add(
            OptOut(
                tenant_id=tenant, id=new_id("opt_out"), location_id=location,
                external_id="chairfill:stop-1", patient_id=patient, contact_value="+15125550199",
                channel="sms", opted_out_at=now, source="sms_reply", updated_at=now,
            )
        )  # fmt: skip
        session.add(
            CommunicationLog(
                tenant_id=tenant, id=new_id("communication"), location_id=location,
                external_id="chairfill:msg-1", patient_id=patient, channel="sms",
                direction="outbound", contacted_at=now, source="chairfill", updated_at=now,
            )
        )  # fmt: skip


async def test_changes_and_deletions_are_read_incrementally(od, practice, sessions, settings):
    dsn, execute = od
    seed(execute)
    seed_accounts(execute)
    await run_at(sessions, settings, practice, dsn)
    first_opt_outs = await opt_outs(sessions)
    await add_chairfill_records(sessions, practice)

    # The Riveras paid what they owed themselves and left collections; Wei joined their
    # family (so heads none); a reminder reply was deleted without a trace; the statement
    # turned out to be a phone call; a new call to Wei; Tom's blanket text opt-out was
    # removed and Ana now only refuses eConfirmations; Leo's number may be texted again.
    execute(
        f"UPDATE patient SET BalTotal = 100, InsEst = 100, Bal_0_30 = 0, BalOver90 = 100, "
        f"BillingType = {STANDARD}, DateTStamp = '{T1}' WHERE PatNum = 10"
    )
    execute(f"UPDATE patient SET Guarantor = 10, DateTStamp = '{T1}' WHERE PatNum = 12")
    execute("DELETE FROM commlog WHERE CommlogNum = 2")
    execute(f"UPDATE commlog SET Mode_ = 3, DateTStamp = '{T1}' WHERE CommlogNum = 3")
    execute(
        "INSERT INTO commlog (CommlogNum, PatNum, CommDateTime, CommType, Mode_, "
        f"SentOrReceived, Note, DateTStamp) VALUES (7, 12, '2026-11-20 11:00:00', 31, 3, 1, "
        f"'', '{T1}')"
    )
    execute("DELETE FROM commoptout WHERE CommOptOutNum = 1")
    execute("UPDATE commoptout SET OptOutEmail = 2 WHERE CommOptOutNum = 2")
    execute(f"UPDATE patient SET TxtMsgOk = 1, DateTStamp = '{T1}' WHERE PatNum = 5")
    result = await run_at(sessions, settings, practice, dsn)

    assert result.cursors["ledger"] == f"{T1} collections={COLLECTIONS}"
    assert result.cursors["communications"] == T1
    assert result.cursors["opt-outs"] == T1
    assert counts(result, "ledger")[2:4] == (1, 1)
    zero = Decimal("0.00")
    assert await ledger(sessions) == [
        ("10", "10", zero, False, zero, zero, zero, Decimal("100.00")),
    ]
    assert counts(result, "communications")[1:4] == (1, 1, 1)
    assert [(c[0], c[1], c[2]) for c in await communications(sessions)] == [
        ("chairfill:msg-1", "12", "sms"),  # not Open Dental's: outside its key comparison
        ("commlog:1", "10", "phone"),
        ("commlog:3", "11", "phone"),
        ("commlog:6", "12", "letter"),
        ("commlog:7", "12", "phone"),
    ]
    assert counts(result, "opt-outs")[3] == 3
    now_opted = await opt_outs(sessions)
    assert set(now_opted) == {"chairfill:stop-1", "txtmsgok:11"}
    # Tom's TxtMsgOk opt-out was read again (his row is within the stamp overlap) but
    # keeps the time it was first seen.
    assert now_opted["txtmsgok:11"] == first_opt_outs["txtmsgok:11"]

    collections = {"field": "in_collections", "op": "is", "value": True}
    assert await segment(sessions, practice, collections) == set()
    owes = {"field": "balance", "op": "gt", "value": 0}
    assert await segment(sessions, practice, owes) == set()

    # Nothing changed since: what is read again writes nothing.
    again = await run_at(sessions, settings, practice, dsn)
    for entity in ("ledger", "communications", "opt-outs"):
        assert counts(again, entity)[1:4] == (0, 0, 0), entity
    assert await opt_outs(sessions) == now_opted

    # Ana refuses all automated email again: the opt-out is back, seen anew.
    execute("UPDATE commoptout SET OptOutEmail = 1 WHERE CommOptOutNum = 2")
    third = await run_at(sessions, settings, practice, dsn)
    assert sum(counts(third, "opt-outs")[1:3]) == 1
    latest = await opt_outs(sessions)
    assert latest["commoptout:2:email"][4] > first_opt_outs["commoptout:2:email"][4]


async def test_a_billing_type_marked_collections_later_reaches_every_family(
    od, practice, sessions, settings
):
    dsn, execute = od
    seed(execute)
    seed_accounts(execute)
    await run_at(sessions, settings, practice, dsn)
    execute(f"UPDATE patient SET Preferred = 'Annie', DateTStamp = '{T1}' WHERE PatNum = 10")
    await run_at(sessions, settings, practice, dsn)
    quiet = await run_at(sessions, settings, practice, dsn)
    assert counts(quiet, "ledger")[0] == 1  # only Ana's row is recent enough to read again
    assert [(r[0], r[3]) for r in await ledger(sessions)] == [("10", True), ("12", False)]

    # Only the definition changes, and it has no stamp: every family is read again.
    execute(f"UPDATE definition SET ItemValue = 'c' WHERE DefNum = {STANDARD}")
    result = await run_at(sessions, settings, practice, dsn)
    assert counts(result, "ledger")[:3] == (2, 0, 1)
    assert [(r[0], r[3]) for r in await ledger(sessions)] == [("10", True), ("12", True)]
    assert result.cursors["ledger"] == f"{T1} collections={STANDARD},{COLLECTIONS}"

    execute(f"UPDATE definition SET ItemValue = '' WHERE DefNum = {COLLECTIONS}")
    await run_at(sessions, settings, practice, dsn)
    assert [(r[0], r[3]) for r in await ledger(sessions)] == [("10", False), ("12", True)]
