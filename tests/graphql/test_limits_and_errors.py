"""Depth and cost limits, and masking of unexpected errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql import parse

from api.core.settings import GraphQLSettings
from api.graphql.extensions import DEFAULT_LIST_SIZE, operation_cost
from api.graphql.schema import schema
from api.main import create_app
from api.tenancy import service as tenancy_service
from tests.conftest import make_settings
from tests.graphql.conftest import GraphQLClient, only_error


@pytest.fixture(scope="module")
async def strict_client(servers) -> AsyncIterator[GraphQLClient]:
    """An app whose GraphQL limits are small enough to reach with the current schema."""
    settings = make_settings(servers, graphql=GraphQLSettings(max_depth=2, max_cost=100))
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield GraphQLClient(c)


async def test_a_query_deeper_than_max_depth_is_rejected(strict_client, practice):
    deep = "{ viewer { locations { address { city } } } }"
    body = await strict_client.execute(deep, headers=practice.headers)
    assert body["data"] is None
    error = only_error(body)
    assert "exceeds maximum operation depth of 2" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    shallow = await strict_client.execute(
        "{ viewer { tenant { name } } }", headers=practice.headers
    )
    assert shallow["data"]["viewer"]["tenant"]["name"] == "Bright Smiles Dental"


async def test_a_query_above_max_cost_is_rejected_before_execution(
    strict_client, practice, monkeypatch
):
    async def must_not_run(*args, **kwargs):
        raise AssertionError("the resolver ran")

    monkeypatch.setattr(tenancy_service, "list_locations", must_not_run)
    query = "query($n: Int!) { locations(first: $n) { nodes { id } } }"
    # 40 locations x (connection 1 + nodes 1 + id 1) = 120 > 100
    body = await strict_client.execute(query, {"n": 40}, practice.headers)
    assert body["data"] is None
    error = only_error(body)
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "cost": 120, "max_cost": 100}
    assert "120" in error["message"] and "100" in error["message"]


async def test_a_query_within_max_cost_runs(strict_client, practice):
    query = "query($n: Int!) { locations(first: $n) { nodes { id } } }"
    body = await strict_client.execute(query, {"n": 30}, practice.headers)  # cost 90
    assert "errors" not in body, body
    assert len(body["data"]["locations"]["nodes"]) == 2


async def test_unpaged_lists_weigh_fifty(strict_client, practice):
    # viewer 1 + locations 50 x (1 + id 1) = 101 > 100
    body = await strict_client.execute("{ viewer { locations { id } } }", headers=practice.headers)
    assert only_error(body)["extensions"]["cost"] == 101


async def test_the_default_limit_refuses_a_huge_page_of_details(gql, practice):
    query = "{ locations(first: 1000) { nodes { id name timezone address { city } } } }"
    body = await gql.execute(query, headers=practice.headers)
    error = only_error(body)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] == 1000 * 7
    assert error["extensions"]["max_cost"] == 5000


def test_cost_counts_fragments_defaults_and_ignores_introspection():
    document = parse(
        """
        query Q($first: Int = 4) {
          __typename
          ...Places
          viewer { ... on Viewer { scopes tenant { id } } }
        }
        fragment Places on Query { locations(first: $first) { nodes { id name } } }
        """
    )
    operation = document.definitions[0]
    fragments = {"Places": document.definitions[1]}
    graphql_schema = schema._schema
    # locations 4 x (1 + nodes (1 + 2)) = 16; viewer 1 + scopes 1 + tenant (1 + 1) = 4
    assert operation_cost(graphql_schema, operation, fragments, {}) == 20
    assert operation_cost(graphql_schema, operation, fragments, {"first": 10}) == 44
    no_argument = parse("{ locations { nodes { id } } }")
    assert operation_cost(graphql_schema, no_argument.definitions[0], {}, None) == (
        DEFAULT_LIST_SIZE * 3
    )


async def test_an_unexpected_error_is_masked_with_the_request_id(gql, practice, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("connection to 10.0.0.7 failed: password=hunter2")

    monkeypatch.setattr(tenancy_service, "describe_principal", broken)
    response = await gql.post(
        "{ viewer { clientId } locations(first: 1) { nodes { id } } }", headers=practice.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None  # viewer is non-null, so the error reaches the root
    error = only_error(body)
    assert error["message"] == "Unexpected error."
    assert error["path"] == ["viewer"]
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "request_id": response.headers["x-request-id"],
    }
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


async def test_a_document_error_passes_through(gql, practice):
    body = await gql.execute("{ viewer { noSuchField } }", headers=practice.headers)
    error = only_error(body)
    assert "noSuchField" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
