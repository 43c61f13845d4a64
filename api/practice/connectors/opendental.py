"""Open Dental, read straight from its MySQL/MariaDB database (pymysql, in a thread).

One run reads inside one consistent snapshot (`START TRANSACTION WITH CONSISTENT
SNAPSHOT`), so rows that reference each other agree. Changes are found by each table's
`DateTStamp` (`SecDateTEdit` for treatplan); the cursor is the newest stamp seen, and the
next run reads from a minute before it, because a row stamped before our snapshot may
commit after it. Re-reading a row is harmless: an unchanged upsert writes nothing.

What feeds each mirror entity:
  providers          provider
  operatories        operatory (all of it each run: no stamp)
  appointment-types  appointmenttype (all of it each run: no stamp)
  patients           patient (+ the last completed procedure's date)
  schedules          schedule + scheduleop (provider hours, blockouts)
  appointments       appointment, deletions from deletedobject
  recalls            recall + recalltype
  treatment-plans    treatplan
  procedures         procedurelog + procedurecode + treatplanattach
  ledger             the guarantor's patient row: BalTotal - InsEst, Bal_0_30, Bal_31_60,
                     Bal_61_90, BalOver90; in collections when the family's BillingType is
                     the definition (Category 4) whose ItemValue is "C"
  communications     commlog (Mode_ email/mail/phone/text, SentOrReceived, CommDateTime,
                     the commlog type's usage or name as the kind); notes and in-person
                     entries are skipped
  opt-outs           commoptout (OptOutSms / OptOutEmail flags All, WebSchedRecall or
                     WebSchedASAP -> an sms / email opt-out) and patient.TxtMsgOk = No
                     (-> an sms opt-out), each with the patient's mobile or email

Deletions: appointments through `deletedobject` (ObjectType 0), patients and procedures
through their status (PatStatus 4, ProcStatus 6); tables whose rows are deleted without a
trace (operatory, appointmenttype, schedule, recall, treatplan, commlog, commoptout) by
comparing keys; a ledger row goes when its patient stops heading a family (or is
deleted), an sms opt-out from TxtMsgOk when the answer is no longer No. Rows of patients
Open Dental marked deleted are not mirrored. The ledger and TxtMsgOk are read
incrementally by the patient's DateTStamp; commlog by its own; commoptout, which has no
stamp, whole each run. Mapping of each record: opendental_rows.py; the tables and where
their names were checked: opendental_schema.py."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import pymysql
import pymysql.cursors

from api.practice.connectors import opendental_rows as od
from api.practice.connectors.base import BATCH_ROWS, ConnectorBatch

Row = od.Row
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# A row stamped before our snapshot may commit after it: read again from a minute earlier.
STAMP_OVERLAP = dt.timedelta(minutes=1)
DELETED_APPOINTMENT = 0  # deletedobject.ObjectType

PATIENTS = (
    "SELECT p.PatNum AS k, p.LName, p.FName, p.Preferred, p.Birthdate, p.PatStatus, p.Email, "
    "p.WirelessPhone, p.PreferContactMethod, p.TxtMsgOk, p.Guarantor, "
    "g.PatStatus AS GuarantorStatus, p.PriProv, p.DateFirstVisit, p.DateTStamp AS stamp, "
    "(SELECT MAX(pl.ProcDate) FROM procedurelog pl WHERE pl.PatNum = p.PatNum "
    "AND pl.ProcStatus = 2) AS LastVisit "
    "FROM patient p LEFT JOIN patient g ON g.PatNum = p.Guarantor"
)
SCHEDULES = (
    "SELECT s.ScheduleNum AS k, s.SchedDate, s.StartTime, s.StopTime, s.SchedType, s.ProvNum, "
    "s.DateTStamp AS stamp, (SELECT MIN(so.OperatoryNum) FROM scheduleop so "
    "WHERE so.ScheduleNum = s.ScheduleNum) AS OpNum FROM schedule s"
)
APPOINTMENTS = (
    "SELECT AptNum AS k, PatNum, AptStatus, Pattern, Op, ProvNum, ProvHyg, IsHygiene, "
    "AptDateTime, AppointmentTypeNum, DateTStamp AS stamp FROM appointment"
)
DELETED_APPOINTMENTS = (
    "SELECT DeletedObjectNum AS k, ObjectNum, DateTStamp AS stamp FROM deletedobject "
    f"WHERE ObjectType = {DELETED_APPOINTMENT} AND"
)
RECALLS = (
    "SELECT r.RecallNum AS k, r.PatNum, r.DateDue, r.RecallInterval, r.IsDisabled, "
    "rt.Description, r.DateTStamp AS stamp FROM recall r "
    "LEFT JOIN recalltype rt ON rt.RecallTypeNum = r.RecallTypeNum"
)
TREATMENT_PLANS = (
    "SELECT TreatPlanNum AS k, PatNum, DateTP, Heading, TPStatus, SecDateTEdit AS stamp "
    "FROM treatplan"
)
PROCEDURES = (
    "SELECT pl.ProcNum AS k, pl.PatNum, pl.AptNum, pl.ProcDate, pl.ProcFee, pl.Surf, "
    "pl.ToothNum, pl.ProcStatus, pl.ProvNum, pl.DateTP, pl.DateTStamp AS stamp, "
    "pc.ProcCode, pc.Descript, (SELECT tpa.TreatPlanNum FROM treatplanattach tpa "
    "JOIN treatplan tp ON tp.TreatPlanNum = tpa.TreatPlanNum "
    "WHERE tpa.ProcNum = pl.ProcNum "
    "ORDER BY tp.TPStatus = 1 DESC, tpa.TreatPlanNum DESC LIMIT 1) AS TreatPlanNum "
    "FROM procedurelog pl LEFT JOIN procedurecode pc ON pc.CodeNum = pl.CodeNum"
)


# Ledger: the guarantor's aging columns (the whole family's, kept on the guarantor's row).
LEDGER = (
    "SELECT PatNum AS k, Guarantor, PatStatus, BillingType, BalTotal, InsEst, Bal_0_30, "
    "Bal_31_60, Bal_61_90, BalOver90, DateTStamp AS stamp FROM patient"
)
COLLECTION_BILLING_TYPES = (
    f"SELECT DefNum FROM definition WHERE Category = {od.DEF_BILLING_TYPES} "
    f"AND LOWER(TRIM(ItemValue)) = '{od.COLLECTIONS_ITEM_VALUE}'"
)
# In the cursor after the stamp: the collections billing types it was read with.
LEDGER_COLLECTIONS = " collections="
COMMUNICATIONS = (
    "SELECT c.CommlogNum AS k, c.PatNum, c.CommDateTime, c.Mode_, c.SentOrReceived, "
    "c.CommSource, d.ItemName AS TypeName, d.ItemValue AS TypeUsage, p.PatStatus, "
    "c.DateTStamp AS stamp FROM commlog c LEFT JOIN definition d ON d.DefNum = c.CommType "
    "LEFT JOIN patient p ON p.PatNum = c.PatNum"
)
COMM_OPT_OUTS = (
    "SELECT o.CommOptOutNum AS k, o.PatNum, o.OptOutSms, o.OptOutEmail, p.PatStatus, "
    "p.WirelessPhone, p.Email FROM commoptout o LEFT JOIN patient p ON p.PatNum = o.PatNum"
)
TEXT_OPT_OUTS = (
    "SELECT PatNum AS k, PatStatus, TxtMsgOk, WirelessPhone, DateTStamp AS stamp FROM patient"
)
OPTED_OUT_AT = "opted_out_at"


def connect_kwargs(dsn: str) -> dict[str, Any]:
    """`mysql://user:password@host:3306/database` -> pymysql.connect arguments."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql") or not parts.path.strip("/"):
        raise ValueError("an Open Dental DSN looks like mysql://user:password@host:3306/opendental")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": parts.path.strip("/"),
        "charset": "utf8mb4",
        "cursorclass": pymysql.cursors.DictCursor,
        "connect_timeout": 10,
        "autocommit": False,
    }


