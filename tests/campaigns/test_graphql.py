"""GraphQL twins of the campaign API: the same services, scopes, tenant wall and field
problems as REST, from composing to per-patient results."""

from __future__ import annotations

import pytest

from api.campaigns.models import Campaign
from tests.campaigns.conftest import ACTIVE, SMS_BODY
from tests.messaging.support import count
from tests.messaging.test_graphql import gql

CREATE = """
mutation ($input: CampaignInput!) {
  createCampaign(input: $input) { id status channels sms recipients createdBy }
}
"""
RESULTS = """
query ($id: ID!) {
  campaign(id: $id) { status sendRound }
  campaignResults(id: $id) { status channels { channel recipients sent delivered } }
  campaignPatientResults(id: $id) { nodes { patientId channel status replied optedOut } }
  campaignCounts { active completed paused draft }
  campaigns(filter: {method: "sms"}) { nodes { id name } nextCursor }
}
"""


def _input(practice) -> dict:
    return {
        "name": "Fill the hygiene column",
        "channels": ["sms"],
        "campaignType": "instant",
        "locationIds": [practice.locations[0].id],
        "sms": {"channel": "sms", "body": SMS_BODY},
        "recipients": {"kind": "filters", "rule": ACTIVE},
    }


async def test_compose_submit_and_read_results_over_graphql(
    client, sms_ready, other_practice, make_patient, campaign_jobs
):
    practice = sms_ready
    patient = await make_patient(practice.tenant.id, practice.locations[0].id)
    created = (await gql(client, practice.headers, CREATE, {"input": _input(practice)}))["data"]
    campaign = created["createCampaign"]
    assert campaign["status"] == "DRAFT" and campaign["recipients"]["kind"] == "filters"
    cid = campaign["id"]

    review = await gql(
        client,
        practice.headers,
        """query ($id: ID!) {
          campaignSummary(id: $id) { totalRecipients smsRecipients excluded }
          campaignRecipients(id: $id, search: "rivera") { nodes { patientId excluded } }
        }""",
        {"id": cid},
    )
    assert review["data"]["campaignSummary"] == {
        "totalRecipients": 1,
        "smsRecipients": 1,
        "excluded": 0,
    }
    assert review["data"]["campaignRecipients"]["nodes"] == [
        {"patientId": patient.id, "excluded": False}
    ]
    count_query = "query ($request: JSON!) { campaignRecipientCount(request: $request) }"
    request = {
        "location_ids": [practice.locations[0].id],
        "channels": ["sms"],
        "recipients": {"kind": "filters", "rule": ACTIVE},
    }
    counted = await gql(client, practice.headers, count_query, {"request": request})
    assert counted["data"]["campaignRecipientCount"] == 1, counted
    # Without a location: the same field problem as REST.
    refused = await gql(
        client, practice.headers, count_query, {"request": request | {"location_ids": []}}
    )
    assert refused["errors"][0]["extensions"]["errors"][0]["field"] == "location_ids"

    variables = await gql(client, practice.headers, "{ templateVariables { name clinical } }")
    names = {v["name"]: v["clinical"] for v in variables["data"]["templateVariables"]}
    assert names["patient.first_name"] is False and names["treatment.amount"] is True

    submitted = await gql(
        client,
        practice.headers,
        "mutation ($id: ID!) { submitCampaign(id: $id) { status } }",
        {"id": cid},
    )
    assert submitted["data"]["submitCampaign"]["status"] == "SCHEDULED"
    await campaign_jobs.run_due()
    data = (await gql(client, practice.headers, RESULTS, {"id": cid}))["data"]
    assert data["campaign"] == {"status": "COMPLETED", "sendRound": 1}
    [sms] = data["campaignResults"]["channels"]
    assert sms["recipients"] == 1 and sms["sent"] + sms["delivered"] == 1
    assert data["campaignPatientResults"]["nodes"][0]["patientId"] == patient.id
    assert data["campaignCounts"]["completed"] == 1
    assert [n["id"] for n in data["campaigns"]["nodes"]] == [cid]

    theirs = await gql(client, other_practice.headers, RESULTS, {"id": cid})
    assert theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_bad_input_names_the_field_and_writes_nothing(client, sms_ready, sessions):
    practice = sms_ready
    bad = _input(practice) | {"sms": {"channel": "sms", "body": "Hi {{patient.nickname}}"}}
    answer = await gql(client, practice.headers, CREATE, {"input": bad})
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["errors"][0]["field"] == "sms.body"
    assert await count(sessions, Campaign) == 0


@pytest.mark.scopes("communications:review")
async def test_reviewers_cannot_compose_over_graphql(client, practice):
    answer = await gql(client, practice.headers, CREATE, {"input": _input(practice)})
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert answer["errors"][0]["extensions"]["required_scopes"] == ["communications:manage"]
