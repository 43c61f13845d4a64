"""Open Dental records -> the mirror's row shapes (api.practice.ingest_rows). Pure: each
function takes one record as the connector's SQL selects it (`k` is the table's key) and
returns the row, or None when the record is not mirrored (its id is then tombstoned)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from api.practice.connectors.base import ConnectorBatch
from api.practice.contact import normalize_email, normalize_phone

Row = dict[str, Any]

PATIENT_STATUS = {0: "active", 1: "inactive", 2: "inactive", 3: "archived", 5: "deceased"}
PAT_DELETED = 4
CONTACT_METHOD = {1: "none", 2: "phone", 3: "phone", 4: "phone", 5: "email", 8: "sms"}
TXT_MSG_YES = 1
APPOINTMENT_STATUS = {1: "scheduled", 2: "completed", 3: "cancelled", 5: "broken"}
TREATMENT_PLAN_STATUS = {0: "proposed", 1: "proposed", 2: "inactive"}
PROC_TREATMENT_PLANNED, PROC_DONE = 1, {2, 3, 4}
SCHED_PROVIDER, SCHED_BLOCKOUT = 1, 2
_CODE = re.compile(r"[A-Za-z0-9.\-]{1,16}")
_CENTS = Decimal("0.01")

# definition.Category of the billing types; the one whose ItemValue is "C" is collections.
DEF_BILLING_TYPES, COLLECTIONS_ITEM_VALUE = 4, "c"
# commlog.Mode_: email, mail, phone, text; "email and text" counts as the text (the channel
# the patient is most likely to have noticed). None (a chart note) and InPerson are not a
# contact on a channel we send on: skipped.
COMM_MODE_CHANNEL = {1: "email", 2: "letter", 3: "phone", 5: "sms", 6: "sms"}
COMM_RECEIVED = 2  # commlog.SentOrReceived; 1 Sent and 0 Neither are the office's contacts
COMM_SOURCE = {
    0: "opendental",
    1: "opendental_websched",
    2: "opendental_program",
    3: "opendental_reminder",
    4: "opendental_eservices",
    6: "opendental_thank_you",
    7: "opendental_api",
}
# A commlog type's usage (definition.ItemValue) names what the contact was about.
COMM_USAGE_KIND = {"APPT": "appointment", "RECALL": "recall", "REACT": "reactivation"}
# commoptout flags that stop what Chairfill sends: everything, or the recall / reactivation
# texts and emails (Web Sched Recall) and the open-slot offers (Web Sched ASAP). A patient
# who only refused, say, eConfirmations still gets our recall messages, as in Open Dental.
OPT_OUT_ALL, OPT_OUT_WEB_SCHED_RECALL, OPT_OUT_WEB_SCHED_ASAP = 1, 16, 32
OPT_OUT_CHAIRFILL = OPT_OUT_ALL | OPT_OUT_WEB_SCHED_RECALL | OPT_OUT_WEB_SCHED_ASAP
TXT_MSG_NO = 2

# Mirror external ids of rows with no one-to-one Open Dental key (or sharing a table with
# rows Chairfill writes itself, "chairfill:..."): the Open Dental table names the row.
COMMLOG_ID = "commlog:"
COMM_OPT_OUT_ID = "commoptout:"
TXT_MSG_OPT_OUT_ID = "txtmsgok:"


def to_date(value: Any) -> dt.date | None:
    # Open Dental writes 0001-01-01 for "no date".
    if isinstance(value, dt.datetime):
        value = value.date()
    return value if isinstance(value, dt.date) and value.year >= 1880 else None


def to_id(value: Any) -> str | None:
    return str(value) if value else None


def to_time(value: Any) -> dt.time:
    seconds = int(value.total_seconds()) if isinstance(value, dt.timedelta) else 0
    return dt.time(min(seconds // 3600, 23), seconds // 60 % 60)


def interval_months(packed: int) -> int | None:
    """recall.RecallInterval packs days | weeks << 8 | months << 16 | years << 24."""
    months = ((packed >> 24) & 0xFF) * 12 + ((packed >> 16) & 0xFF)
    return months if 1 <= months <= 120 else None


def _slug(text: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", text.lower()))[:32]


def recall_type(description: str) -> str:
    text = description.lower()
    for known in ("perio", "prophy"):
        if known in text:
            return known
    return _slug(text) or "recall"


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(_CENTS)


def contact_kind(usage: str | None, type_name: str | None) -> str | None:
    """A commlog's kind from its type: the type's usage when it names one, else its name
    ("Statement Sent" -> statement_sent)."""
    known = COMM_USAGE_KIND.get((usage or "").strip().upper())
    return known or _slug(type_name or "") or None


def mirrored(pat_status: int | None) -> bool:
    """Whether `patient` mirrors a patient of this PatStatus (no: deleted, or a row that is
    missing); rows of other tables that name one are not mirrored either, since their
    patient reference would not resolve."""
    return pat_status in PATIENT_STATUS


def opts_out(flags: int) -> bool:
    return bool(flags & OPT_OUT_CHAIRFILL)


def provider(r: Row) -> Row:
    name = " ".join(p for p in (r["FName"].strip(), r["LName"].strip()) if p)
    return {
        "external_id": str(r["k"]),
        "kind": "hygienist" if r["IsSecondary"] else "dentist",
        "name": name or r["Abbr"].strip() or f"Provider {r['k']}",
        "active": not r["IsHidden"],
    }


def operatory(r: Row) -> Row:
    name = r["OpName"].strip() or f"Op {r['k']}"
    return {"external_id": str(r["k"]), "name": name, "active": not r["IsHidden"]}


def appointment_type(r: Row) -> Row:
    return {
        "external_id": str(r["k"]),
        "name": r["AppointmentTypeName"].strip() or f"Type {r['k']}",
        # One Pattern character per five minutes ('X' provider time, '/' assistant time).
        "duration_minutes": min(max(len(r["Pattern"]), 1) * 5, 720),
    }


def patient(r: Row, batch: ConnectorBatch, region: str) -> Row | None:
    status = PATIENT_STATUS.get(r["PatStatus"])
    if status is None:
        return None
    mobile = email = None
    # An invalid number or address is dropped (and counted), not allowed to fail the batch.
    if r["WirelessPhone"].strip():
        try:
            mobile = normalize_phone(r["WirelessPhone"], region)
        except ValueError:
            batch.contacts_dropped += 1
    if r["Email"].strip():
        try:
            email = normalize_email(r["Email"])
        except ValueError:
            batch.contacts_dropped += 1
    method = CONTACT_METHOD.get(r["PreferContactMethod"])
    if method is None:  # None, SeeNotes, Mail: whatever reaches the patient
        texts = mobile and r["TxtMsgOk"] == TXT_MSG_YES
        method = "sms" if texts else "email" if email else "phone"
    guarantor = r["Guarantor"] if r["GuarantorStatus"] not in (None, PAT_DELETED) else 0
    return {
        "external_id": str(r["k"]),
        # Open Dental allows a blank name; the mirror needs one to address the patient.
        "first_name": r["FName"].strip() or r["Preferred"].strip() or "(no first name)",
        "last_name": r["LName"].strip() or "(no last name)",
        "preferred_name": r["Preferred"].strip() or None,
        "birthdate": to_date(r["Birthdate"]),
        "status": status,
        "email": email,
        "mobile": mobile,
        "communication_preference": method,
        "sms_consent": r["TxtMsgOk"] == TXT_MSG_YES and mobile is not None,
        "email_consent": email is not None,
        # Open Dental's family is everyone sharing a guarantor.
        "household_id": to_id(guarantor),
        "guarantor_external_id": to_id(guarantor),
        "primary_provider_external_id": to_id(r["PriProv"]),
        "first_visit_date": to_date(r["DateFirstVisit"]),
        "last_visit_date": to_date(r["LastVisit"]),
    }


def _utc(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(dt.UTC)


def schedule(r: Row, zone: ZoneInfo) -> Row | None:
    day, start, stop = to_date(r["SchedDate"]), to_time(r["StartTime"]), to_time(r["StopTime"])
    if day is None:
        return None
    base = {"external_id": str(r["k"]), "provider_external_id": to_id(r["ProvNum"])}
    if r["SchedType"] == SCHED_PROVIDER and r["ProvNum"]:
        if start >= stop:  # 00:00-00:00: the provider is off that day
            return base | {"kind": "exception", "date": day, "is_off": True}
        return base | {"kind": "exception", "date": day, "start_time": start, "end_time": stop}
    if r["SchedType"] == SCHED_BLOCKOUT and start < stop and (r["ProvNum"] or r["OpNum"]):
        return base | {
            "kind": "block",
            "operatory_external_id": to_id(r["OpNum"]),
            "start_at": _utc(day, start, zone),
            "end_at": _utc(day, stop, zone),
            "reason": "blockout",
        }
    return None  # practice notes, holidays, employee schedules


def appointment(r: Row, zone: ZoneInfo) -> Row | None:
    status, start = APPOINTMENT_STATUS.get(r["AptStatus"]), r["AptDateTime"]
    if status is None or not isinstance(start, dt.datetime) or start.year < 1880:
        return None  # planned appointments, patient notes: nothing on the calendar
    # AptDateTime is the practice's wall clock.
    start_at = start.replace(tzinfo=zone).astimezone(dt.UTC)
    seen_by = r["ProvHyg"] if r["IsHygiene"] and r["ProvHyg"] else r["ProvNum"]
    return {
        "external_id": str(r["k"]),
        "patient_external_id": str(r["PatNum"]),
        "provider_external_id": to_id(seen_by),
        "operatory_external_id": to_id(r["Op"]),
        "appointment_type_external_id": to_id(r["AppointmentTypeNum"]),
        "start_at": start_at,
        "end_at": start_at + dt.timedelta(minutes=5 * max(len(r["Pattern"]), 1)),
        "status": status,
    }


def recall(r: Row) -> Row:
    return {
        "external_id": str(r["k"]),
        "patient_external_id": str(r["PatNum"]),
        "recall_type": recall_type(r["Description"] or ""),
        "interval_months": interval_months(r["RecallInterval"]),
        "due_date": to_date(r["DateDue"]),
        "disabled": bool(r["IsDisabled"]),
    }


def treatment_plan(r: Row) -> Row:
    return {
        "external_id": str(r["k"]),
        "patient_external_id": str(r["PatNum"]),
        "name": r["Heading"].strip() or "Treatment plan",
        "status": TREATMENT_PLAN_STATUS.get(r["TPStatus"], "inactive"),
        "presented_date": to_date(r["DateTP"]),
    }


def procedure(r: Row, batch: ConnectorBatch) -> Row | None:
    done = r["ProcStatus"] in PROC_DONE
    if not (done or r["ProcStatus"] == PROC_TREATMENT_PLANNED):
        return None  # Deleted, Referred out, Condition, inactive TP
    code = (r["ProcCode"] or "").strip()
    fee = Decimal(str(r["ProcFee"])).quantize(Decimal("0.01"))
    if not _CODE.fullmatch(code) or fee < 0:
        batch.skipped += 1  # group notes (~GRP~) and adjustments are not procedures
        return None
    return {
        "external_id": str(r["k"]),
        "patient_external_id": str(r["PatNum"]),
        "provider_external_id": to_id(r["ProvNum"]),
        "treatment_plan_external_id": to_id(r["TreatPlanNum"]),
        "code": code,
        "description": (r["Descript"] or "").strip()[:300] or None,
        "tooth": r["ToothNum"].strip() or None,
        "surface": r["Surf"].strip() or None,
        "fee": fee,
        "status": "completed" if done else "scheduled" if r["AptNum"] else "proposed",
        "planned_date": to_date(r["DateTP"]),
        "completed_date": to_date(r["ProcDate"]) if done else None,
    }


def ledger(r: Row, collection_types: set[int]) -> Row | None:
    """The family account, from the guarantor's patient row (Open Dental keeps the aging of
    the whole family there). A patient who heads no family (any more) has no ledger."""
    if not mirrored(r["PatStatus"]) or r["Guarantor"] != r["k"]:
        return None
    return {
        "external_id": str(r["k"]),
        "guarantor_external_id": str(r["k"]),
        # What the family owes after the insurance estimate (Open Dental's "Pat" column in
        # aging); BalTotal alone counts what insurance is expected to pay.
        "balance": money(r["BalTotal"]) - money(r["InsEst"]),
        "in_collections": r["BillingType"] in collection_types,
        "aging_0_30": money(r["Bal_0_30"]),
        "aging_31_60": money(r["Bal_31_60"]),
        "aging_61_90": money(r["Bal_61_90"]),
        "aging_over_90": money(r["BalOver90"]),
    }


def communication(r: Row, batch: ConnectorBatch, zone: ZoneInfo) -> Row | None:
    if not mirrored(r["PatStatus"]):
        return None  # deleted (or merged into another patient)
    channel, at = COMM_MODE_CHANNEL.get(r["Mode_"]), r["CommDateTime"]
    if channel is None or not isinstance(at, dt.datetime) or at.year < 1880:
        batch.skipped += 1  # a note, an in-person talk, or no time: not a contact we count
        return None
    return {
        "external_id": f"{COMMLOG_ID}{r['k']}",
        "patient_external_id": str(r["PatNum"]),
        "channel": channel,
        "direction": "inbound" if r["SentOrReceived"] == COMM_RECEIVED else "outbound",
        # CommDateTime is the practice's wall clock.
        "contacted_at": at.replace(tzinfo=zone).astimezone(dt.UTC),
        "source": COMM_SOURCE.get(r["CommSource"] or 0, "opendental"),
        "kind": contact_kind(r["TypeUsage"], r["TypeName"]),
    }


def _contact(value: str, channel: str, region: str) -> str | None:
    try:
        if not value.strip():
            return None
        return normalize_phone(value, region) if channel == "sms" else normalize_email(value)
    except ValueError:
        return None  # the opt-out still holds for the patient


def opt_out(external_id: str, patient_num: int, channel: str, contact: str, region: str) -> Row:
    """An opt-out of the patient and of their number or address: a STOP holds for the
    number (as carriers apply it), so a mobile a household shares is opted out for all.
    `opted_out_at` is filled in by the runner (ConnectorBatch.first_seen)."""
    return {
        "external_id": external_id,
        "patient_external_id": str(patient_num),
        "contact_value": _contact(contact, channel, region),
        "channel": channel,
        "source": "opendental",
    }


def comm_opt_outs(r: Row, region: str) -> list[Row]:
    """A commoptout row: one opt-out per channel whose flags stop what we send."""
    if not mirrored(r["PatStatus"]):
        return []
    wanted = (("sms", r["OptOutSms"], r["WirelessPhone"]), ("email", r["OptOutEmail"], r["Email"]))
    return [
        opt_out(f"{COMM_OPT_OUT_ID}{r['k']}:{channel}", r["PatNum"], channel, contact, region)
        for channel, flags, contact in wanted
        if opts_out(flags or 0)
    ]


def text_opt_out(r: Row, region: str) -> Row | None:
    """patient.TxtMsgOk = No: the patient asked for no texts (Open Dental sets it on STOP)."""
    if not mirrored(r["PatStatus"]) or r["TxtMsgOk"] != TXT_MSG_NO:
        return None
    return opt_out(f"{TXT_MSG_OPT_OUT_ID}{r['k']}", r["k"], "sms", r["WirelessPhone"], region)
