"""The second wall: even a query that forgets its tenant filter sees only its tenant's
rows, and cannot write rows for another tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError

from api.core.db import unit_of_work
from api.tenancy.models import Location, Tenant


async def test_unfiltered_query_sees_only_the_bound_tenant(sessions, practice, other_practice):
    async with unit_of_work(sessions, practice.tenant.id) as session:
        locations = (await session.execute(select(Location))).scalars().all()
        tenants = (await session.execute(select(Tenant))).scalars().all()
    assert {loc.tenant_id for loc in locations} == {practice.tenant.id}
    assert len(locations) == 2
    assert [t.id for t in tenants] == [practice.tenant.id]


async def test_cannot_write_a_row_for_another_tenant(sessions, practice, other_practice):
    with pytest.raises(ProgrammingError, match="row-level security"):
        async with unit_of_work(sessions, practice.tenant.id) as session:
            session.add(
                Location(
                    tenant_id=other_practice.tenant.id,
                    id="loc_intruder",
                    name="Intruder",
                    timezone="UTC",
                    sms_registration_complete=False,
                )
            )
            await session.flush()


async def test_wall_holds_after_a_commit_inside_the_unit_of_work(
    sessions, practice, other_practice
):
    async with unit_of_work(sessions, practice.tenant.id) as session:
        await session.commit()  # a new transaction begins: it must be narrowed again
        role = (await session.execute(text("SELECT current_user"))).scalar_one()
        locations = (await session.execute(select(Location))).scalars().all()
    assert role == "chairfill_app"
    assert {loc.tenant_id for loc in locations} == {practice.tenant.id}


async def test_system_unit_of_work_sees_every_tenant(sessions, practice, other_practice):
    async with unit_of_work(sessions) as session:
        tenants = (await session.execute(select(Tenant))).scalars().all()
    assert {t.id for t in tenants} == {practice.tenant.id, other_practice.tenant.id}
