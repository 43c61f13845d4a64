"""Fixtures for the cross-cutting HTTP behaviour: extra app instances (with test-only
routes, tight rate limits, an unreachable Redis) and publishable keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.core.db import unit_of_work
from api.core.settings import Settings
from api.main import create_app
from api.oauth2 import service as oauth_service
from api.oauth2.models import PublishableKey
from tests.core.routes import router as test_router

ORIGIN = "https://widget.brightsmiles.example"


@asynccontextmanager
async def running_app(settings: Settings, *routers: APIRouter) -> AsyncIterator[FastAPI]:
    """Another app in this process (its queue is active only while it runs)."""
    app = create_app(settings)
    for router in routers:
        app.include_router(router)
    async with LifespanManager(app):
        yield app


def client_for(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture(scope="module")
async def core_app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings, test_router) as app:
        yield app


@pytest.fixture
async def core_client(core_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(core_app) as c:
        yield c


@pytest.fixture
def make_publishable_key(
    sessions: async_sessionmaker[AsyncSession],
) -> Callable[..., Awaitable[PublishableKey]]:
    async def _make(
        tenant_id: str, location_ids: list[str], origins: list[str] | None = None, **kw: Any
    ) -> PublishableKey:
        async with unit_of_work(sessions) as session:
            return await oauth_service.create_publishable_key(
                session,
                tenant_id,
                name=kw.get("name", "booking widget"),
                location_ids=location_ids,
                allowed_origins=[ORIGIN] if origins is None else origins,
            )

    return _make


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Every error is RFC 9457 problem JSON with the four members clients rely on."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://chairfill.dev/problems/")
    assert body["title"] and body["detail"]
    return body
