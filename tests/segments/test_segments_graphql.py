"""GraphQL parity: segment queries and mutations call the same services as REST."""

from __future__ import annotations

import pytest

from tests.graphql.conftest import GraphQLClient, only_error
from tests.segments.test_segments_api import RULE, _owing_patients

SEGMENT_FIELDS = "id name ruleDoc: rule locationIds template refreshCadence refreshLocalTime"


@pytest.fixture
def gql(client) -> GraphQLClient:
    return GraphQLClient(client)


CREATE = f"""
mutation($input: SegmentInput!) {{ createSegment(input: $input) {{ {SEGMENT_FIELDS} }} }}
"""


async def test_segment_lifecycle_over_graphql(gql, practice, sessions):
    await _owing_patients(sessions, practice)
    h = practice.headers
    created = await gql.execute(CREATE, {"input": {"name": "Owes", "rule": RULE}}, h)
    segment = created["data"]["createSegment"]
    assert segment["ruleDoc"] == RULE and segment["refreshCadence"] == "DAILY"
    seg_id = segment["id"]

    read = await gql.execute(
        "query($id: ID!) { segment(id: $id) { name } segments(first: 5) { nodes { id } } }",
        {"id": seg_id},
        h,
    )
    assert "errors" not in read, read["errors"]
    assert read["data"]["segment"]["name"] == "Owes"
    assert [n["id"] for n in read["data"]["segments"]["nodes"]] == [seg_id]
    fields = await gql.execute("{ segmentFields { name operators } }", None, h)
    assert "overdue_hygiene" in {f["name"] for f in fields["data"]["segmentFields"]}

    preview = await gql.execute(
        "query($id: ID!) { previewSegment(id: $id) { count sample { name } dataAsOf } }",
        {"id": seg_id},
        h,
    )
    assert preview["data"]["previewSegment"]["count"] == 1
    unsaved = await gql.execute(
        "query($rule: JSON!) { previewSegment(rule: $rule) { count } }", {"rule": RULE}, h
    )
    assert unsaved["data"]["previewSegment"]["count"] == 1

    patients = (await gql.client.get("/v1/patients", headers=h)).json()["data"]
    rich = next(p["id"] for p in patients if p["external_id"] == "rich")
    explained = await gql.execute(
        "query($id: ID!, $p: ID!) { explainSegment(id: $id, patientId: $p) { matched tree } }",
        {"id": seg_id, "p": rich},
        h,
    )
    body = explained["data"]["explainSegment"]
    assert body["matched"] is True
    assert [c["pointer"] for c in body["tree"]["children"]] == ["/rule/all/0", "/rule/all/1"]

    updated = await gql.execute(
        'mutation($id: ID!) { updateSegment(id: $id, patch: {name: "Renamed", '
        "refreshCadence: WEEKLY}) { name refreshCadence } }",
        {"id": seg_id},
        h,
    )
    assert updated["data"]["updateSegment"] == {"name": "Renamed", "refreshCadence": "WEEKLY"}
    deleted = await gql.execute("mutation($id: ID!) { deleteSegment(id: $id) }", {"id": seg_id}, h)
    assert deleted["data"]["deleteSegment"] == seg_id
    gone = await gql.execute("query($id: ID!) { segment(id: $id) { id } }", {"id": seg_id}, h)
    assert only_error(gone)["extensions"]["code"] == "NOT_FOUND"


async def test_invalid_rule_errors_carry_pointers(gql, practice):
    bad = {"version": 1, "rule": {"any": [{"field": "age", "op": "gt", "value": "old"}]}}
    body = await gql.execute(CREATE, {"input": {"name": "Bad", "rule": bad}}, practice.headers)
    error = only_error(body)
    assert error["extensions"]["code"] == "VALIDATION_ERROR"
    assert error["extensions"]["errors"][0]["field"] == "/rule/any/0/value"


@pytest.mark.scopes("communications:review")
async def test_review_cannot_create_over_graphql(gql, practice):
    body = await gql.execute(CREATE, {"input": {"name": "X", "rule": RULE}}, practice.headers)
    error = only_error(body)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["required_scopes"] == ["communications:manage"]
