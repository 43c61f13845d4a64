"""Helpers for segment tests: load a hand-built mirror through the ingestion path, then
run a rule both ways (one SQL statement, and the explainer per patient)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.core.db import unit_of_work
from api.engines.rules import LocationDay, compile_rule, explain, parse_rule
from api.practice import ingest
from api.practice.models import Patient
from api.segments import repository
from api.segments.snapshots import build_snapshot

TODAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # 12:00 in Chicago


def day(offset: int, base: dt.date = TODAY) -> str:
    return (base + dt.timedelta(days=offset)).isoformat()


def doc(*predicates: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "rule": {"all": list(predicates)}}


def p(field_name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field_name, "op": op, "value": value}


@dataclass
class Mirror:
    """One tenant's location; `ids` maps each patient's external id to our id."""

    sessions: async_sessionmaker[AsyncSession]
    tenant_id: str
    location_id: str
    time_zone: str
    ids: dict[str, str] = field(default_factory=dict)

    async def load(self, entity: str, rows: list[dict[str, Any]], **kw: Any) -> None:
        async with unit_of_work(self.sessions, self.tenant_id) as session:
            await ingest.sync_batch(
                session,
                tenant_id=self.tenant_id,
                location_id=self.location_id,
                entity=entity,
                rows=rows,
                now=kw.pop("now", NOW),
                **kw,
            )
        if entity == "patients":
            async with unit_of_work(self.sessions, self.tenant_id) as session:
                stmt = select(Patient.external_id, Patient.id).where(
                    Patient.tenant_id == self.tenant_id, Patient.location_id == self.location_id
                )
                self.ids.update({row[0]: row[1] for row in await session.execute(stmt)})

    async def id_of(self, table: str, external_id: str) -> str:
        from sqlalchemy import text

        async with unit_of_work(self.sessions, self.tenant_id) as session:
            sql = f"SELECT id FROM {table} WHERE tenant_id = :t AND external_id = :e"
            return (
                await session.execute(text(sql), {"t": self.tenant_id, "e": external_id})
            ).scalar_one()

    def external(self, patient_ids: set[str]) -> set[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id[i] for i in patient_ids}

    async def sql(self, document: dict[str, Any], today: dt.date = TODAY) -> set[str]:
        rule = parse_rule(document)
        compiled = compile_rule(
            rule,
            tenant_id=self.tenant_id,
            locations=[LocationDay(self.location_id, today, self.time_zone)],
        )
        async with unit_of_work(self.sessions, self.tenant_id) as session:
            rows = await repository.matching_patients(session, compiled)
        return self.external({patient_id for patient_id, _ in rows})

    async def explained(self, document: dict[str, Any], today: dt.date = TODAY) -> set[str]:
        rule = parse_rule(document)
        matched = set()
        async with unit_of_work(self.sessions, self.tenant_id) as session:
            stmt = select(Patient).where(
                Patient.tenant_id == self.tenant_id,
                Patient.location_id == self.location_id,
                Patient.deleted_at.is_(None),
            )
            for patient in (await session.execute(stmt)).scalars().all():
                records = await repository.patient_records(session, patient)
                snapshot = build_snapshot(patient, records, self.time_zone)
                if explain(rule, snapshot, today).matched:
                    matched.add(patient.id)
        return self.external(matched)

    async def both(self, document: dict[str, Any], today: dt.date = TODAY) -> set[str]:
        """The matching external ids; SQL and the explainer must agree."""
        by_sql = await self.sql(document, today)
        by_explainer = await self.explained(document, today)
        assert by_sql == by_explainer, (document, by_sql, by_explainer)
        return by_sql


MakeMirror = Callable[..., Awaitable[Mirror]]


@pytest.fixture
def make_mirror(sessions, make_tenant, make_location) -> MakeMirror:
    async def _make(time_zone: str = "America/Chicago", name: str = "Mirror Dental") -> Mirror:
        tenant = await make_tenant(name)
        location = await make_location(tenant.id, "Main Street", time_zone)
        return Mirror(sessions, tenant.id, location.id, time_zone)

    return _make


def patient(external_id: str, **fields: Any) -> dict[str, Any]:
    row = {"external_id": external_id, "first_name": f"F{external_id}", "last_name": "Lee"}
    return row | fields
