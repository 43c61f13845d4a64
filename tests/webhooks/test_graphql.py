"""GraphQL parity: the webhook fields call the same services as REST."""

from __future__ import annotations

from strawberry.tools import merge_types

from api.auth.principal import Principal
from api.graphql.context import Context
from api.graphql.schema import build_schema
from api.tenancy.graphql import TenancyQuery
from api.webhooks.graphql import WebhooksMutation, WebhooksQuery


def _schema(settings):
    return build_schema(
        settings.graphql,
        query=merge_types("Query", (TenancyQuery, WebhooksQuery)),
        mutation=merge_types("Mutation", (WebhooksMutation,)),
    )


async def _run(
    schema, settings, sessions, tenant_id, document, scopes=("webhooks:manage",), **variables
):
    principal = Principal(
        tenant_id=tenant_id,
        kind="client",
        client_id="cli_graphql_test",
        scopes=frozenset(scopes),
        location_ids=None,
    )
    context = Context(settings=settings, sessions=sessions, principal=principal)
    result = await schema.execute(
        document, context_value=context, variable_values=variables or None
    )
    await context.finish(succeeded=not result.errors)
    return result


async def test_create_list_update_over_graphql(
    client, practice, other_practice, receiver, settings, sessions
):
    schema = _schema(settings)
    created = await _run(
        schema,
        settings,
        sessions,
        practice.tenant.id,
        "mutation ($url: String!) { createWebhookEndpoint(input: "
        '{url: $url, eventTypes: ["webhook.*"]}) { secret endpoint { id url eventTypes } } }',
        url=receiver.url(),
    )
    assert created.errors is None, created.errors
    made = created.data["createWebhookEndpoint"]
    assert made["secret"].startswith("whsec_")
    endpoint_id = made["endpoint"]["id"]

    rest = await client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=practice.headers)
    assert rest.json()["event_types"] == ["webhook.*"]

    updated = await _run(
        schema,
        settings,
        sessions,
        practice.tenant.id,
        "mutation ($id: ID!) { updateWebhookEndpoint(id: $id, "
        'patch: {description: "crm"}) { description eventTypes } }',
        id=endpoint_id,
    )
    assert updated.data["updateWebhookEndpoint"] == {
        "description": "crm",
        "eventTypes": ["webhook.*"],
    }
    listed = await _run(
        schema,
        settings,
        sessions,
        practice.tenant.id,
        "{ webhookEndpoints(first: 10) { nodes { id description } nextCursor } }",
    )
    assert listed.data["webhookEndpoints"]["nodes"] == [{"id": endpoint_id, "description": "crm"}]

    foreign = await _run(
        schema,
        settings,
        sessions,
        other_practice.tenant.id,
        "query ($id: ID!) { webhookEndpoint(id: $id) { id } }",
        id=endpoint_id,
    )
    assert foreign.errors[0].extensions["code"] == "NOT_FOUND"


async def test_graphql_validation_and_scope(practice, settings, sessions):
    schema = _schema(settings)
    bad = await _run(
        schema,
        settings,
        sessions,
        practice.tenant.id,
        'mutation { createWebhookEndpoint(input: {url: "https://example.com/h", '
        'eventTypes: ["invoice.*"]}) { secret } }',
    )
    assert bad.errors[0].extensions["code"] == "VALIDATION_ERROR"
    assert bad.errors[0].extensions["errors"][0]["field"] == "event_types.0"
    refused = await _run(
        schema,
        settings,
        sessions,
        practice.tenant.id,
        "{ webhookEndpoints { nodes { id } } }",
        scopes=("communications:review",),
    )
    assert refused.errors[0].extensions["code"] == "FORBIDDEN"
