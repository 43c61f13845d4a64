"""create_app(): REST routers, /graphql, OAuth endpoints, middleware."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.audiences.router import dnc_router
from api.audiences.router import router as audiences_router
from api.booking.fast_path import SlotFastPath, stop_refreshes
from api.booking.router import router as booking_router
from api.booking.widget_router import router as booking_widget_router
from api.cadences.public_router import router as booking_invites_router
from api.cadences.router import router as cadences_router
from api.campaigns.router import router as campaigns_router
from api.core import jobs
from api.core.cors import PublishableKeyCORSMiddleware
from api.core.errors import ProblemDetails, install_problem_handlers
from api.core.logging import configure_logging
from api.core.middleware import RequestContextMiddleware
from api.core.ops import router as ops_router
from api.core.routing import operation_id
from api.core.settings import Settings, get_settings
from api.core.state import AppState
from api.graphql.schema import build_schema, graphql_router
from api.messaging.public_router import router as messaging_public_router
from api.messaging.router import router as messaging_router
from api.oauth2.router import router as oauth_router
from api.practice.csv_router import router as csv_router
from api.practice.router import router as practice_router
from api.practice.sync_router import router as sync_router
from api.practice.sync_router import writebacks_router
from api.segments.router import router as segments_router
from api.tasks.router import router as tasks_router
from api.tenancy.router import locations_router
from api.tenancy.router import router as identity_router
from api.webhooks.catalog import register_webhook_docs
from api.webhooks.router import events_router
from api.webhooks.router import router as webhooks_router

DESCRIPTION = """
Chairfill turns a dental practice's own chart data into patient segments and audiences,
runs campaigns and win-back cadences, and lets booking widgets book into the PMS calendar
without double-booking.

* **Auth**: OAuth2 (`/oauth/token`, client credentials or authorization code + PKCE).
  Scopes mirror the Dentrix rights "Review/Manage Communications setup".
* **Errors**: RFC 9457 `application/problem+json`, validation errors name the field.
* **Lists**: cursor-paginated (`limit`, `cursor` → `data`, `next_cursor`).
* **Retries**: creating POSTs accept `Idempotency-Key` (stored 24 h).
* **Rate limits**: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`; 429 with
  `Retry-After`.
* **Webhooks**: Standard Webhooks signatures, at-least-once: deduplicate by `webhook-id`.
* **GraphQL**: the same capabilities at `/graphql`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await AppState.start(settings)
        app.state.chairfill = state
        jobs.activate(state.queue)
        # Everything built so far (modules, the app, its schemas) lives as long as the
        # process: out of the collector's reach, a full collection walks only what requests
        # leave behind. Without this, each one walked ~1M start-up objects, ~150 ms
        # during which no request was answered (every ~0.4 s while slots were computed).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            jobs.deactivate(state.queue)
            await stop_refreshes()
            await state.close()

    app = FastAPI(
        title="Chairfill API",
        version="1.0.0",
        summary="Segments, campaigns, cadences and online booking over your practice's PMS data",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    install_problem_handlers(app)
    # Innermost: a slot answer sent before routing still gets CORS, an id, a log line.
    app.add_middleware(SlotFastPath)
    # Added before the request context so it runs inside it (preflights get ids and logs).
    app.add_middleware(PublishableKeyCORSMiddleware)
    app.add_middleware(RequestContextMiddleware)

    app.include_router(ops_router)
    app.include_router(identity_router)
    app.include_router(locations_router)
    app.include_router(webhooks_router)
    app.include_router(events_router)
    app.include_router(practice_router)
    app.include_router(sync_router)
    app.include_router(csv_router)
    app.include_router(writebacks_router)
    app.include_router(segments_router)
    app.include_router(audiences_router)
    app.include_router(dnc_router)
    app.include_router(messaging_router)
    app.include_router(messaging_public_router)
    app.include_router(campaigns_router)
    app.include_router(booking_router)
    app.include_router(cadences_router)
    app.include_router(booking_invites_router)
    app.include_router(booking_widget_router)
    app.include_router(tasks_router)
    register_webhook_docs(app)
    app.include_router(oauth_router)
    app.include_router(graphql_router(build_schema(settings.graphql)))
    _document_problem_schema(app)
    return app


def _document_problem_schema(app: FastAPI) -> None:
    """Every route's error responses refer to `ProblemDetails`; publish it (and the
    models it nests) once in the components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, nested in problem.pop("$defs", {}).items():
            schemas.setdefault(name, nested)
        schemas.setdefault("ProblemDetails", problem)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
