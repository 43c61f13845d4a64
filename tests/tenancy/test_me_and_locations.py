from __future__ import annotations

import pytest


async def test_me_describes_the_token(client, practice):
    response = await client.get("/v1/me", headers=practice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant"] == {
        "id": practice.tenant.id,
        "name": "Bright Smiles Dental",
        "kind": "practice",
    }
    assert body["principal_type"] == "client"
    assert "communications:review" in body["scopes"]
    assert {loc["id"] for loc in body["locations"]} == {loc.id for loc in practice.locations}
    assert body["all_locations"] is True


async def test_me_without_token_is_a_problem(client):
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unauthorized")
    assert "Bearer" in response.headers["www-authenticate"]


async def test_me_with_unknown_token(client):
    response = await client.get("/v1/me", headers={"Authorization": "Bearer cfat_nope"})
    assert response.status_code == 401
    assert "invalid" in response.json()["detail"]


async def test_token_limited_to_a_location_sees_only_it(client, practice, make_token):
    main = practice.locations[0]
    token = await make_token(practice.tenant.id, ["schedule:read"], [main.id])
    headers = {"Authorization": f"Bearer {token}"}
    body = (await client.get("/v1/me", headers=headers)).json()
    assert [loc["id"] for loc in body["locations"]] == [main.id]
    assert body["all_locations"] is False
    other = practice.locations[1]
    assert (await client.get(f"/v1/locations/{other.id}", headers=headers)).status_code == 404
    assert (await client.get(f"/v1/locations/{main.id}", headers=headers)).status_code == 200


async def test_another_tenants_location_answers_404(client, practice, other_practice):
    foreign = other_practice.locations[0]
    response = await client.get(f"/v1/locations/{foreign.id}", headers=practice.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_locations_paginate_with_stable_cursor(client, practice, make_location):
    for i in range(5):
        await make_location(practice.tenant.id, f"Branch {i}", "America/Chicago")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/locations", headers=practice.headers, params=params)).json()
        seen += [loc["id"] for loc in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(seen)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"cursor": "!!garbage"}])
async def test_bad_pagination_names_the_field(client, practice, params):
    response = await client.get("/v1/locations", headers=practice.headers, params=params)
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == [next(iter(params))]
