"""Property: for random rules over random practices, the SQL compiler and the explainer
agree on every patient (patient in the SQL result == the explainer's verdict)."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from api.core.db import unit_of_work
from api.engines.rules import LocationDay, compile_flags, compile_rule, explain, parse_rule
from api.practice import ingest
from api.practice.models import AppointmentType, Patient, Provider
from api.segments import repository
from api.segments.snapshots import build_snapshot
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate
from tests.segments.conftest import NOW, TODAY
from tests.segments.strategies import practices, predicates, rules

ZONES = ["America/Chicago", "Pacific/Auckland", "UTC", "America/St_Johns"]
ENTITY_ORDER = (
    "patients",
    "appointments",
    "recalls",
    "treatment-plans",
    "procedures",
    "ledger",
    "communications",
)


async def _load(sessions, zone: str, rows: dict) -> tuple[str, str, dict[str, list[str]]]:
    async with unit_of_work(sessions) as session:
        tenant = await tenancy_service.create_tenant(session, TenantCreate(name="Random Dental"))
        location = await tenancy_service.create_location(
            session, tenant.id, LocationCreate(name="Random", timezone=zone)
        )
    tenant_id, location_id = tenant.id, location.id
    fixed = {
        "providers": [
            {"external_id": "P1", "kind": "dentist", "name": "Dr. Ana Okafor"},
            {"external_id": "P2", "kind": "hygienist", "name": "Bob Hy"},
        ],
        "appointment-types": [{"external_id": "T1", "name": "Prophy", "duration_minutes": 60}],
    }
    async with unit_of_work(sessions, tenant_id) as session:
        for entity, batch in [*fixed.items(), *((e, rows[e]) for e in ENTITY_ORDER)]:
            await ingest.sync_batch(
                session,
                tenant_id=tenant_id,
                location_id=location_id,
                entity=entity,
                rows=batch,
                now=NOW,
            )
        providers = (await session.execute(select(Provider.id).order_by(Provider.id))).scalars()
        types = (await session.execute(select(AppointmentType.id))).scalars()
        ids = {
            "providers": list(providers),
            "types": list(types),
            "locations": [location_id, "loc_elsewhere"],
        }
    return tenant_id, location_id, ids


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    rows=practices(), zone=st.sampled_from(ZONES), today_shift=st.integers(-2, 2), data=st.data()
)
async def test_sql_and_explainer_agree_on_every_patient(sessions, rows, zone, today_shift, data):
    tenant_id, location_id, ids = await _load(sessions, zone, rows)
    today = TODAY + dt.timedelta(days=today_shift)
    async with unit_of_work(sessions, tenant_id) as session:
        stmt = select(Patient).where(Patient.tenant_id == tenant_id)
        snapshots = []
        for patient in (await session.execute(stmt)).scalars().all():
            records = await repository.patient_records(session, patient)
            snapshots.append(build_snapshot(patient, records, zone))
        day = LocationDay(location_id, today, zone)
        # Each predicate alone, all in one scan (compile_flags): sharp on boundaries.
        leaves = [
            {"version": 1, "rule": data.draw(predicates(ids), label=f"predicate {i}")}
            for i in range(30)
        ]
        parsed = [parse_rule(leaf) for leaf in leaves]
        compiled = compile_flags(parsed, tenant_id=tenant_id, locations=[day])
        flags = {
            row.patient_id: row
            for row in await session.execute(text(compiled.sql), compiled.params)
        }
        assert set(flags) == {s.id for s in snapshots}
        for i, (leaf, rule) in enumerate(zip(leaves, parsed, strict=True)):
            for snapshot in snapshots:
                verdict = explain(rule, snapshot, today).matched
                assert getattr(flags[snapshot.id], f"rule_{i}") is verdict, (leaf, snapshot)
        # Whole trees through compile_rule: patient in the result == the explainer's verdict.
        for _ in range(5):
            document = data.draw(rules(ids), label="rule")
            rule = parse_rule(document)
            compiled = compile_rule(rule, tenant_id=tenant_id, locations=[day])
            by_sql = {pid for pid, _ in await repository.matching_patients(session, compiled)}
            for snapshot in snapshots:
                verdict = explain(rule, snapshot, today).matched
                assert (snapshot.id in by_sql) == verdict, (document, snapshot)