def _since_clause(stamp: str, since: str | None) -> tuple[str, list[Any]]:
    if since is None:
        return "1 = 1", []
    return f"{stamp} >= %s", [dt.datetime.strptime(since, STAMP_FORMAT) - STAMP_OVERLAP]


def _cursor(rows: list[Row], since: str | None) -> str | None:
    """The newest stamp of `rows` when newer than `since` (None: the cursor stays)."""
    stamps = [r["stamp"] for r in rows if isinstance(r.get("stamp"), dt.datetime)]
    newest = max(stamps).strftime(STAMP_FORMAT) if stamps else None
    return newest if newest and (since is None or newest > since) else None


class OpenDentalConnector:
    kind = "opendental"
    entities: tuple[str, ...] = (
        "providers",
        "operatories",
        "appointment-types",
        "patients",
        "schedules",
        "appointments",
        "recalls",
        "treatment-plans",
        "procedures",
        "ledger",
        "communications",
        "opt-outs",
    )

    def __init__(
        self, dsn: str, *, timezone: str, region: str = "US", page_rows: int = BATCH_ROWS
    ) -> None:
        self._kwargs = connect_kwargs(dsn)
        self._zone = ZoneInfo(timezone)
        self._region = region
        self._page_rows = page_rows
        self._connection: pymysql.connections.Connection | None = None

    async def __aenter__(self) -> OpenDentalConnector:
        def _open() -> pymysql.connections.Connection:
            connection = pymysql.connect(**self._kwargs)
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            return connection

        self._connection = await asyncio.to_thread(_open)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await asyncio.to_thread(connection.close)

    async def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        if self._connection is None:
            raise RuntimeError("use `async with OpenDentalConnector(...)`")
        connection = self._connection

        def _run() -> list[Row]:
            with connection.cursor() as cursor:
                cursor.execute(sql, tuple(params))
                return list(cursor.fetchall())

        return await asyncio.to_thread(_run)

    def pull(self, entity: str, since: str | None) -> AsyncIterator[ConnectorBatch]:
        zone = self._zone
        if entity == "providers":
            select = (
                "SELECT ProvNum AS k, Abbr, FName, LName, IsSecondary, IsHidden, "
                "DateTStamp AS stamp FROM provider"
            )
            return self._mapped(entity, select, "ProvNum", "DateTStamp", since, od.provider)
        if entity == "operatories":
            select = "SELECT OperatoryNum AS k, OpName, IsHidden FROM operatory"
            return self._full(entity, select, "OperatoryNum", od.operatory)
        if entity == "appointment-types":
            select = (
                "SELECT AppointmentTypeNum AS k, AppointmentTypeName, Pattern FROM appointmenttype"
            )
            return self._full(entity, select, "AppointmentTypeNum", od.appointment_type)
        if entity == "patients":
            return self._patients(since)
        if entity == "schedules":
            return self._mapped(
                entity, SCHEDULES, "s.ScheduleNum", "s.DateTStamp", since,
                lambda r: od.schedule(r, zone), keys=("schedule", "ScheduleNum"),
            )  # fmt: skip
        if entity == "appointments":
            return self._appointments(since)
        if entity == "recalls":
            return self._mapped(
                entity, RECALLS, "r.RecallNum", "r.DateTStamp", since, od.recall,
                keys=("recall", "RecallNum"),
            )  # fmt: skip
        if entity == "treatment-plans":
            return self._mapped(
                entity, TREATMENT_PLANS, "TreatPlanNum", "SecDateTEdit", since,
                od.treatment_plan, keys=("treatplan", "TreatPlanNum"),
            )  # fmt: skip
        if entity == "procedures":
            return self._mapped(
                entity, PROCEDURES, "pl.ProcNum", "pl.DateTStamp", since,
                lambda r, batch: od.procedure(r, batch), with_batch=True,
            )  # fmt: skip
        if entity == "ledger":
            return self._ledger(since)
        if entity == "communications":
            return self._mapped(
                entity, COMMUNICATIONS, "c.CommlogNum", "c.DateTStamp", since,
                lambda r, batch: od.communication(r, batch, zone), with_batch=True,
                keys=("commlog", "CommlogNum"), prefix=od.COMMLOG_ID,
            )  # fmt: skip
        if entity == "opt-outs":
            return self._opt_outs(since)
        raise KeyError(f"the Open Dental connector does not feed {entity!r}")

    async def _pages(
        self, select: str, key: str, stamp: str, since: str | None
    ) -> AsyncIterator[list[Row]]:
        """`select` (aliasing `key` as k, `stamp` as stamp) page by page in key order, only
        rows stamped since `since` when given."""
        where, params = _since_clause(stamp, since)
        joiner = " " if select.endswith(" AND") else " WHERE "
        last = -1
        while True:
            rows = await self._query(
                f"{select}{joiner}{where} AND {key} > %s ORDER BY {key} LIMIT {self._page_rows}",
                [*params, last],
            )
            if rows:
                yield rows
            if len(rows) < self._page_rows:
                return
            last = rows[-1]["k"]

    async def _mapped(
        self,
        entity: str,
        select: str,
        key: str,
        stamp: str,
        since: str | None,
        to_row: Callable[..., Row | None],
        *,
        keys: tuple[str, str] | None = None,
        with_batch: bool = False,
        prefix: str = "",
        first_seen: str | None = None,
    ) -> AsyncIterator[ConnectorBatch]:
        """`prefix` starts the mirror's external id of each record (and scopes the key
        comparison of `keys`); `first_seen` as in ConnectorBatch."""
        async for page in self._pages(select, key, stamp, since):
            batch = ConnectorBatch(entity, cursor=_cursor(page, since), first_seen=first_seen)
            for record in page:
                row = to_row(record, batch) if with_batch else to_row(record)
                if row is None:
                    batch.deletes.append(f"{prefix}{record['k']}")
                else:
                    batch.rows.append(row)
            yield batch
            since = batch.cursor or since
        if keys is not None:
            table, column = keys
            present = await self._query(f"SELECT {column} AS k FROM {table}")
            yield ConnectorBatch(
                entity,
                present_ids={f"{prefix}{r['k']}" for r in present},
                present_scope=prefix,
            )

    async def _full(
        self, entity: str, select: str, key: str, to_row: Callable[[Row], Row]
    ) -> AsyncIterator[ConnectorBatch]:
        """A small table without stamps: all of it every run, absent keys tombstoned."""
        rows = await self._query(f"{select} ORDER BY {key}")
        yield ConnectorBatch(
            entity, rows=[to_row(r) for r in rows], present_ids={str(r["k"]) for r in rows}
        )

    async def _patients(self, since: str | None) -> AsyncIterator[ConnectorBatch]:
        # Paged by family (Guarantor), so a guarantor and the family arrive in one batch and
        # every guarantor reference resolves; a newly completed procedure moves the last visit.
        where, params = "1 = 1", []
        if since is not None:
            where = (
                "(p.DateTStamp >= %s OR p.PatNum IN (SELECT PatNum FROM procedurelog "
                "WHERE DateTStamp >= %s AND ProcStatus = 2))"
            )
            start = dt.datetime.strptime(since, STAMP_FORMAT) - STAMP_OVERLAP
            params = [start, start]
        last_family = last_patient = -1
        while True:
            page = await self._query(
                f"{PATIENTS} WHERE {where} AND (p.Guarantor > %s OR "
                f"(p.Guarantor = %s AND p.PatNum > %s)) "
                f"ORDER BY p.Guarantor, p.PatNum LIMIT {self._page_rows}",
                [*params, last_family, last_family, last_patient],
            )
            full = len(page) == self._page_rows
            if full and page[0]["Guarantor"] != page[-1]["Guarantor"]:
                # The last family may go on past this page: it starts the next one instead.
                page = [r for r in page if r["Guarantor"] != page[-1]["Guarantor"]]
            if page:
                batch = ConnectorBatch("patients", cursor=_cursor(page, since))
                for record in page:
                    row = od.patient(record, batch, self._region)
                    if row is None:
                        batch.deletes.append(str(record["k"]))
                    else:
                        batch.rows.append(row)
                yield batch
                since = batch.cursor or since
                last_family, last_patient = page[-1]["Guarantor"], page[-1]["k"]
            if not full:
                return

    async def _appointments(self, since: str | None) -> AsyncIterator[ConnectorBatch]:
        zone = self._zone
        cursor = since
        async for batch in self._mapped(
            "appointments", APPOINTMENTS, "AptNum", "DateTStamp", since,
            lambda r: od.appointment(r, zone),
        ):  # fmt: skip
            cursor = batch.cursor or cursor
            yield batch
        # Deleted appointments leave a deletedobject row; read from the same starting point.
        async for page in self._pages(
            DELETED_APPOINTMENTS, "DeletedObjectNum", "DateTStamp", since
        ):
            newest = _cursor(page, cursor)
            cursor = newest or cursor
            deletes = sorted({str(r["ObjectNum"]) for r in page})
            yield ConnectorBatch("appointments", deletes=deletes, cursor=newest)

    async def _ledger(self, since: str | None) -> AsyncIterator[ConnectorBatch]:
        # Which billing type means collections lives in `definition`, which has no stamp:
        # when the set changed since the last run, every family is read again.
        types = {int(r["DefNum"]) for r in await self._query(COLLECTION_BILLING_TYPES)}
        marker = ",".join(str(t) for t in sorted(types))
        stamp, _, read_with = (since or "").partition(LEDGER_COLLECTIONS)
        start = stamp if since is not None and read_with == marker else None
        async for batch in self._mapped(
            "ledger", LEDGER, "PatNum", "DateTStamp", start, lambda r: od.ledger(r, types)
        ):
            newest = batch.cursor or start
            cursor = f"{newest}{LEDGER_COLLECTIONS}{marker}" if newest else None
            yield dataclasses.replace(batch, cursor=cursor)

    async def _opt_outs(self, since: str | None) -> AsyncIterator[ConnectorBatch]:
        region = self._region
        # commoptout keeps no stamp (and is small: a row per patient who opted out of
        # something): all of it every run, opt-outs it no longer holds tombstoned.
        present: set[str] = set()
        async for page in self._pages(COMM_OPT_OUTS, "o.CommOptOutNum", "", None):
            rows = [row for record in page for row in od.comm_opt_outs(record, region)]
            present.update(row["external_id"] for row in rows)
            yield ConnectorBatch("opt-outs", rows=rows, first_seen=OPTED_OUT_AT)
        yield ConnectorBatch("opt-outs", present_ids=present, present_scope=od.COMM_OPT_OUT_ID)
        # TxtMsgOk = No on the patient, by the patient's stamp; a patient whose answer is
        # no longer No loses the opt-out.
        async for batch in self._mapped(
            "opt-outs", TEXT_OPT_OUTS, "PatNum", "DateTStamp", since,
            lambda r: od.text_opt_out(r, region), prefix=od.TXT_MSG_OPT_OUT_ID,
            first_seen=OPTED_OUT_AT,
        ):  # fmt: skip
            yield batch
