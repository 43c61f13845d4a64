"""Rate limits per OAuth client and per publishable key and client address, on an app
instance with tight limits."""

from __future__ import annotations

import pytest

from api.core.settings import RateLimitSettings
from tests.conftest import make_settings
from tests.core.conftest import ORIGIN, assert_problem, client_for, running_app


@pytest.fixture(scope="module")
async def limited_app(servers):
    limits = RateLimitSettings(client_per_minute=3, publishable_key_per_minute=2)
    async with running_app(make_settings(servers, rate_limits=limits)) as app:
        yield app


async def test_client_limit_headers_then_429(limited_app, practice, make_token):
    async with client_for(limited_app) as client:
        remaining = []
        for _ in range(3):
            response = await client.get("/v1/me", headers=practice.headers)
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "3"
            assert 0 < int(response.headers["ratelimit-reset"]) <= 60
            remaining.append(int(response.headers["ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        refused = await client.get("/v1/me", headers=practice.headers)
        body = assert_problem(refused, 429)
        assert body["type"].endswith("/rate-limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Each header once, even though the problem and the middleware both know them.
        assert refused.headers.get_list("ratelimit-limit") == ["3"]
        assert refused.headers["ratelimit-remaining"] == "0"
        # Another client of the same tenant has its own budget.
        other = {"Authorization": f"Bearer {await make_token(practice.tenant.id)}"}
        response = await client.get("/v1/me", headers=other)
        assert response.status_code == 200
        assert response.headers["ratelimit-remaining"] == "2"


async def test_unauthenticated_calls_carry_no_client_budget(limited_app):
    async with client_for(limited_app) as client:
        response = await client.get("/v1/me")
    assert_problem(response, 401)
    assert "ratelimit-limit" not in response.headers


async def test_publishable_key_is_limited_per_key_and_address(
    limited_app, practice, make_publishable_key
):
    location = practice.locations[0].id
    pk = await make_publishable_key(practice.tenant.id, [location])
    second_pk = await make_publishable_key(practice.tenant.id, [location])

    def headers(key: str) -> dict[str, str]:
        return {"Origin": ORIGIN, "Authorization": f"Bearer {key}"}

    async with client_for(limited_app, "203.0.113.7") as browser:
        for expected in ("1", "0"):
            response = await browser.get("/v1/locations", headers=headers(pk.key))
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "2"
            assert response.headers["ratelimit-remaining"] == expected
        refused = await browser.get("/v1/locations", headers=headers(pk.key))
        assert_problem(refused, 429)
        assert refused.headers["retry-after"]
        # The widget may read the 429 (the key's origin) and its Retry-After.
        assert refused.headers["access-control-allow-origin"] == ORIGIN
        assert "Retry-After" in refused.headers["access-control-expose-headers"]
        # Another key from the same address has its own budget.
        assert (
            await browser.get("/v1/locations", headers=headers(second_pk.key))
        ).status_code == 200
    # The same key from another visitor's address too.
    async with client_for(limited_app, "198.51.100.20") as other_browser:
        response = await other_browser.get("/v1/locations", headers=headers(pk.key))
        assert response.status_code == 200
        assert response.headers["ratelimit-remaining"] == "1"


async def test_the_previous_minute_still_counts_and_a_refusal_is_not_counted(settings, redis):
    """The sliding window: a bucket that spent far more than its budget in the previous
    minute is refused now, and being refused does not spend anything."""
    import asyncio

    from starlette.requests import Request

    from api.core.errors import RateLimited
    from api.core.ratelimit import WINDOW_SECONDS, RateLimiter

    limiter = RateLimiter(settings.redis_url)
    request = Request({"type": "http", "headers": [], "state": {}})
    try:
        fresh = await limiter.hit(request, "test:fresh", 5)
        assert fresh is not None and (fresh.limit, fresh.remaining) == (5, 4)
        window_ms = WINDOW_SECONDS * 1000
        seconds, micros = await redis.time()
        now_ms = seconds * 1000 + micros // 1000
        if now_ms % window_ms > window_ms - 2000:  # don't race the minute's end
            await asyncio.sleep((window_ms - now_ms % window_ms) / 1000 + 0.05)
            seconds, micros = await redis.time()
            now_ms = seconds * 1000 + micros // 1000
        index = now_ms // window_ms
        await redis.set(f"chairfill:ratelimit:test:busy:{index - 1}", 10**9)
        with pytest.raises(RateLimited) as refused:
            await limiter.hit(request, "test:busy", 5)
        assert 1 <= int(refused.value.headers["Retry-After"]) <= WINDOW_SECONDS
        assert await redis.get(f"chairfill:ratelimit:test:busy:{index}") is None
    finally:
        await limiter.close()
