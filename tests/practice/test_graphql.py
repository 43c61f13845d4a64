"""GraphQL parity: the practice fields answer what REST answers (same service functions).

The schema is the project's (api/graphql/schema.py: every domain's queries and mutations)
plus PracticeQuery, merged the way that module merges the domains."""

from __future__ import annotations

from strawberry.tools import merge_types

from api.auth.principal import Principal
from api.core.settings import GraphQLSettings
from api.graphql.context import Context
from api.graphql.schema import Query, build_schema
from api.practice.graphql import PracticeQuery
from tests.practice.conftest import appointment, patient

SCHEMA = build_schema(GraphQLSettings(), query=merge_types("Query", (Query, PracticeQuery)))


async def _run(settings, sessions, tenant_id, scopes, query, variables=None):
    principal = Principal(
        tenant_id=tenant_id,
        kind="client",
        client_id="cli_test",
        scopes=frozenset(scopes),
        location_ids=None,
    )
    context = Context(settings=settings, sessions=sessions, principal=principal)
    result = await SCHEMA.execute(query, variable_values=variables, context_value=context)
    await context.finish(succeeded=not result.errors)
    return result


async def test_patients_patient_and_appointments_match_rest(
    sync, client, practice, settings, sessions
):
    await sync("patients", [patient("1"), patient("2")], watermark="2026-11-20T14:00:00Z")
    await sync("patients", deletes=["2"])
    await sync("appointments", [appointment("a1", "1")])
    await sync(
        "recalls",
        [
            {
                "external_id": "r1",
                "patient_external_id": "1",
                "recall_type": "prophy",
                "due_date": "2026-12-01",
            }
        ],
    )
    rest = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    result = await _run(
        settings,
        sessions,
        practice.tenant.id,
        ["patients:read", "schedule:read"],
        """query($id: ID!) {
             patients(first: 10) { nodes { id externalId dataAsOf } nextCursor }
             patient(id: $id) {
               id recalls { recallType dueDate } openTreatmentTotal balance { balance }
             }
             appointments { nodes { externalId patientId dataAsOf } }
           }""",
        {"id": rest[0]["id"]},
    )
    assert result.errors is None, result.errors
    assert [(p["id"], p["externalId"]) for p in result.data["patients"]["nodes"]] == [
        (p["id"], p["external_id"]) for p in rest
    ]
    assert result.data["patients"]["nodes"][0]["dataAsOf"] == "2026-11-20T14:00:00+00:00"
    assert result.data["patient"]["recalls"] == [{"recallType": "prophy", "dueDate": "2026-12-01"}]
    assert result.data["patient"]["balance"] is None
    assert result.data["appointments"]["nodes"] == [
        {"externalId": "a1", "patientId": rest[0]["id"], "dataAsOf": "2026-11-20T14:00:00+00:00"}
    ]


async def test_scopes_and_tenancy_hold_in_graphql(
    sync, client, practice, other_practice, settings, sessions
):
    await sync("patients", [patient("1")])
    [row] = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    refused = await _run(
        settings, sessions, practice.tenant.id, ["schedule:read"], "{ patients { nodes { id } } }"
    )
    assert refused.errors and refused.errors[0].extensions["code"] == "FORBIDDEN"
    foreign = await _run(
        settings,
        sessions,
        other_practice.tenant.id,
        ["patients:read"],
        "query($id: ID!) { patient(id: $id) { id } }",
        {"id": row["id"]},
    )
    assert foreign.data["patient"] is None
    assert foreign.errors[0].extensions["code"] == "NOT_FOUND"
