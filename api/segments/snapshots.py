"""Mirror rows -> the plain-data snapshot of one patient that the explainer reads.

Timestamps become dates local to the patient's location, exactly as the compiled SQL
reads them (`timestamptz AT TIME ZONE <location zone>`)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from api.engines.rules import (
    AppointmentRecord,
    CommunicationRecord,
    HouseholdMember,
    LedgerRecord,
    PatientSnapshot,
    ProcedureRecord,
    RecallRecord,
    TreatmentPlanRecord,
)
from api.practice.models import Patient


def local_date(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    return moment.astimezone(zone).date()


def location_today(now: dt.datetime, time_zone: str) -> dt.date:
    return local_date(now, ZoneInfo(time_zone))


def build_snapshot(
    patient: Patient, records: dict[str, list[Any]], time_zone: str
) -> PatientSnapshot:
    zone = ZoneInfo(time_zone)
    providers = records.get("providers") or []
    return PatientSnapshot(
        id=patient.id,
        location_id=patient.location_id,
        first_name=patient.first_name,
        last_name=patient.last_name,
        status=patient.status,
        communication_preference=patient.communication_preference,
        sms_consent=patient.sms_consent,
        email_consent=patient.email_consent,
        email=patient.email,
        mobile=patient.mobile,
        birthdate=patient.birthdate,
        first_visit_date=patient.first_visit_date,
        last_visit_date=patient.last_visit_date,
        primary_provider_id=patient.primary_provider_id,
        primary_provider_name=providers[0].name if providers else None,
        household_id=patient.household_id,
        appointments=tuple(
            AppointmentRecord(
                id=a.id,
                status=a.status,
                local_date=local_date(a.start_at, zone),
                provider_id=a.provider_id,
                appointment_type_id=a.appointment_type_id,
            )
            for a in records["appointments"]
        ),
        recalls=tuple(
            RecallRecord(
                id=r.id, recall_type=r.recall_type, due_date=r.due_date, disabled=r.disabled
            )
            for r in records["recalls"]
        ),
        treatment_plans=tuple(
            TreatmentPlanRecord(id=t.id, status=t.status) for t in records["treatment_plans"]
        ),
        procedures=tuple(
            ProcedureRecord(
                id=pr.id,
                code=pr.code,
                status=pr.status,
                fee=pr.fee,
                treatment_plan_id=pr.treatment_plan_id,
                completed_date=pr.completed_date,
            )
            for pr in records["procedures"]
        ),
        communications=tuple(
            CommunicationRecord(
                id=c.id,
                channel=c.channel,
                direction=c.direction,
                local_date=local_date(c.contacted_at, zone),
                kind=c.kind,
            )
            for c in records["communications"]
        ),
        ledger=tuple(
            LedgerRecord(balance=entry.balance, in_collections=entry.in_collections)
            for entry in records["ledger"]
        ),
        household=tuple(HouseholdMember(id=m.id, status=m.status) for m in records["household"]),
    )
