"""viewer, location and locations over /graphql answer what REST answers."""

from __future__ import annotations

from graphql import get_introspection_query

from tests.graphql.conftest import only_error

LOCATION_FIELDS = """
  id name timezone smsRegistrationComplete phone
  address { line1 line2 city region postalCode country }
"""

VIEWER = f"""
query {{
  viewer {{
    tenant {{ id name kind }}
    principalType clientId userId scopes allLocations
    locations {{ {LOCATION_FIELDS} }}
  }}
}}
"""


def rest_location(location: dict) -> dict:
    """A REST location (snake_case) in the GraphQL shape (camelCase)."""
    address = location["address"]
    return {
        "id": location["id"],
        "name": location["name"],
        "timezone": location["timezone"],
        "smsRegistrationComplete": location["sms_registration_complete"],
        "phone": location["phone"],
        "address": {
            "line1": address["line1"],
            "line2": address["line2"],
            "city": address["city"],
            "region": address["region"],
            "postalCode": address["postal_code"],
            "country": address["country"],
        },
    }


async def test_viewer_equals_v1_me(client, gql, practice):
    me = (await client.get("/v1/me", headers=practice.headers)).json()
    body = await gql.execute(VIEWER, headers=practice.headers)
    assert "errors" not in body, body
    assert body["data"]["viewer"] == {
        "tenant": {**me["tenant"], "kind": me["tenant"]["kind"].upper()},
        "principalType": me["principal_type"].upper(),
        "clientId": me["client_id"],
        "userId": me["user_id"],
        "scopes": me["scopes"],
        "allLocations": me["all_locations"],
        "locations": [rest_location(loc) for loc in me["locations"]],
    }
    assert len(me["locations"]) == 2


async def test_location_by_id(client, gql, practice):
    main = practice.locations[0]
    rest = (await client.get(f"/v1/locations/{main.id}", headers=practice.headers)).json()
    query = f"query($id: ID!) {{ location(id: $id) {{ {LOCATION_FIELDS} }} }}"
    body = await gql.execute(query, {"id": main.id}, practice.headers)
    assert body == {"data": {"location": rest_location(rest)}}


async def test_another_tenants_location_is_not_found(gql, practice, other_practice):
    foreign = other_practice.locations[0]
    body = await gql.execute(
        "query($id: ID!) { location(id: $id) { id name } }", {"id": foreign.id}, practice.headers
    )
    assert body["data"] == {"location": None}
    error = only_error(body)
    assert error["path"] == ["location"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["status"] == 404
    assert error["extensions"]["type"].endswith("/not-found")
    assert "Elsewhere" not in str(body)


async def test_location_outside_the_tokens_locations_is_not_found(gql, practice, make_token):
    main, lakeside = practice.locations
    token = await make_token(practice.tenant.id, ["schedule:read"], [main.id])
    headers = {"Authorization": f"Bearer {token}"}
    query = "query($id: ID!) { location(id: $id) { id } }"
    hidden = await gql.execute(query, {"id": lakeside.id}, headers)
    assert only_error(hidden)["extensions"]["code"] == "NOT_FOUND"
    visible = await gql.execute(query, {"id": main.id}, headers)
    assert visible == {"data": {"location": {"id": main.id}}}
    listed = await gql.execute("{ locations { nodes { id } nextCursor } }", headers=headers)
    assert listed["data"]["locations"] == {"nodes": [{"id": main.id}], "nextCursor": None}


async def test_locations_paginate_like_rest(client, gql, practice, make_location):
    for i in range(5):
        await make_location(practice.tenant.id, f"Branch {i}", "America/Chicago")
    query = """
      query($first: Int!, $after: String) {
        locations(first: $first, after: $after) { nodes { id name } nextCursor }
      }
    """
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = await gql.execute(query, {"first": 3, "after": after}, practice.headers)
        assert "errors" not in body, body
        page = body["data"]["locations"]
        assert len(page["nodes"]) <= 3
        seen += [node["id"] for node in page["nodes"]]
        pages += 1
        after = page["nextCursor"]
        if after is None:
            break
    rest = (await client.get("/v1/locations", headers=practice.headers)).json()
    assert pages == 3
    assert seen == [loc["id"] for loc in rest["data"]] == sorted(seen)
    assert len(seen) == 7


async def test_bad_pagination_names_the_argument(gql, practice):
    too_many = await gql.execute(
        "{ locations(first: 1001) { nodes { id } } }", headers=practice.headers
    )
    error = only_error(too_many)
    assert error["extensions"]["code"] == "VALIDATION_ERROR"
    assert error["extensions"]["status"] == 422
    assert [e["field"] for e in error["extensions"]["errors"]] == ["first"]
    garbage = await gql.execute(
        '{ locations(after: "!!garbage") { nodes { id } } }', headers=practice.headers
    )
    assert [e["field"] for e in only_error(garbage)["extensions"]["errors"]] == ["after"]


async def test_sibling_fields_share_one_session(gql, practice):
    """Resolvers of one operation run concurrently; they take turns on the session."""
    main = practice.locations[0]
    query = """
      query($id: ID!) {
        viewer { clientId locations { id } }
        a: location(id: $id) { name }
        b: location(id: $id) { timezone }
        locations(first: 1) { nodes { id } nextCursor }
      }
    """
    body = await gql.execute(query, {"id": main.id}, practice.headers)
    assert "errors" not in body, body
    assert body["data"]["a"] == {"name": "Main Street"}
    assert body["data"]["b"] == {"timezone": "America/Chicago"}
    assert body["data"]["locations"]["nextCursor"] is not None


async def test_without_a_token_the_query_is_unauthenticated(gql):
    response = await gql.post("{ viewer { clientId } }")
    # Documented choice: HTTP 200 with a GraphQL error, as GraphQL clients expect.
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    error = only_error(body)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["status"] == 401


async def test_an_unknown_token_is_unauthenticated(gql):
    body = await gql.execute(
        "{ locations { nodes { id } } }", headers={"Authorization": "Bearer cfat_nope"}
    )
    assert only_error(body)["extensions"]["code"] == "UNAUTHENTICATED"


async def test_graphiql_loads_in_a_browser_without_a_token(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_queries_work_over_get(client, practice):
    response = await client.get(
        "/graphql", params={"query": "{ viewer { clientId } }"}, headers=practice.headers
    )
    assert response.status_code == 200
    assert response.json()["data"]["viewer"]["clientId"]


async def test_introspection_stays_on_within_the_default_limits(gql):
    body = await gql.execute(get_introspection_query(descriptions=True))
    assert "errors" not in body, body
    types = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Viewer", "Location", "LocationConnection", "Tenant", "Address"} <= types
