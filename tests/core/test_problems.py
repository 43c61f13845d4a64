"""Every error is an RFC 9457 problem: unknown routes, wrong methods, bad bodies and
parameters, and unexpected exceptions (masked, with a request id)."""

from __future__ import annotations

from tests.core.conftest import assert_problem


async def test_unknown_route_is_a_404_problem(core_client):
    response = await core_client.get("/v1/no-such-thing")
    body = assert_problem(response, 404)
    assert body["type"].endswith("/not-found")
    assert body["detail"] == "There is no resource at /v1/no-such-thing."
    assert body["instance"] == "/v1/no-such-thing"


async def test_wrong_method_is_a_405_problem(core_client, practice):
    response = await core_client.delete("/v1/me", headers=practice.headers)
    body = assert_problem(response, 405)
    assert body["type"].endswith("/method-not-allowed")
    assert "DELETE is not allowed on /v1/me" in body["detail"]
    assert "GET" in response.headers["allow"]


async def test_malformed_json_names_the_body(core_client, practice):
    response = await core_client.post(
        "/v1/_test/locations",
        content=b'{"name": "Broken",',
        headers=practice.headers | {"Content-Type": "application/json", "Idempotency-Key": "k1"},
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [{"field": "body", "message": "The body is not valid JSON"}]


async def test_body_field_validation_names_the_field(core_client, practice):
    response = await core_client.post(
        "/v1/_test/locations",
        json={"timezone": "America/Chicago"},
        headers=practice.headers | {"Idempotency-Key": "k2"},
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["name"]


async def test_path_and_query_validation_name_the_field(core_client, practice):
    response = await core_client.get(
        "/v1/_test/items/abc", params={"count": 0}, headers=practice.headers
    )
    body = assert_problem(response, 422)
    assert sorted(e["field"] for e in body["errors"]) == ["count", "item_id"]
    assert "count" in body["detail"] and "item_id" in body["detail"]
    ok = await core_client.get("/v1/_test/items/7", params={"count": 2}, headers=practice.headers)
    assert ok.json() == {"item_id": 7, "count": 2}


async def test_unexpected_exception_is_a_masked_500(core_client, practice):
    response = await core_client.get(
        "/v1/_test/boom", headers=practice.headers | {"X-Request-Id": "req-boom-1"}
    )
    body = assert_problem(response, 500)
    assert body["type"].endswith("/internal-error")
    assert body["request_id"] == "req-boom-1"
    assert response.headers["x-request-id"] == "req-boom-1"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert "RuntimeError" not in response.text


async def test_a_nul_character_is_bad_input_not_a_server_error(client, practice):
    # Postgres refuses NUL in text; that is the caller's mistake, answered as a 422 problem.
    response = await client.get("/v1/events", params={"type": "a\x00b"}, headers=practice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://example.com/hook", "description": "x\u0000y", "event_types": ["*"]},
        headers=practice.headers,
    )
    assert response.status_code == 422, response.text


async def test_a_data_error_raised_by_the_driver_itself_is_a_422(core_client, practice):
    # The bulk paths use asyncpg directly, so its errors never pass through SQLAlchemy.
    response = await core_client.get("/v1/_test/driver/nul", headers=practice.headers)
    body = assert_problem(response, 422)
    assert "NUL" in body["detail"]
    other = await core_client.get("/v1/_test/driver/missing-table", headers=practice.headers)
    assert assert_problem(other, 500)["type"].endswith("/internal-error")
    assert "no_such_table" not in other.text
