"""The committed OpenAPI and GraphQL documents equal what the app serves."""

from __future__ import annotations

import json
from pathlib import Path

from api.openapi_export import GRAPHQL_PATH, OPENAPI_PATH, check_schemas, render_openapi

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_app():
    drifted = check_schemas(ROOT)
    assert drifted == [], (
        f"Run `chairfill openapi` and commit: {', '.join(map(str, drifted))} drifted"
    )


async def test_served_openapi_equals_committed(client):
    served = (await client.get("/openapi.json")).json()
    assert served == json.loads((ROOT / OPENAPI_PATH).read_text())


async def test_served_graphql_sdl_equals_committed(app):
    from api.graphql.schema import schema

    assert schema.as_str().rstrip("\n") + "\n" == (ROOT / GRAPHQL_PATH).read_text()


def test_every_operation_has_a_stable_id_and_names_its_scopes():
    document = json.loads(render_openapi())
    public = {"/healthz", "/readyz", "/metrics"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "-" in operation["operationId"], (method, path)
            if path.startswith("/v1/"):
                assert operation.get("security"), f"{method.upper()} {path} declares no security"
            elif path in public:
                assert not operation.get("security")


def test_no_schema_promises_an_rfc3339_time_with_offset():
    """JSON Schema's `format: time` requires an offset ("10:00:00Z"); our times of day are
    local wall-clock times sent without one, so a field claiming that format lies to
    every generated client (schemathesis caught a 201 "violating" it)."""
    claims: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("format") == "time":
                claims.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(json.loads(render_openapi()), "#")
    assert claims == []
