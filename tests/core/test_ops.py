"""Liveness, readiness (database and Redis) and what happens when Redis is down."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import make_settings
from tests.core.conftest import client_for, running_app


def _closed_port() -> int:
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
async def app_without_redis(servers):
    settings = make_settings(servers, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    # Start-up must not need Redis: the process comes up and /readyz says why it is not ready.
    async with running_app(settings) as app:
        yield app


async def test_healthz(core_client):
    response = await core_client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_when_everything_answers(core_client):
    response = await core_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_readyz_is_503_when_redis_is_unreachable(app_without_redis):
    async with client_for(app_without_redis) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["status"] == "unavailable" and body["database"] == "ok"
        assert body["redis"].startswith("error: ")
        assert (await client.get("/healthz")).status_code == 200


async def test_api_keeps_answering_when_the_rate_limiter_is_down(app_without_redis, practice):
    async with client_for(app_without_redis) as client:
        response = await client.get("/v1/me", headers=practice.headers)
    assert response.status_code == 200, response.text
    assert "ratelimit-limit" not in response.headers


async def test_a_pooled_connection_the_server_closed_is_replaced_not_used(servers):
    """Pooled connections are checked on checkout without a round trip: after Postgres
    terminates every backend of the app (as a restart does), the next request still
    answers, on a fresh connection."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    settings = make_settings(servers)
    async with running_app(settings) as app, client_for(app) as client:
        engine = app.state.chairfill.engine
        async with engine.connect() as connection:
            before = (await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        url = make_url(servers.admin_database_url)
        admin = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, database=url.database
        )
        try:
            terminated = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'chairfill' AND datname = $1",
                make_url(servers.database_url).database,
            )
        finally:
            await admin.close()
        assert terminated >= 1
        await asyncio.sleep(0.2)  # the goodbye reaches the idle connection's reader
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        async with engine.connect() as connection:
            after = (await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        assert after != before
