"""A patient's location is checked by statement-level triggers, not a per-row foreign key
(alembic 0017): the same guarantees, tested here as a foreign key would be. Statements
run as the tables' owner unless they say otherwise, so row-level security is not what
refuses them."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.core.db import unit_of_work
from tests.practice.conftest import count_rows

INSERT = text(
    "INSERT INTO patients (tenant_id, id, location_id, external_id, first_name, last_name, "
    "status, communication_preference, sms_consent, email_consent) "
    "SELECT :tenant, 'pat_' || gen_random_uuid(), x, gen_random_uuid(), 'Ana', 'Rivera', "
    "'active', 'sms', true, true "
    "FROM unnest(CAST(:locations AS varchar[])) AS x"
)
CONSTRAINT = "fk_patients_tenant_id_location_id_locations"


def violation(caught: pytest.ExceptionInfo[DBAPIError]) -> Any:
    cause = caught.value.orig.__cause__  # type: ignore[union-attr]
    assert isinstance(cause, asyncpg.ForeignKeyViolationError)
    assert cause.constraint_name == CONSTRAINT
    return cause


async def insert(sessions: Any, tenant: str, locations: list[str]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(INSERT, {"tenant": tenant, "locations": locations})


async def test_a_patient_needs_a_location_of_its_tenant(sessions, practice, other_practice):
    here = practice.locations[0].id
    elsewhere = other_practice.locations[0].id
    await insert(sessions, practice.tenant.id, [here, practice.locations[1].id])
    for locations in ([here, "loc_nowhere"], [elsewhere]):
        with pytest.raises(DBAPIError) as caught:
            await insert(sessions, practice.tenant.id, locations)
        cause = violation(caught)
        assert 'is not present in table "locations"' in cause.detail
    # The refused statements wrote nothing, the good rows of the first one included.
    patients = "SELECT count(*) FROM patients WHERE tenant_id = :t"
    assert await count_rows(sessions, patients, t=practice.tenant.id) == 2


async def test_the_check_sees_locations_behind_row_level_security(sessions, practice):
    # As the app role with the tenant set (how every request writes): the tenant's own
    # location passes, a made-up one does not.
    async with unit_of_work(sessions, practice.tenant.id) as session:
        await session.execute(
            INSERT, {"tenant": practice.tenant.id, "locations": [practice.locations[0].id]}
        )
    with pytest.raises(DBAPIError) as caught:
        async with unit_of_work(sessions, practice.tenant.id) as session:
            await session.execute(
                INSERT, {"tenant": practice.tenant.id, "locations": ["loc_nowhere"]}
            )
    violation(caught)


async def test_moving_a_patient_needs_a_location_too(sessions, practice):
    main, lakeside = (location.id for location in practice.locations)
    await insert(sessions, practice.tenant.id, [main])
    move = text("UPDATE patients SET location_id = :to WHERE tenant_id = :t")
    with pytest.raises(DBAPIError) as caught:
        async with sessions() as session, session.begin():
            await session.execute(move, {"to": "loc_nowhere", "t": practice.tenant.id})
    violation(caught)
    async with sessions() as session, session.begin():
        await session.execute(move, {"to": lakeside, "t": practice.tenant.id})
    at_lakeside = "SELECT count(*) FROM patients WHERE tenant_id = :t AND location_id = :l"
    assert await count_rows(sessions, at_lakeside, t=practice.tenant.id, l=lakeside) == 1


async def test_deleting_a_location_deletes_its_patients(sessions, practice):
    main, lakeside = (location.id for location in practice.locations)
    await insert(sessions, practice.tenant.id, [main, lakeside])
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM locations WHERE id = :l"), {"l": main})
    left = "SELECT location_id FROM patients WHERE tenant_id = :t"
    async with sessions() as session:
        rows = (await session.execute(text(left), {"t": practice.tenant.id})).scalars().all()
    assert rows == [lakeside]


async def test_a_location_named_by_patients_keeps_its_id(sessions, practice):
    main = practice.locations[0].id
    await insert(sessions, practice.tenant.id, [main])
    with pytest.raises(DBAPIError) as caught:
        async with sessions() as session, session.begin():
            await session.execute(
                text("UPDATE locations SET id = 'loc_renamed' WHERE id = :l"), {"l": main}
            )
    violation(caught)


async def test_deleting_a_tenant_deletes_its_patients_and_what_names_them(
    sessions, practice, other_practice
):
    # Campaign recipients name patients (no cascade) and go with the tenant's campaigns:
    # the patients' own deletion must wait for them, as a foreign key's cascade does.
    main = practice.locations[0].id
    tenant = practice.tenant.id
    await insert(sessions, tenant, [main])
    await insert(sessions, other_practice.tenant.id, [other_practice.locations[0].id])
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO campaigns (tenant_id, id, name, channels, campaign_type, "
                "location_ids, status, created_by, send_round) VALUES (:t, 'cmp_1', 'Recall', "
                "ARRAY['sms'], 'instant', ARRAY[:l], 'draft', 'test', 1)"
            ),
            {"t": tenant, "l": main},
        )
        await session.execute(
            text(
                "INSERT INTO campaign_recipients (tenant_id, campaign_id, send_round, "
                "patient_id, location_id, channel, status) "
                "SELECT tenant_id, 'cmp_1', 1, id, location_id, 'sms', 'pending' FROM patients "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant},
        )
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM tenants WHERE id = :t"), {"t": tenant})
    for table in ("patients", "campaign_recipients", "locations"):
        assert (
            await count_rows(
                sessions, f"SELECT count(*) FROM {table} WHERE tenant_id = :t", t=tenant
            )
            == 0
        )
    other = "SELECT count(*) FROM patients WHERE tenant_id = :t"
    assert await count_rows(sessions, other, t=other_practice.tenant.id) == 1


async def test_locations_are_not_truncated_from_under_patients(sessions, practice):
    await insert(sessions, practice.tenant.id, [practice.locations[0].id])
    with pytest.raises(DBAPIError) as caught:
        async with sessions() as session, session.begin():
            await session.execute(text("TRUNCATE locations CASCADE"))
    assert isinstance(caught.value.orig.__cause__, asyncpg.FeatureNotSupportedError)
    assert await count_rows(sessions, "SELECT count(*) FROM patients") >= 1
