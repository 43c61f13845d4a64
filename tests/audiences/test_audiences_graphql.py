"""GraphQL parity: audiences and the do-not-contact list go through the same services
(and scopes) as REST."""

from __future__ import annotations

import pytest

from tests.audiences.conftest import make_segment, person
from tests.graphql.conftest import GraphQLClient, only_error


@pytest.fixture
def gql(client) -> GraphQLClient:
    return GraphQLClient(client)


CREATE = """
mutation($input: AudienceInput!) {
  createAudience(input: $input) {
    id name channel version total suppression { contactedWithinDays seenToday }
  }
}
"""


async def test_audience_lifecycle_over_graphql(gql, client, practice, load, run_burst):
    await load(practice, "patients", [person("ana", 1), person("bo", 2, mobile=None)])
    segment = await make_segment(client, practice)
    h = practice.headers
    created = await gql.execute(
        CREATE,
        {
            "input": {
                "segmentId": segment["id"],
                "channel": "SMS",
                "name": "Texts",
                "suppression": {"contactedWithinDays": 30},
            }
        },
        h,
    )
    assert "errors" not in created, created
    audience = created["data"]["createAudience"]
    assert (audience["channel"], audience["version"], audience["name"]) == ("SMS", 0, "Texts")
    assert audience["suppression"] == {"contactedWithinDays": 30, "seenToday": True}

    preview = await gql.execute(
        "query($id: ID!) { previewAudience(id: $id) { matched count suppressed { noContact } } }",
        {"id": audience["id"]},
        h,
    )
    assert preview["data"]["previewAudience"] == {
        "matched": 2,
        "count": 1,
        "suppressed": {"noContact": 1},
    }
    draft = await gql.execute(
        "query($input: AudienceInput!) { previewAudience(input: $input) { count } }",
        {"input": {"segmentId": segment["id"], "channel": "EMAIL"}},
        h,
    )
    assert draft["data"]["previewAudience"]["count"] == 2

    queued = await gql.execute(
        "mutation($id: ID!) { rebuildAudience(id: $id) { status jobId locationIds } }",
        {"id": audience["id"]},
        h,
    )
    assert queued["data"]["rebuildAudience"]["status"] == "queued"
    assert await run_burst("default") == 1

    read = await gql.execute(
        """query($id: ID!) {
          audience(id: $id) { version total dataAsOf }
          audiences(first: 5) { nodes { id } }
          audienceMembers(id: $id, first: 10) { version nodes { firstName mobile } }
          audienceChanges(id: $id, sinceVersion: 0) { added removed nodes { change reason } }
        }""",
        {"id": audience["id"]},
        h,
    )
    assert "errors" not in read, read
    data = read["data"]
    assert (data["audience"]["version"], data["audience"]["total"]) == (1, 1)
    assert [n["id"] for n in data["audiences"]["nodes"]] == [audience["id"]]
    assert data["audienceMembers"]["nodes"] == [{"firstName": "Ana", "mobile": "+15125550001"}]
    assert data["audienceChanges"]["added"] == 1
    assert data["audienceChanges"]["nodes"] == [{"change": "added", "reason": "matched_rule"}]

    deleted = await gql.execute(
        "mutation($id: ID!) { deleteAudience(id: $id) }", {"id": audience["id"]}, h
    )
    assert deleted["data"]["deleteAudience"] == audience["id"]
    gone = await gql.execute(
        "query($id: ID!) { audience(id: $id) { id } }", {"id": audience["id"]}, h
    )
    assert only_error(gone)["extensions"]["code"] == "NOT_FOUND"


async def test_do_not_contact_over_graphql(gql, practice):
    h = practice.headers
    added = await gql.execute(
        "mutation($input: DoNotContactInput!) { addDoNotContact(input: $input) { id phone } }",
        {"input": {"phone": "(512) 555-0100"}},
        h,
    )
    entry = added["data"]["addDoNotContact"]
    assert entry["phone"] == "+15125550100"
    listed = await gql.execute("{ doNotContactEntries { nodes { id } nextCursor } }", None, h)
    assert listed["data"]["doNotContactEntries"]["nodes"] == [{"id": entry["id"]}]
    bad = await gql.execute(
        "mutation($input: DoNotContactInput!) { addDoNotContact(input: $input) { id } }",
        {"input": {"phone": "nope"}},
        h,
    )
    error = only_error(bad)
    assert error["extensions"]["status"] == 422
    assert error["extensions"]["errors"][0]["field"] == "phone"
    removed = await gql.execute(
        "mutation($id: ID!) { removeDoNotContact(id: $id) }", {"id": entry["id"]}, h
    )
    assert removed["data"]["removeDoNotContact"] == entry["id"]


async def test_scopes_and_tenants_over_graphql(gql, client, practice, other_practice, make_token):
    segment = await make_segment(client, practice)
    created = await gql.execute(
        CREATE, {"input": {"segmentId": segment["id"], "channel": "SMS"}}, practice.headers
    )
    audience_id = created["data"]["createAudience"]["id"]
    review = {
        "Authorization": f"Bearer {await make_token(practice.tenant.id, ['communications:review'])}"
    }
    members = await gql.execute(
        "query($id: ID!) { audienceMembers(id: $id) { version } }", {"id": audience_id}, review
    )
    error = only_error(members)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["required_scopes"] == ["audiences:read"]
    refused = await gql.execute(
        "mutation($id: ID!) { rebuildAudience(id: $id) { status } }", {"id": audience_id}, review
    )
    assert only_error(refused)["extensions"]["code"] == "FORBIDDEN"
    stranger = await gql.execute(
        "query($id: ID!) { audience(id: $id) { id } }", {"id": audience_id}, other_practice.headers
    )
    assert only_error(stranger)["extensions"]["code"] == "NOT_FOUND"
    bad = await gql.execute(
        CREATE,
        {
            "input": {
                "segmentId": segment["id"],
                "channel": "SMS",
                "suppression": {"contactedWithinDays": 0},
            }
        },
        practice.headers,
    )
    assert only_error(bad)["extensions"]["status"] == 422
