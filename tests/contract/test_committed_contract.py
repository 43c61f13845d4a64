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
