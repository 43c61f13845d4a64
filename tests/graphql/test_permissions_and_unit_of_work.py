"""RequireScopes and the per-operation unit of work, on a probe schema mounted next to
the real one (same router, context, error handling and limits as /graphql)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
import strawberry
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from strawberry.tools import merge_types

from api.core.db import after_commit, unit_of_work
from api.core.errors import Conflict
from api.core.settings import GraphQLSettings
from api.graphql.context import Context
from api.graphql.permissions import RequireScopes, requires_scopes
from api.graphql.schema import build_schema, graphql_router
from api.main import create_app
from api.oauth2 import service as oauth_service
from api.tenancy import service as tenancy_service
from api.tenancy.graphql import TenancyQuery
from api.tenancy.models import Location
from api.tenancy.schemas import LocationCreate
from tests.graphql.conftest import GraphQLClient, only_error

Info = strawberry.Info[Context, None]
COMMITTED: list[str] = []


@strawberry.type
class ProbeQuery:
    @strawberry.field(permission_classes=[RequireScopes("communications:review")])
    def campaign_count(self) -> int:
        return 3


@strawberry.type
class ProbeMutation:
    @strawberry.mutation(extensions=[requires_scopes("communications:manage")])
    async def add_location(
        self, info: Info, name: str, fail: Annotated[bool, strawberry.argument()] = False
    ) -> str:
        async with info.context.db() as session:
            tenant_id = info.context.principal.tenant_id
            location = await tenancy_service.create_location(
                session, tenant_id, LocationCreate(name=name, timezone="America/Chicago")
            )

            async def remember() -> None:
                COMMITTED.append(location.id)

            after_commit(session, remember)
        if fail:
            raise Conflict("Changed my mind.")
        return location.id

    @strawberry.mutation(extensions=[requires_scopes("communications:manage")])
    async def copy_location_id(self, info: Info, id: strawberry.ID) -> bool:
        """Adds a location reusing an existing id, unflushed: the commit itself fails."""
        async with info.context.db() as session:
            tenant_id = info.context.principal.tenant_id
            session.add(Location(tenant_id=tenant_id, id=str(id), name="Copy", timezone="UTC"))
        return True


probe_schema = build_schema(
    GraphQLSettings(),
    query=merge_types("ProbeQuery", (TenancyQuery, ProbeQuery)),
    mutation=ProbeMutation,
)


@pytest.fixture(scope="module")
async def probe_app(settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    application.include_router(graphql_router(probe_schema, path="/graphql-probe"))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def probe(probe_app) -> AsyncIterator[GraphQLClient]:
    COMMITTED.clear()
    transport = httpx.ASGITransport(app=probe_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield GraphQLClient(c, "/graphql-probe")


def checked_out(app: FastAPI) -> int:
    return app.state.chairfill.engine.pool.checkedout()


async def location_names(probe: GraphQLClient, headers: dict[str, str]) -> set[str]:
    body = await probe.execute("{ locations { nodes { name } } }", headers=headers)
    return {node["name"] for node in body["data"]["locations"]["nodes"]}


def test_the_schema_shows_the_scopes_a_field_needs():
    sdl = probe_schema.as_str()
    assert "directive @requiresScopes(scopes: [String!]!) on FIELD_DEFINITION" in sdl
    assert (
        "addLocation(name: String!, fail: Boolean! = false): String! "
        '@requiresScopes(scopes: ["communications:manage"])'
    ) in sdl


@pytest.mark.scopes("communications:review")
async def test_a_token_with_the_scope_resolves_the_field(probe, practice):
    body = await probe.execute("{ campaignCount }", headers=practice.headers)
    assert body == {"data": {"campaignCount": 3}}


@pytest.mark.scopes("communications:manage")
async def test_an_implied_scope_counts_as_for_rest(probe, practice):
    body = await probe.execute("{ campaignCount }", headers=practice.headers)
    assert body == {"data": {"campaignCount": 3}}


@pytest.mark.scopes("schedule:read")
async def test_a_missing_scope_is_forbidden_and_named(probe, practice):
    body = await probe.execute("{ campaignCount }", headers=practice.headers)
    assert body["data"] is None
    extensions = only_error(body)["extensions"]
    assert extensions["code"] == "FORBIDDEN"
    assert extensions["status"] == 403
    assert extensions["required_scopes"] == ["communications:review"]


async def test_no_token_is_unauthenticated(probe):
    body = await probe.execute("{ campaignCount }")
    assert only_error(body)["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_publishable_key_is_refused_like_rest(probe, practice, sessions):
    async with unit_of_work(sessions) as session:
        key = await oauth_service.create_publishable_key(
            session,
            practice.tenant.id,
            name="widget",
            location_ids=[practice.locations[0].id],
            allowed_origins=["https://brightsmiles.example"],
        )
    headers = {"Authorization": f"Bearer {key.key}"}
    refused = await probe.execute("{ campaignCount }", headers=headers)
    error = only_error(refused)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "Publishable keys" in error["message"]
    # The same origin check as REST: a page elsewhere may not use the key at all.
    elsewhere = await probe.execute(
        "{ viewer { clientId } }", headers=headers | {"Origin": "https://evil.example"}
    )
    assert only_error(elsewhere)["extensions"]["code"] == "FORBIDDEN"
    assert "evil.example" in only_error(elsewhere)["message"]


async def test_a_successful_mutation_commits_once_then_runs_after_commit_work(
    probe, probe_app, practice
):
    body = await probe.execute(
        'mutation { addLocation(name: "Harbor View") }', headers=practice.headers
    )
    assert "errors" not in body, body
    assert [body["data"]["addLocation"]] == COMMITTED
    assert checked_out(probe_app) == 0
    assert "Harbor View" in await location_names(probe, practice.headers)


async def test_a_failed_mutation_rolls_back_and_runs_nothing_after(probe, probe_app, practice):
    body = await probe.execute(
        'mutation { addLocation(name: "Ghost Office", fail: true) }', headers=practice.headers
    )
    error = only_error(body)
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["message"] == "Changed my mind."
    assert COMMITTED == []
    assert checked_out(probe_app) == 0
    assert "Ghost Office" not in await location_names(probe, practice.headers)


@pytest.mark.scopes("communications:review")
async def test_a_refused_mutation_writes_nothing(probe, practice):
    body = await probe.execute('mutation { addLocation(name: "Nope") }', headers=practice.headers)
    assert only_error(body)["extensions"]["required_scopes"] == ["communications:manage"]
    assert "Nope" not in await location_names(probe, practice.headers)


async def test_queries_return_their_connection(probe, probe_app, practice, other_practice):
    ok = await probe.execute("{ viewer { clientId } }", headers=practice.headers)
    assert ok["data"]["viewer"]["clientId"]
    assert checked_out(probe_app) == 0
    failed = await probe.execute(
        "query($id: ID!) { location(id: $id) { id } }",
        {"id": other_practice.locations[0].id},
        practice.headers,
    )
    assert only_error(failed)["extensions"]["code"] == "NOT_FOUND"
    assert checked_out(probe_app) == 0


async def test_mutations_are_not_allowed_over_get(probe_app, practice):
    transport = httpx.ASGITransport(app=probe_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.get(
            "/graphql-probe",
            params={"query": 'mutation { addLocation(name: "Via GET") }'},
            headers=practice.headers,
        )
    assert response.status_code == 400


async def test_a_failing_commit_is_masked_and_leaves_nothing(probe, probe_app, practice):
    existing = practice.locations[0].id
    response = await probe.post(
        "mutation($id: ID!) { copyLocationId(id: $id) }", {"id": existing}, practice.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    error = only_error(body)
    assert error["message"] == "Unexpected error."
    assert error["extensions"]["request_id"] == response.headers["x-request-id"]
    assert "duplicate" not in response.text.lower()
    assert checked_out(probe_app) == 0
    assert await location_names(probe, practice.headers) == {"Main Street", "Lakeside"}
