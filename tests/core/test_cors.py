"""Publishable keys in the browser: preflights, Access-Control-Allow-Origin on actual
responses, origins, locations, scopes and revocation."""

from __future__ import annotations

from sqlalchemy import update

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.oauth2.models import PublishableKey
from tests.core.conftest import ORIGIN, assert_problem

EVIL = "https://evil.example"


def _preflight(origin: str, method: str = "GET", headers: str = "authorization") -> dict:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_preflight_with_key_from_an_allowed_origin(
    core_client, practice, make_publishable_key
):
    pk = await make_publishable_key(practice.tenant.id, [practice.locations[0].id])
    response = await core_client.options(
        "/v1/locations", params={"publishable_key": pk.key}, headers=_preflight(ORIGIN)
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["vary"] == "Origin"
    assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert "idempotency-key" in response.headers["access-control-allow-headers"]
    assert response.headers["x-request-id"]


async def test_preflight_without_key_is_allowed_for_widget_requests(core_client):
    response = await core_client.options(
        "/v1/locations",
        headers=_preflight(ORIGIN, "POST", "Authorization, Content-Type, Idempotency-Key"),
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_preflight_with_key_from_another_origin_is_refused(
    core_client, practice, make_publishable_key
):
    pk = await make_publishable_key(practice.tenant.id, [practice.locations[0].id])
    response = await core_client.options(
        "/v1/locations", params={"publishable_key": pk.key}, headers=_preflight(EVIL)
    )
    body = assert_problem(response, 403)
    assert EVIL in body["detail"]
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_refuses_other_methods_headers_paths_and_unknown_keys(core_client):
    refused = [
        ("/v1/locations", {}, _preflight(ORIGIN, "DELETE")),
        ("/v1/locations", {}, _preflight(ORIGIN, "GET", "authorization, x-admin")),
        ("/oauth/token", {}, _preflight(ORIGIN, "POST")),
        ("/v1/locations", {"publishable_key": "pk_unknown"}, _preflight(ORIGIN)),
    ]
    for path, params, headers in refused:
        response = await core_client.options(path, params=params, headers=headers)
        assert_problem(response, 403)
        assert "access-control-allow-origin" not in response.headers


async def test_get_with_key_from_allowed_origin_sees_only_its_locations(
    core_client, practice, other_practice, make_publishable_key
):
    main = practice.locations[0]
    pk = await make_publishable_key(practice.tenant.id, [main.id])
    by_query = core_client.get(
        "/v1/locations", params={"publishable_key": pk.key}, headers={"Origin": ORIGIN}
    )
    by_header = core_client.get(
        "/v1/locations", headers={"Origin": ORIGIN, "Authorization": f"Bearer {pk.key}"}
    )
    for response in (await by_query, await by_header):
        assert response.status_code == 200, response.text
        assert [loc["id"] for loc in response.json()["data"]] == [main.id]
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "Origin" in response.headers["vary"]
        exposed = response.headers["access-control-expose-headers"]
        assert "RateLimit-Remaining" in exposed and "X-Request-Id" in exposed
    # The other location of its tenant and another tenant's location answer 404 alike.
    for foreign in (practice.locations[1], other_practice.locations[0]):
        response = await core_client.get(
            f"/v1/locations/{foreign.id}",
            headers={"Origin": ORIGIN, "Authorization": f"Bearer {pk.key}"},
        )
        assert_problem(response, 404)


async def test_get_with_key_from_another_origin_is_a_403_without_cors(
    core_client, practice, make_publishable_key
):
    pk = await make_publishable_key(practice.tenant.id, [practice.locations[0].id])
    response = await core_client.get(
        "/v1/locations", headers={"Origin": EVIL, "Authorization": f"Bearer {pk.key}"}
    )
    body = assert_problem(response, 403)
    assert EVIL in body["detail"]
    assert "access-control-allow-origin" not in response.headers


async def test_oauth_token_gets_no_cors_headers(core_client, practice):
    response = await core_client.get("/v1/locations", headers=practice.headers | {"Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_key_refused_on_a_scope_protected_route(core_client, practice, make_publishable_key):
    pk = await make_publishable_key(practice.tenant.id, [practice.locations[0].id])
    response = await core_client.get(
        "/v1/_test/schedule", headers={"Origin": ORIGIN, "Authorization": f"Bearer {pk.key}"}
    )
    body = assert_problem(response, 403)
    assert "Publishable keys may only call the slot and booking endpoints" in body["detail"]
    # The same route answers a token holding the scope.
    ok = await core_client.get("/v1/_test/schedule", headers=practice.headers)
    assert ok.status_code == 200 and ok.json() == {"tenant_id": practice.tenant.id}


async def test_revoked_key_is_401(core_client, practice, make_publishable_key, sessions):
    pk = await make_publishable_key(practice.tenant.id, [practice.locations[0].id])
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(PublishableKey).where(PublishableKey.id == pk.id).values(revoked_at=utcnow())
        )
    response = await core_client.get(
        "/v1/locations", headers={"Origin": ORIGIN, "Authorization": f"Bearer {pk.key}"}
    )
    body = assert_problem(response, 401)
    assert "revoked" in body["detail"]
    preflight = await core_client.options(
        "/v1/locations", params={"publishable_key": pk.key}, headers=_preflight(ORIGIN)
    )
    assert_problem(preflight, 403)
