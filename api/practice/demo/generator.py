"""A realistic dental practice, generated: households and guarantors, dentists and
hygienists, four operatories per location, weekly schedules, three years of hygiene
visits (prophy every 6 months, periodontal maintenance every 3-4), recalls, treatment
plans with CDT codes and fees, guarantor balances (some in collections), opt-outs and
contact history.

Rows come out in the bridge's shapes (api.practice.ingest_rows), already valid and
normalised. The same seed and `today` give the same rows: every chunk of patients has
its own random stream (seeded by seed, location and chunk), so chunks can be made in any
order and the 1,000,000-patient practice streams in bounded memory."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from api.practice.demo import catalog as c

Row = dict[str, Any]
Chunk = list[tuple[str, list[Row]]]  # (entity, rows) in an order that resolves references

HISTORY_YEARS = 3
CHUNK_PATIENTS = 5_000
MAX_VISITS_PER_PATIENT = 40


@dataclass(frozen=True)
class DemoSpec:
    patients: int = 3_750  # ~3,000 active
    locations: int = 1
    seed: int = 42
    today: dt.date = dt.date(2026, 11, 23)
    timezone: str = "America/Chicago"

    @cached_property
    def names(self) -> tuple[list[str], list[str]]:
        return c.name_pools(self.seed)

    def patients_at(self, location: int) -> int:
        base, extra = divmod(self.patients, self.locations)
        return base + (1 if location < extra else 0)

    def staff(self, location: int) -> tuple[int, int]:
        """(dentists, hygienists): one dentist per 2,500 patients, a hygienist per 1,500."""
        n = self.patients_at(location)
        return max(2, min(n // 2_500, 400)), max(3, min(n // 1_500, 600))


def resources(spec: DemoSpec, location: int) -> Chunk:
    """Providers, operatories, appointment types and weekly schedules of one location."""
    rng = random.Random(f"{spec.seed}:{location}:staff")
    firsts, lasts = spec.names
    dentists, hygienists = spec.staff(location)
    providers = [
        {
            "external_id": f"DDS{i}",
            "kind": "dentist",
            "name": f"Dr. {rng.choice(firsts)} {rng.choice(lasts)}",
        }
        for i in range(1, dentists + 1)
    ] + [
        {
            "external_id": f"HYG{i}",
            "kind": "hygienist",
            "name": f"{rng.choice(firsts)} {rng.choice(lasts)}, RDH",
        }
        for i in range(1, hygienists + 1)
    ]
    operatories = [{"external_id": f"OP{i}", "name": name} for i, name in enumerate(
        ["Op 1 - Restorative", "Op 2 - Restorative", "Op 3 - Hygiene", "Op 4 - Hygiene"], 1
    )]  # fmt: skip
    types = [
        {"external_id": ext, "name": name, "duration_minutes": minutes, "self_bookable": bookable}
        for ext, name, minutes, bookable in c.APPOINTMENT_TYPES
    ]
    schedules = []
    for provider in providers:
        off = rng.choice([None, None, 2])  # some work a four-day week (off Wednesday)
        for weekday in range(5):
            if weekday == off:
                continue
            end = dt.time(14) if weekday == 4 else dt.time(17)
            schedules.append({
                "external_id": f"{provider['external_id']}-W{weekday}",
                "kind": "weekly",
                "provider_external_id": provider["external_id"],
                "weekday": weekday,
                "start_time": dt.time(8),
                "end_time": end,
            })  # fmt: skip
    return [
        ("providers", providers),
        ("operatories", operatories),
        ("appointment-types", types),
        ("schedules", schedules),
    ]


def patient_chunks(
    spec: DemoSpec, location: int, chunk_patients: int = CHUNK_PATIENTS
) -> Iterator[Chunk]:
    """The location's patients and their chart, a chunk of whole households at a time."""
    for number in range(chunk_count(spec, location, chunk_patients)):
        yield patient_chunk(spec, location, number, chunk_patients)


