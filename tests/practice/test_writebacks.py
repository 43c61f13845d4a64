from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text

from api.core.db import unit_of_work
from api.practice.writeback import enqueue_writeback


@pytest.fixture
def enqueue(sessions, practice):
    async def _enqueue(count: int = 1, location_index: int = 0) -> list[str]:
        ids = []
        async with unit_of_work(sessions, practice.tenant.id) as session:
            for i in range(count):
                item = await enqueue_writeback(
                    session,
                    tenant_id=practice.tenant.id,
                    location_id=practice.locations[location_index].id,
                    kind="appointment_create",
                    payload={"patient_id": f"pat_{i}", "start_at": "2026-11-24T15:00:00Z"},
                )
                ids.append(item.id)
        return ids

    return _enqueue


async def _claim(client, practice, limit=10, lease_seconds=60, headers=None, location=0):
    response = await client.post(
        "/v1/sync/writebacks/claim",
        json={
            "location_id": practice.locations[location].id,
            "limit": limit,
            "lease_seconds": lease_seconds,
        },
        headers=headers or practice.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _ack(client, practice, writeback_id, lease_id, headers=None, **body):
    return await client.post(
        f"/v1/sync/writebacks/{writeback_id}/ack",
        json={"lease_id": lease_id, **body},
        headers=headers or practice.headers,
    )


async def test_pending_list_claim_and_ack(client, practice, enqueue):
    [wb] = await enqueue()
    location = practice.locations[0].id
    pending = await client.get(
        f"/v1/sync/locations/{location}/writebacks", headers=practice.headers
    )
    assert [w["id"] for w in pending.json()["data"]] == [wb]
    claim = await _claim(client, practice)
    assert [w["id"] for w in claim["data"]] == [wb]
    assert claim["data"][0]["status"] == "claimed" and claim["data"][0]["attempts"] == 1
    pending = await client.get(
        f"/v1/sync/locations/{location}/writebacks", headers=practice.headers
    )
    assert pending.json()["data"] == []
    acked = await _ack(
        client, practice, wb, claim["lease_id"], outcome="succeeded", pms_id="OD-991"
    )
    assert acked.status_code == 200, acked.text
    assert (acked.json()["status"], acked.json()["pms_id"]) == ("succeeded", "OD-991")
    state = (await client.get(f"/v1/writebacks/{wb}", headers=practice.headers)).json()
    assert state["status"] == "succeeded" and state["completed_at"] is not None


async def test_two_bridges_never_get_the_same_item(client, practice, enqueue, make_token):
    ids = await enqueue(10)
    other = {"Authorization": f"Bearer {await make_token(practice.tenant.id, ['pms:sync'])}"}
    first, second = await asyncio.gather(
        _claim(client, practice, limit=10), _claim(client, practice, limit=10, headers=other)
    )
    a = {w["id"] for w in first["data"]}
    b = {w["id"] for w in second["data"]}
    assert not a & b
    assert a | b == set(ids)


async def test_expired_lease_returns_the_item_and_old_holder_gets_409(client, practice, enqueue):
    [wb] = await enqueue()
    first = await _claim(client, practice, lease_seconds=30)
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=31), tick=True):
        state = (await client.get(f"/v1/writebacks/{wb}", headers=practice.headers)).json()
        assert state["status"] == "pending"
        second = await _claim(client, practice, lease_seconds=30)
        assert [w["id"] for w in second["data"]] == [wb]
        assert second["data"][0]["attempts"] == 2
        late = await _ack(client, practice, wb, first["lease_id"], outcome="succeeded", pms_id="X")
        assert late.status_code == 409
        assert late.json()["type"].endswith("/writeback-lease-conflict")
        ok = await _ack(
            client, practice, wb, second["lease_id"], outcome="failed", reason="Op busy"
        )
        assert ok.status_code == 200
        assert ok.json()["failure_reason"] == "Op busy"


async def test_a_late_ack_is_accepted_while_nobody_reclaimed(client, practice, enqueue):
    [wb] = await enqueue()
    claim = await _claim(client, practice, lease_seconds=30)
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5), tick=True):
        response = await _ack(
            client, practice, wb, claim["lease_id"], outcome="succeeded", pms_id="7"
        )
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


async def test_second_ack_is_harmless_and_a_different_outcome_conflicts(client, practice, enqueue):
    [wb] = await enqueue()
    lease = (await _claim(client, practice))["lease_id"]
    first = await _ack(client, practice, wb, lease, outcome="succeeded", pms_id="OD-1")
    again = await _ack(client, practice, wb, lease, outcome="succeeded", pms_id="OD-1")
    assert again.status_code == 200 and again.json() == first.json()
    contrary = await _ack(client, practice, wb, lease, outcome="failed", reason="?")
    assert contrary.status_code == 409


async def test_ack_of_an_unclaimed_item_conflicts_and_failed_needs_a_reason(
    client, practice, enqueue
):
    [wb] = await enqueue()
    unclaimed = await _ack(client, practice, wb, "lease_nope", outcome="succeeded", pms_id="1")
    assert unclaimed.status_code == 409
    lease = (await _claim(client, practice))["lease_id"]
    no_reason = await _ack(client, practice, wb, lease, outcome="failed")
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"


async def test_claims_and_reads_stay_inside_tenant_and_locations(
    client, practice, other_practice, enqueue, make_token
):
    [wb] = await enqueue(location_index=1)
    assert (
        await client.get(f"/v1/writebacks/{wb}", headers=other_practice.headers)
    ).status_code == 404
    main_only = await make_token(practice.tenant.id, ["pms:sync"], [practice.locations[0].id])
    headers = {"Authorization": f"Bearer {main_only}"}
    assert (await client.get(f"/v1/writebacks/{wb}", headers=headers)).status_code == 404
    refused = await client.post(
        "/v1/sync/writebacks/claim",
        json={"location_id": practice.locations[1].id},
        headers=headers,
    )
    assert refused.status_code == 404
    foreign = await client.post(
        "/v1/sync/writebacks/claim",
        json={"location_id": practice.locations[1].id},
        headers=other_practice.headers,
    )
    assert foreign.status_code == 404
    ack = await _ack(
        client, practice, wb, "lease_x", headers=other_practice.headers, outcome="succeeded"
    )
    assert ack.status_code == 404


@pytest.mark.scopes("patients:read")
async def test_bridge_endpoints_need_pms_sync(client, practice):
    response = await client.post(
        "/v1/sync/writebacks/claim",
        json={"location_id": practice.locations[0].id},
        headers=practice.headers,
    )
    assert response.status_code == 403


async def test_outcomes_become_events(client, practice, enqueue, sessions):
    [wb] = await enqueue()
    lease = (await _claim(client, practice))["lease_id"]
    await _ack(client, practice, wb, lease, outcome="succeeded", pms_id="OD-5")
    async with sessions() as session:
        rows = (await session.execute(text("SELECT type, data FROM events"))).all()
    assert [(r.type, r.data["writeback_id"], r.data["pms_id"]) for r in rows] == [
        ("writeback.succeeded", wb, "OD-5")
    ]
