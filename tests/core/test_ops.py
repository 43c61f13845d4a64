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
