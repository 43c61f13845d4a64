"""The committed contract: openapi/openapi.json and openapi/schema.graphql.

`chairfill openapi` writes them; `chairfill openapi --check` (and a test) fails when the
running app would serve something else, so the published contract cannot drift."""

from __future__ import annotations

import json
from pathlib import Path

from api.core.settings import Settings

OPENAPI_PATH = Path("openapi/openapi.json")
GRAPHQL_PATH = Path("openapi/schema.graphql")


def render_openapi() -> str:
    from api.main import create_app

    # Building the document needs no database; the lifespan never runs here.
    app = create_app(Settings(env="dev", database_url=None, redis_url=None, log_level="WARNING"))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


def render_graphql() -> str:
    from api.graphql.schema import schema

    sdl: str = schema.as_str()
    return sdl.rstrip("\n") + "\n"


def _documents() -> dict[Path, str]:
    return {OPENAPI_PATH: render_openapi(), GRAPHQL_PATH: render_graphql()}


def write_schemas(root: Path) -> list[Path]:
    written = []
    for relative, content in _documents().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            written.append(relative)
    return written


def check_schemas(root: Path) -> list[Path]:
    """The committed files that differ from what the app serves (empty: all current)."""
    drifted = []
    for relative, content in _documents().items():
        path = root / relative
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            drifted.append(relative)
    return drifted
