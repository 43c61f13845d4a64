"""Rate limits in Redis (the `limits` library, sliding-window counters).

Every limited response carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (seconds until the window frees up); a request over the limit answers
429 with `Retry-After`.

When Redis does not answer, requests pass unlimited (and without the headers): a
limiter outage must not take booking widgets and integrations down with it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.exceptions import RedisError
from starlette.requests import Request

from api.core.errors import RateLimited

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimiter:
    def __init__(self, redis_url: str) -> None:
        uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
        self._storage = RedisStorage(uri, implementation="redispy")
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    async def hit(self, request: Request, bucket: str, per_minute: int) -> RateLimitState | None:
        item = RateLimitItemPerMinute(per_minute)
        try:
            allowed = await self._limiter.hit(item, "chairfill", bucket)
            stats = await self._limiter.get_window_stats(item, "chairfill", bucket)
        except (RedisError, OSError) as exc:
            log.warning("rate_limiter_unavailable", error=type(exc).__name__)
            return None
        reset = math.ceil(stats.reset_time - time.time())
        if reset <= 0:
            # `limits` computes the reset modulo the window, so a window that has just
            # started reads 0; it frees up a whole window from now.
            reset = item.get_expiry()
        state = RateLimitState(
            limit=per_minute, remaining=max(0, stats.remaining), reset_seconds=reset
        )
        request.state.rate_limit = state
        if not allowed:
            headers = state.headers() | {"Retry-After": str(max(1, reset))}
            raise RateLimited(
                f"More than {per_minute} requests a minute. Retry after {max(1, reset)} s.",
                headers=headers,
            )
        return state


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
