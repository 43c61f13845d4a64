"""A small hand-built practice (today is 2026-11-23 in Chicago) the operator tests read.

ana  active, 35 (birthday tomorrow), provider Dr. Ana Okafor, household H1, guarantor of
     ben; appointment in 10 days; prophy due in 30 days; proposed plan (D2740 + D2950,
     $1,450); statement email 10 days ago; account $310.
ben  active, 36 today, provider Beth Hygienist, H1, first visit 30 days ago, last visit
     400 days ago; only a cancelled future appointment; prophy 200 days overdue (a perio
     recall is disabled); accepted plan (D2740 $900 accepted); crown prep D2799 done 60
     days ago and no crown since; recall SMS 40 days ago.
cal  inactive, H1, no provider, no email; appointment yesterday evening (local), prophy
     10 days overdue.
dee  active; appointment tonight 21:00 local (03:00Z tomorrow); perio 400 days overdue;
     prep D2799 then crown D2740 (seated), D4341 scheduled; phone call in (local
     yesterday); own account $50 in collections.
eve  archived, nothing else.
"""

from __future__ import annotations

from tests.segments.conftest import Mirror, day, patient

ZONE = "America/Chicago"


async def load_chart(mirror: Mirror) -> None:
    await mirror.load(
        "providers",
        [
            {"external_id": "DR1", "kind": "dentist", "name": "Dr. Ana Okafor"},
            {"external_id": "HY1", "kind": "hygienist", "name": "Beth Hygienist"},
        ],
    )
    await mirror.load(
        "appointment-types", [{"external_id": "AT1", "name": "Prophy", "duration_minutes": 60}]
    )
    await mirror.load(
        "patients",
        [
            patient(
                "ana",
                status="active",
                birthdate="1990-11-24",
                email="ana@example.com",
                household_id="H1",
                primary_provider_external_id="DR1",
                first_visit_date=day(-2000),
                last_visit_date=day(-100),
                sms_consent=True,
            ),
            patient(
                "ben",
                status="active",
                birthdate="1990-11-23",
                email="Ben.Lee@Example.com",
                household_id="H1",
                guarantor_external_id="ana",
                primary_provider_external_id="HY1",
                first_visit_date=day(-30),
                last_visit_date=day(-400),
            ),
            patient("cal", status="inactive", household_id="H1"),
            patient("dee", status="active", communication_preference="email"),
            patient("eve", status="archived"),
        ],
    )
    await mirror.load(
        "appointments",
        [
            {
                "external_id": "a1",
                "patient_external_id": "ana",
                "provider_external_id": "DR1",
                "appointment_type_external_id": "AT1",
                "start_at": f"{day(10)}T15:00:00Z",
                "end_at": f"{day(10)}T16:00:00Z",
                "status": "scheduled",
            },
            {
                "external_id": "a2",
                "patient_external_id": "ben",
                "start_at": f"{day(-400)}T15:00:00Z",
                "end_at": f"{day(-400)}T16:00:00Z",
                "status": "completed",
            },
            {
                "external_id": "a3",
                "patient_external_id": "ben",
                "start_at": f"{day(5)}T15:00:00Z",
                "end_at": f"{day(5)}T16:00:00Z",
                "status": "cancelled",
            },
            {
                "external_id": "a4",
                "patient_external_id": "dee",
                "start_at": f"{day(1)}T03:00:00Z",
                "end_at": f"{day(1)}T04:00:00Z",
                "status": "confirmed",
            },
            {
                "external_id": "a5",
                "patient_external_id": "cal",
                "start_at": f"{day(0)}T05:00:00Z",
                "end_at": f"{day(0)}T05:30:00Z",
                "status": "scheduled",
            },
        ],
    )
    await mirror.load(
        "recalls",
        [
            _recall("r1", "ana", "prophy", day(30)),
            _recall("r2", "ben", "prophy", day(-200)),
            _recall("r3", "ben", "perio", day(-500), disabled=True),
            _recall("r4", "dee", "perio", day(-400)),
            _recall("r5", "cal", "Prophy", day(-10)),
        ],
    )
    await mirror.load(
        "treatment-plans",
        [
            {
                "external_id": "tp1",
                "patient_external_id": "ana",
                "name": "Crown",
                "status": "proposed",
            },
            {
                "external_id": "tp2",
                "patient_external_id": "ben",
                "name": "Crown",
                "status": "accepted",
            },
        ],
    )
    await mirror.load(
        "procedures",
        [
            _proc("x1", "ana", "D2740", "1250.00", "proposed", plan="tp1"),
            _proc("x2", "ana", "D2950", "200.00", "proposed", plan="tp1"),
            _proc("x3", "ben", "D2740", "900.00", "accepted", plan="tp2"),
            _proc("x4", "ben", "D1110", "95.00", "completed", completed=day(-400)),
            _proc("x5", "ben", "D2799", "300.00", "completed", completed=day(-60)),
            _proc("x6", "dee", "D2799", "300.00", "completed", completed=day(-90)),
            _proc("x7", "dee", "d2740", "1100.00", "completed", completed=day(-60)),
            _proc("x8", "dee", "D4341", "300.00", "scheduled"),
        ],
    )
    await mirror.load(
        "ledger",
        [
            {"external_id": "L1", "guarantor_external_id": "ana", "balance": "310.00"},
            {
                "external_id": "L2",
                "guarantor_external_id": "dee",
                "balance": "50.00",
                "in_collections": True,
            },
        ],
    )
    await mirror.load(
        "communications",
        [
            _contact("c1", "ana", "email", "outbound", f"{day(-10)}T15:00:00Z", "statement"),
            _contact("c2", "ben", "sms", "outbound", f"{day(-40)}T15:00:00Z", "recall"),
            _contact("c3", "dee", "phone", "inbound", f"{day(0)}T05:30:00Z", None),
        ],
    )


def _recall(ext: str, who: str, kind: str, due: str, disabled: bool = False) -> dict:
    return {
        "external_id": ext,
        "patient_external_id": who,
        "recall_type": kind,
        "interval_months": 6,
        "due_date": due,
        "disabled": disabled,
    }


def _proc(
    ext: str,
    who: str,
    code: str,
    fee: str,
    status: str,
    plan: str | None = None,
    completed: str | None = None,
) -> dict:
    row = {
        "external_id": ext,
        "patient_external_id": who,
        "code": code,
        "fee": fee,
        "status": status,
    }
    if plan:
        row["treatment_plan_external_id"] = plan
    if completed:
        row["completed_date"] = completed
    return row


def _contact(ext: str, who: str, channel: str, direction: str, at: str, kind: str | None) -> dict:
    row = {
        "external_id": ext,
        "patient_external_id": who,
        "channel": channel,
        "direction": direction,
        "contacted_at": at,
    }
    if kind:
        row["kind"] = kind
    return row
