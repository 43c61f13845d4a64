"""The booking widget's page and its appointment-type list: self-bookable types only,
for tokens with schedule:read and for publishable keys (own locations, allowed origins),
404 for anyone else's location, the same answer over GraphQL."""

from __future__ import annotations

import pytest

from tests.booking.conftest import ORIGIN, push, widget_headers
from tests.core.conftest import assert_problem
from tests.graphql.conftest import GraphQLClient

TYPES = """query($loc: String!) {
  bookableAppointmentTypes(locationId: $loc) { types { id name durationMinutes } timeZone }
}"""


async def test_lists_only_live_self_bookable_types_by_name(client, mirror, sessions):
    response = await client.get(
        f"/v1/locations/{mirror.location_id}/appointment-types", headers=mirror.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "data": [
            {"id": mirror.types["clean"], "name": "Cleaning", "duration_minutes": 60},
            {"id": mirror.types["exam"], "name": "Exam", "duration_minutes": 30},
        ],
        "time_zone": "America/Chicago",
    }
    # A type the PMS deleted is no longer offered.
    await push(
        sessions, mirror.tenant_id, mirror.location_id, "appointment-types", [], deletes=["exam"]
    )
    again = await client.get(
        f"/v1/locations/{mirror.location_id}/appointment-types", headers=mirror.headers
    )
    assert [t["name"] for t in again.json()["data"]] == ["Cleaning"]


async def test_publishable_key_sees_its_locations_only(
    client, mirror, practice, other_practice, make_publishable_key
):
    widget = widget_headers(await make_publishable_key(practice.tenant.id, [mirror.location_id]))
    ok = await client.get(f"/v1/locations/{mirror.location_id}/appointment-types", headers=widget)
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert len(ok.json()["data"]) == 2
    for foreign in (practice.locations[1].id, other_practice.locations[0].id, "loc_missing"):
        response = await client.get(f"/v1/locations/{foreign}/appointment-types", headers=widget)
        assert_problem(response, 404)
    evil = widget | {"Origin": "https://evil.example"}
    assert_problem(
        await client.get(f"/v1/locations/{mirror.location_id}/appointment-types", headers=evil),
        403,
    )


async def test_another_tenant_gets_404(client, mirror, other_practice):
    response = await client.get(
        f"/v1/locations/{mirror.location_id}/appointment-types", headers=other_practice.headers
    )
    assert_problem(response, 404)


@pytest.mark.scopes("patients:read")
async def test_a_token_needs_schedule_read(client, mirror):
    response = await client.get(
        f"/v1/locations/{mirror.location_id}/appointment-types", headers=mirror.headers
    )
    body = assert_problem(response, 403)
    assert "schedule:read" in body["detail"]


async def test_unauthenticated_is_401(client, mirror):
    response = await client.get(f"/v1/locations/{mirror.location_id}/appointment-types")
    assert_problem(response, 401)


async def test_graphql_answers_the_same(client, mirror, practice, make_publishable_key):
    gql = GraphQLClient(client)
    widget = widget_headers(await make_publishable_key(practice.tenant.id, [mirror.location_id]))
    body = await gql.execute(TYPES, {"loc": mirror.location_id}, widget)
    assert "errors" not in body, body
    answer = body["data"]["bookableAppointmentTypes"]
    assert answer["timeZone"] == "America/Chicago"
    assert [(t["id"], t["name"], t["durationMinutes"]) for t in answer["types"]] == [
        (mirror.types["clean"], "Cleaning", 60),
        (mirror.types["exam"], "Exam", 30),
    ]
    hidden = await gql.execute(TYPES, {"loc": practice.locations[1].id}, widget)
    assert hidden["data"] is None and "no location" in hidden["errors"][0]["message"]


async def test_widget_page_and_assets_are_served_with_a_strict_policy(client):
    page = await client.get("/widget/loc_01ABC")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<label for="cf-type">' in page.text
    script = await client.get("/widget/assets/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "/v1/holds" in script.text
    assert (await client.get("/widget/assets/../../main.py")).status_code == 404
    assert (await client.get("/widget/assets/secrets.txt")).status_code == 404
    assert (await client.get("/widget/bad%20id")).status_code == 422
