"""Fixtures: real PostgreSQL and Redis, the app behind an in-process ASGI transport, and
factories for tenants, locations and tokens.

Isolation: after each test every table is truncated and the Redis database flushed, so
tests may commit, run workers and race connections like production does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth.scopes import ALL_SCOPES
from api.core.all_models import Tenant
from api.core.db import Base, session_maker, unit_of_work
from api.core.settings import IdempotencySettings, RateLimitSettings, Settings
from api.main import create_app
from api.oauth2 import service as oauth_service
from api.tenancy import service as tenancy_service
from api.tenancy.models import Location
from api.tenancy.schemas import LocationCreate, TenantCreate
from tests.support.servers import TestServers, start_test_servers


@pytest.fixture(scope="session")
def servers() -> TestServers:
    servers = start_test_servers()
    yield servers
    if servers.embedded is not None:
        servers.embedded.stop()


def make_settings(servers: TestServers, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": servers.database_url,
        "redis_url": servers.redis_url,
        "log_json": True,
        "log_level": "WARNING",
        "rate_limits": RateLimitSettings(
            client_per_minute=100_000, publishable_key_per_minute=100_000
        ),
        "idempotency": IdempotencySettings(),
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def settings(servers: TestServers) -> Settings:
    return make_settings(servers)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def sessions(settings: Settings) -> async_sessionmaker[AsyncSession]:
    return session_maker(settings.database_url or "")


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    r = Redis.from_url(settings.redis_url or "")
    yield r
    await r.aclose()


def _table_names() -> list[str]:
    return [t.name for t in Base.metadata.sorted_tables]


@pytest.fixture(autouse=True)
async def _isolate(servers: TestServers, redis: Redis) -> AsyncIterator[None]:
    yield
    conninfo = servers.database_url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("TRUNCATE " + ", ".join(_table_names()) + " CASCADE")
    await redis.flushdb()


# --- factories ---------------------------------------------------------------------------


@pytest.fixture
def make_tenant(sessions: async_sessionmaker[AsyncSession]) -> Callable[..., Awaitable[Tenant]]:
    async def _make(name: str = "Bright Smiles Dental", kind: str = "practice") -> Tenant:
        async with unit_of_work(sessions) as session:
            return await tenancy_service.create_tenant(session, TenantCreate(name=name, kind=kind))  # type: ignore[arg-type]

    return _make


@pytest.fixture
def make_location(sessions: async_sessionmaker[AsyncSession]) -> Callable[..., Awaitable[Location]]:
    async def _make(
        tenant_id: str, name: str = "Main Street", timezone: str = "America/Chicago", **kw: Any
    ) -> Location:
        async with unit_of_work(sessions) as session:
            return await tenancy_service.create_location(
                session, tenant_id, LocationCreate(name=name, timezone=timezone, **kw)
            )

    return _make


@pytest.fixture
def make_token(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> Callable[..., Awaitable[str]]:
    """A client-credentials access token for `tenant_id` with `scopes` (default: all)."""

    async def _make(
        tenant_id: str, scopes: list[str] | None = None, location_ids: list[str] | None = None
    ) -> str:
        async with unit_of_work(sessions) as session:
            created = await oauth_service.create_client(
                session,
                tenant_id,
                name="test client",
                scopes=list(ALL_SCOPES if scopes is None else scopes),
                location_ids=location_ids,
            )
            minted = await oauth_service.issue_client_token(session, created.client, settings.oauth)
            return minted.access_token

    return _make


class Practice:
    """A tenant with two locations and a token, the usual starting point of a test."""

    def __init__(self, tenant: Tenant, locations: list[Location], token: str) -> None:
        self.tenant = tenant
        self.locations = locations
        self.token = token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def practice(
    request: pytest.FixtureRequest, make_tenant, make_location, make_token
) -> Practice:
    """Scopes come from `@pytest.mark.scopes(...)` (default: every scope)."""
    marker = request.node.get_closest_marker("scopes")
    scopes = list(marker.args) if marker else None
    tenant = await make_tenant()
    locations = [
        await make_location(tenant.id, "Main Street", "America/Chicago"),
        await make_location(tenant.id, "Lakeside", "America/New_York"),
    ]
    token = await make_token(tenant.id, scopes)
    return Practice(tenant, locations, token)


@pytest.fixture
async def other_practice(make_tenant, make_location, make_token) -> Practice:
    """A second tenant, for isolation tests."""
    tenant = await make_tenant("Other Family Dentistry")
    locations = [await make_location(tenant.id, "Elsewhere", "America/Denver")]
    return Practice(tenant, locations, await make_token(tenant.id))