def chunk_count(spec: DemoSpec, location: int, chunk_patients: int = CHUNK_PATIENTS) -> int:
    return -(-spec.patients_at(location) // chunk_patients)


def patient_chunk(
    spec: DemoSpec, location: int, number: int, chunk_patients: int = CHUNK_PATIENTS
) -> Chunk:
    """Chunk `number` alone (its own random stream: chunks can be made in any process)."""
    total = spec.patients_at(location)
    start = number * chunk_patients
    return _Chunk(spec, location, number, start + 1, min(start + chunk_patients, total)).build()


class _Chunk:
    def __init__(self, spec: DemoSpec, location: int, number: int, first: int, last: int) -> None:
        self.spec, self.first, self.last = spec, first, last
        self.rng = random.Random(f"{spec.seed}:{location}:{number}")
        self.zone = ZoneInfo(spec.timezone)
        self.today = spec.today
        self.window_start = spec.today - dt.timedelta(days=365 * HISTORY_YEARS)
        self.dentists, self.hygienists = spec.staff(location)
        self.rows: dict[str, list[Row]] = {
            e: [] for e in ("patients", "appointments", "recalls", "treatment-plans",
                            "procedures", "ledger", "communications", "opt-outs")
        }  # fmt: skip

    def build(self) -> Chunk:
        patnum = self.first
        while patnum <= self.last:
            size = min(
                self.rng.choices(c.HOUSEHOLD_SIZES, c.HOUSEHOLD_WEIGHTS)[0], self.last - patnum + 1
            )
            self._household(patnum, size)
            patnum += size
        return list(self.rows.items())

    def _day(self, back_from: dt.date, low: int, high: int) -> dt.date:
        return back_from - dt.timedelta(days=self.rng.randint(low, high))

    def _at(self, day: dt.date) -> dt.datetime:
        if day.weekday() >= 5:  # weekends move to Friday
            day -= dt.timedelta(days=day.weekday() - 4)
        local = dt.time(self.rng.randint(8, 15), self.rng.choice((0, 30)))
        return dt.datetime.combine(day, local, tzinfo=self.zone).astimezone(dt.UTC)

    def _household(self, guarantor: int, size: int) -> None:
        rng = self.rng
        firsts, lasts = self.spec.names
        last_name = rng.choice(lasts)
        active = rng.random() < c.ACTIVE_SHARE
        status = "active" if active else rng.choices(["inactive", "archived"], [62, 38])[0]
        for member in range(size):
            patnum = guarantor + member
            adult = member < 2
            age = rng.randint(25, 82) if adult else rng.randint(3, 17)
            first_name = rng.choice(firsts)
            person_status = "deceased" if adult and age > 70 and rng.random() < 0.04 else status
            mobile = None
            if (adult or age >= 13) and rng.random() < 0.86:
                mobile = f"+1{rng.choice(c.AREA_CODES)}55501{rng.randint(0, 99):02d}"
            email = None
            if adult and rng.random() < 0.72:
                email = f"{first_name}.{last_name}{patnum}@example.com".lower().replace(" ", "")
            preference = rng.choices(c.PREFERENCES, c.PREFERENCE_WEIGHTS)[0]
            born = self._day(self.today, age * 365, age * 365 + 364)
            first_visit = self._day(self.today, 60, min(age * 365, 15 * 365))
            last_visit = self._visits(patnum, adult, person_status, first_visit)
            self.rows["patients"].append({
                "external_id": str(patnum),
                "first_name": first_name,
                "last_name": last_name if rng.random() < 0.92 else rng.choice(lasts),
                "birthdate": born,
                "status": person_status,
                "email": email,
                "mobile": mobile,
                "communication_preference": preference,
                "sms_consent": mobile is not None and rng.random() < 0.82,
                "email_consent": email is not None and rng.random() < 0.76,
                "household_id": f"H{guarantor}",
                "guarantor_external_id": str(guarantor),
                "primary_provider_external_id": f"DDS{patnum % self.dentists + 1}",
                "first_visit_date": first_visit,
                "last_visit_date": last_visit,
            })  # fmt: skip
            if person_status == "active":
                self._contact(patnum, preference, mobile, email)
        self._ledger(guarantor)

    def _visits(self, patnum: int, adult: bool, status: str, first_visit: dt.date) -> dt.date:
        """Hygiene visits back from the last one; the recall; treatment. -> last visit."""
        rng = self.rng
        perio = adult and rng.random() < c.PERIO_SHARE
        interval = rng.choice((3, 4)) if perio else 6
        if status != "active":
            last = self._day(self.today, 3 * 365, 8 * 365)
        elif rng.random() < c.LAPSED_SHARE:
            last = self._day(self.today, 7 * 30, 30 * 30)
        else:
            last = self._day(self.today, 1, interval * 30)
        last = max(last, first_visit)
        step = dt.timedelta(days=round(interval * 30.44))
        hygienist = f"HYG{patnum % self.hygienists + 1}"
        visit, n = last, 0
        while visit >= max(self.window_start, first_visit) and n < MAX_VISITS_PER_PATIENT:
            n += 1
            self._appointment(patnum, n, visit, "completed", hygienist, "AT2" if perio else "AT1")
            code = c.PERIO_MAINTENANCE if perio else c.PROPHY if adult else c.CHILD_PROPHY
            self._procedure(patnum, f"H{n}", code, hygienist, "completed", visit)
            if n % 2 == 1:
                exam = c.NEW_PATIENT_EXAM if visit == first_visit else c.EXAM
                self._procedure(
                    patnum, f"E{n}", exam, f"DDS{patnum % self.dentists + 1}", "completed", visit
                )
            if rng.random() < 0.06:  # a broken appointment a week before, rebooked
                n += 1
                self._appointment(
                    patnum, n, visit - dt.timedelta(days=7), "broken", hygienist, "AT1"
                )
            visit = visit - step + dt.timedelta(days=rng.randint(-10, 10))
        due = last + step
        self.rows["recalls"].append({
            "external_id": f"R{patnum}",
            "patient_external_id": str(patnum),
            "recall_type": "perio" if perio else "prophy",
            "interval_months": interval,
            "due_date": due,
            "disabled": status != "active" and (status != "inactive" or rng.random() < 0.5),
        })  # fmt: skip
        if status == "active" and due >= self.today - dt.timedelta(days=14) and rng.random() < 0.65:
            n += 1
            booked = max(due, self.today + dt.timedelta(days=1))
            state = rng.choices(["scheduled", "confirmed"], [55, 45])[0]
            self._appointment(patnum, n, booked, state, hygienist, "AT2" if perio else "AT1")
        if status == "active" and adult and rng.random() < c.TREATMENT_PLAN_SHARE:
            self._treatment_plan(patnum, last)
        return last

    def _appointment(
        self, patnum: int, n: int, day: dt.date, status: str, provider: str, kind: str
    ) -> None:
        start = self._at(day)
        minutes = 60 if kind in ("AT1", "AT2") else 90
        self.rows["appointments"].append({
            "external_id": f"{patnum}-{n}",
            "patient_external_id": str(patnum),
            "provider_external_id": provider,
            "operatory_external_id": f"OP{(3 if provider[0] == 'H' else 1) + patnum % 2}",
            "appointment_type_external_id": kind,
            "start_at": start,
            "end_at": start + dt.timedelta(minutes=minutes),
            "status": status,
        })  # fmt: skip

    def _procedure(
        self, patnum: int, suffix: str, code: tuple[str, str, Decimal], provider: str, status: str,
        day: dt.date, plan: str | None = None, tooth: str | None = None, surface: str | None = None,
    ) -> None:  # fmt: skip
        self.rows["procedures"].append({
            "external_id": f"{patnum}-{suffix}",
            "patient_external_id": str(patnum),
            "provider_external_id": provider,
            "treatment_plan_external_id": plan,
            "code": code[0],
            "description": code[1],
            "tooth": tooth,
            "surface": surface,
            "fee": code[2],
            "status": status,
            "planned_date": day if plan else None,
            "completed_date": day if status == "completed" else None,
        })  # fmt: skip

    def _treatment_plan(self, patnum: int, presented: dt.date) -> None:
        rng = self.rng
        plan = f"TP{patnum}"
        status = rng.choices(["proposed", "accepted", "rejected", "completed"], [58, 24, 11, 7])[0]
        self.rows["treatment-plans"].append({
            "external_id": plan, "patient_external_id": str(patnum),
            "name": "Restorative treatment plan", "status": status, "presented_date": presented,
        })  # fmt: skip
        codes = rng.choices(c.TREATMENT, c.TREATMENT_WEIGHTS, k=rng.randint(1, 3))
        if codes[0][0] == "D2740" and len(codes) < 3:
            codes.append(c.TREATMENT[1])  # a crown comes with its core buildup
        proc_status = {"accepted": "accepted", "completed": "completed"}.get(status, "proposed")
        dentist = f"DDS{patnum % self.dentists + 1}"
        tooth = rng.choice(c.POSTERIOR_TEETH)
        for k, code in enumerate(codes[:3]):
            surface = rng.choice(c.SURFACES) if code[0] == "D2392" else None
            self._procedure(
                patnum,
                f"T{k}",
                code,
                dentist,
                proc_status,
                presented,
                plan,
                tooth,
                surface,
            )

    def _ledger(self, guarantor: int) -> None:
        rng = self.rng
        if rng.random() >= 0.34:
            return
        collections = rng.random() < 0.05
        cents = rng.randint(2_500, 180_000) * (3 if collections else 1)
        balance = Decimal(cents) / 100
        buckets = [Decimal(0)] * 4
        if collections:
            buckets[3] = balance
        else:
            split = sorted(rng.randint(0, cents) for _ in range(3))
            parts = [split[0], split[1] - split[0], split[2] - split[1], cents - split[2]]
            buckets = [Decimal(p) / 100 for p in parts]
        self.rows["ledger"].append({
            "external_id": f"L{guarantor}", "guarantor_external_id": str(guarantor),
            "balance": balance, "in_collections": collections, "aging_0_30": buckets[0],
            "aging_31_60": buckets[1], "aging_61_90": buckets[2], "aging_over_90": buckets[3],
        })  # fmt: skip

    def _contact(self, patnum: int, preference: str, mobile: str | None, email: str | None) -> None:
        rng = self.rng
        channel = "sms" if mobile and preference == "sms" else "email" if email else "phone"
        for k in range(rng.choices([0, 1, 2, 3], [45, 30, 17, 8])[0]):
            self.rows["communications"].append({
                "external_id": f"C{patnum}-{k}", "patient_external_id": str(patnum),
                "channel": channel, "direction": "outbound",
                "contacted_at": self._at(self._day(self.today, 1, 365)), "kind": "recall",
            })  # fmt: skip
        for channel, share in (("sms", 0.03), ("email", 0.02)):
            if rng.random() < share:
                self.rows["opt-outs"].append({
                    "external_id": f"O{patnum}-{channel}", "patient_external_id": str(patnum),
                    "channel": channel, "opted_out_at": self._at(self._day(self.today, 1, 700)),
                })  # fmt: skip
