"""GraphQL twins of the messaging reads: same services, same scopes, same tenant wall."""

from __future__ import annotations

import pytest

from tests.messaging.support import send

QUERY = """
query ($patient: String) {
  messages(patientId: $patient) { nodes { id status channel sourceKind bodyText } nextCursor }
  sandboxMessages { nodes { messageId toAddress bodyText } }
  templatePreview(request: {content: {channel: "sms", body: "Hi {{patient.first_name}}"}})
}
"""


async def gql(client, headers, query, variables=None):
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_messages_and_sandbox_over_graphql(
    client, practice, other_practice, sessions, settings, make_patient, send_jobs
):
    location = practice.locations[0]
    patient = await make_patient(practice.tenant.id, location.id)
    outcome = await send(sessions, settings, practice.tenant.id, location.id, patient.id)
    await send_jobs.run_due()
    data = (await gql(client, practice.headers, QUERY, {"patient": patient.id}))["data"]
    [node] = data["messages"]["nodes"]
    assert (node["id"], node["status"], node["sourceKind"]) == (
        outcome.message.id,
        "delivered",
        "campaign",
    )
    assert data["sandboxMessages"]["nodes"][0]["messageId"] == outcome.message.id
    assert data["templatePreview"]["sms"]["text"] == "Hi Jordan"
    theirs = (await gql(client, other_practice.headers, QUERY))["data"]
    assert theirs["messages"]["nodes"] == [] and theirs["sandboxMessages"]["nodes"] == []
    missing = await gql(
        client, other_practice.headers, f'{{ message(id: "{node["id"]}") {{ id }} }}'
    )
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.scopes("patients:read")
async def test_graphql_needs_communications_review(client, practice):
    out = await gql(client, practice.headers, "{ messages { nodes { id } } }")
    assert out["errors"][0]["extensions"]["code"] == "FORBIDDEN"
