"""Idempotency-Key on creating POSTs, through a test route that writes a Location row in
the request's own transaction."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pydantic_core
import pytest
from sqlalchemy import func, select, update

from api.core import idempotency
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import IdempotencyRecord
from api.tenancy.models import Location
from tests.core import routes
from tests.core.conftest import assert_problem

URL = "/v1/_test/locations"


def _headers(practice, key: str | None) -> dict[str, str]:
    return practice.headers | ({"Idempotency-Key": key} if key else {})


async def _count(sessions, name: str) -> int:
    async with unit_of_work(sessions) as session:
        stmt = select(func.count()).select_from(Location).where(Location.name == name)
        return int((await session.execute(stmt)).scalar_one())


async def test_missing_key_is_a_400_problem(core_client, practice, sessions):
    response = await core_client.post(URL, json={"name": "No Key"}, headers=practice.headers)
    body = assert_problem(response, 400)
    assert body["type"].endswith("/idempotency-key-required")
    assert await _count(sessions, "No Key") == 0


async def test_same_key_and_body_replays_and_writes_once(core_client, practice, sessions):
    key = str(uuid.uuid4())
    first = await core_client.post(URL, json={"name": "Replay"}, headers=_headers(practice, key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = await core_client.post(URL, json={"name": "Replay"}, headers=_headers(practice, key))
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == "application/json"
    assert second.json() == first.json()
    assert await _count(sessions, "Replay") == 1


async def test_equivalent_json_replays(core_client, practice, sessions):
    key = str(uuid.uuid4())
    headers = _headers(practice, key) | {"Content-Type": "application/json"}
    raw_a = b'{"name": "Same", "timezone": "America/Denver"}'
    raw_b = b'{\n  "timezone":"America/Denver",\n  "name":"Same"\n}'
    first = await core_client.post(URL, content=raw_a, headers=headers)
    second = await core_client.post(URL, content=raw_b, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert await _count(sessions, "Same") == 1


def test_a_parsed_body_has_the_fingerprint_of_its_bytes():
    raw = b'{"b": [1, 2.5, "\\u00e9", -0.0, 1e300], "a": {"y": null, "x": true}}'
    reordered = b'{"a":{"x":true,"y":null},\n "b":[1,2.5,"\xc3\xa9",-0.0,1e300]}'
    by_bytes = idempotency.fingerprint("POST", "/v1/x", raw)
    assert by_bytes == idempotency.fingerprint("POST", "/v1/x", reordered)
    for parse in (json.loads, pydantic_core.from_json):
        assert idempotency.json_fingerprint("POST", "/v1/x", parse(raw)) == by_bytes
    assert idempotency.json_fingerprint("POST", "/v1/y", json.loads(raw)) != by_bytes


async def test_a_json_body_is_not_parsed_again_for_its_fingerprint(
    core_client, practice, sessions, monkeypatch: pytest.MonkeyPatch
):
    # FastAPI parsed it already; the fingerprint takes that value (the raw-bytes path
    # stays for forms and bodies that are not JSON).
    def unparsed(*args: object) -> str:
        raise AssertionError("the body was fingerprinted from its bytes")

    monkeypatch.setattr(idempotency, "fingerprint", unparsed)
    key = str(uuid.uuid4())
    first = await core_client.post(URL, json={"name": "Parsed"}, headers=_headers(practice, key))
    again = await core_client.post(URL, json={"name": "Parsed"}, headers=_headers(practice, key))
    assert first.status_code == again.status_code == 201, first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert await _count(sessions, "Parsed") == 1


async def test_same_key_different_body_is_422(core_client, practice, sessions):
    key = str(uuid.uuid4())
    first = await core_client.post(URL, json={"name": "One"}, headers=_headers(practice, key))
    assert first.status_code == 201
    other = await core_client.post(URL, json={"name": "Two"}, headers=_headers(practice, key))
    body = assert_problem(other, 422)
    assert body["type"].endswith("/idempotency-key-reused")
    assert await _count(sessions, "Two") == 0


async def test_concurrent_request_with_the_key_in_flight_is_409(core_client, practice, sessions):
    gate = f"gate-{uuid.uuid4().hex}"
    routes.ENTERED[gate], routes.RELEASE[gate] = asyncio.Event(), asyncio.Event()
    key = str(uuid.uuid4())
    payload = {"name": "Slow", "wait_for": gate}
    try:
        first = asyncio.create_task(
            core_client.post(URL, json=payload, headers=_headers(practice, key))
        )
        await asyncio.wait_for(routes.ENTERED[gate].wait(), 10)
        second = await core_client.post(URL, json=payload, headers=_headers(practice, key))
        body = assert_problem(second, 409)
        assert body["type"].endswith("/idempotency-key-in-flight")
        assert second.headers["retry-after"] == "1"
        routes.RELEASE[gate].set()
        assert (await first).status_code == 201
    finally:
        routes.RELEASE[gate].set()
        routes.ENTERED.pop(gate), routes.RELEASE.pop(gate)
    third = await core_client.post(URL, json=payload, headers=_headers(practice, key))
    assert third.headers["idempotent-replayed"] == "true"
    assert await _count(sessions, "Slow") == 1


async def test_failed_request_releases_the_key_and_writes_nothing(core_client, practice, sessions):
    key = str(uuid.uuid4())
    failed = await core_client.post(
        URL, json={"name": "Fixed", "fail_after_write": True}, headers=_headers(practice, key)
    )
    assert assert_problem(failed, 422)["errors"] == [
        {"field": "fail_after_write", "message": "set"}
    ]
    # The handler had inserted the row: the rollback took it away.
    assert await _count(sessions, "Fixed") == 0
    async with unit_of_work(sessions) as session:
        stmt = select(IdempotencyRecord).where(IdempotencyRecord.key == key)
        assert (await session.execute(stmt)).scalar_one_or_none() is None
    retry = await core_client.post(URL, json={"name": "Fixed"}, headers=_headers(practice, key))
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert await _count(sessions, "Fixed") == 1


async def test_keys_are_per_caller(core_client, practice, make_token, sessions):
    other_token = await make_token(practice.tenant.id)
    key = "shared-key-1"
    mine = await core_client.post(URL, json={"name": "Mine"}, headers=_headers(practice, key))
    theirs = await core_client.post(
        URL,
        json={"name": "Theirs"},
        headers={"Authorization": f"Bearer {other_token}", "Idempotency-Key": key},
    )
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert await _count(sessions, "Mine") == await _count(sessions, "Theirs") == 1


async def test_expired_record_is_replaced(core_client, practice, sessions):
    key = str(uuid.uuid4())
    first = await core_client.post(URL, json={"name": "Old"}, headers=_headers(practice, key))
    assert first.status_code == 201
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    # After expiry the key is free again, even for another body.
    again = await core_client.post(URL, json={"name": "New"}, headers=_headers(practice, key))
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    async with unit_of_work(sessions) as session:
        record = (
            await session.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
        ).scalar_one()
    assert record.status == "completed" and record.expires_at > utcnow() + timedelta(hours=23)
    assert b'"New"' in (record.response_body or b"")


async def test_invalid_key_names_the_header(core_client, practice):
    response = await core_client.post(
        URL, json={"name": "X"}, headers=_headers(practice, "k" * 300)
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "Idempotency-Key"


async def test_multipart_file_and_form_endpoint_replays(core_client, practice, sessions):
    # Each request gets its own multipart boundary, as real clients do on a retry.
    url, key = "/v1/_test/uploads", str(uuid.uuid4())
    files = {"file": ("patients.csv", b"Patient ID,First Name\n1,Ann\n", "text/csv")}
    first = await core_client.post(
        url, files=files, data={"name": "Upload"}, headers=_headers(practice, key)
    )
    assert first.status_code == 201, first.text
    assert first.json()["size"] == 28
    second = await core_client.post(
        url, files=files, data={"name": "Upload"}, headers=_headers(practice, key)
    )
    assert second.status_code == 201, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert await _count(sessions, "Upload") == 1
    changed = {"file": ("patients.csv", b"Patient ID,First Name\n2,Bob\n", "text/csv")}
    other = await core_client.post(
        url, files=changed, data={"name": "Upload"}, headers=_headers(practice, key)
    )
    assert assert_problem(other, 422)["type"].endswith("/idempotency-key-reused")
    assert await _count(sessions, "Upload") == 1
