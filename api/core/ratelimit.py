"""Rate limits in Redis: sliding-window counters, one script call per request.

Every limited response carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (seconds until the window frees up); a request over the limit answers
429 with `Retry-After`.

The counter is the usual sliding-window approximation: the count of the current fixed
minute plus the previous minute's count weighted by how much of it still lies inside the
last 60 s. Checking and counting is one Lua script (atomic, one round trip, Redis's own
clock so every API process agrees); a refused request is not counted.

When Redis does not answer, requests pass unlimited (and without the headers): a
limiter outage must not take booking widgets and integrations down with it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from starlette.requests import Request

from api.core import redis_pipe
from api.core.errors import RateLimited
from api.core.redis_pipe import RedisPipe, RedisPipeError

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


WINDOW_SECONDS = 60

# KEYS[1]: the bucket's key prefix. ARGV[1]: the limit per window, ARGV[2]: the window (s).
# Returns {allowed (0/1), remaining, milliseconds until the current window ends}.
_SLIDING_WINDOW = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window_ms = window * 1000
local index = math.floor(now_ms / window_ms)
local into = now_ms - index * window_ms
local current_key = KEYS[1] .. ':' .. index
local current = tonumber(redis.call('GET', current_key) or '0')
local previous = tonumber(redis.call('GET', KEYS[1] .. ':' .. (index - 1)) or '0')
local weighted = previous * (window_ms - into) / window_ms + current
if weighted + 1 > limit then
  return {0, 0, window_ms - into}
end
redis.call('INCR', current_key)
redis.call('PEXPIRE', current_key, 2 * window_ms)
return {1, math.floor(limit - weighted - 1), window_ms - into}
"""


# Redis names scripts by their SHA-1 (EVALSHA); no security rests on it.
_SLIDING_WINDOW_SHA = hashlib.sha1(_SLIDING_WINDOW.encode(), usedforsecurity=False).hexdigest()


class RateLimiter:
    def __init__(self, redis_url: str) -> None:
        # Every authenticated request calls the script: over one pipelined connection
        # (redis_pipe.py) where the URL allows it, ~4x less CPU than redis-py's pool.
        # redis-py only for what the pipe does not speak (TLS).
        self._pipe: RedisPipe | None = None
        self._redis: Redis | None = None
        self._script: AsyncScript | None = None
        if redis_pipe.supports(redis_url):
            self._pipe = RedisPipe(redis_url)
        else:
            self._redis = Redis.from_url(redis_url)
            self._script = self._redis.register_script(_SLIDING_WINDOW)

    async def _count(self, key: str, per_minute: int) -> list[int]:
        if self._pipe is None:
            assert self._script is not None
            result: list[int] = await self._script(keys=[key], args=[per_minute, WINDOW_SECONDS])
            return result
        try:
            counted: list[int] = await self._pipe.call(
                "EVALSHA", _SLIDING_WINDOW_SHA, 1, key, per_minute, WINDOW_SECONDS
            )
            return counted
        except RedisPipeError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            # Redis restarted or flushed its scripts: EVAL runs and caches it again.
            counted = await self._pipe.call(
                "EVAL", _SLIDING_WINDOW, 1, key, per_minute, WINDOW_SECONDS
            )
            return counted

    async def hit(self, request: Request, bucket: str, per_minute: int) -> RateLimitState | None:
        try:
            allowed, remaining, reset_ms = await self._count(
                f"chairfill:ratelimit:{bucket}", per_minute
            )
        except Exception as exc:  # a limiter failure of any kind must not fail the request
            log.warning("rate_limiter_unavailable", error=type(exc).__name__)
            return None
        reset = max(1, math.ceil(int(reset_ms) / 1000))
        state = RateLimitState(
            limit=per_minute, remaining=max(0, int(remaining)), reset_seconds=reset
        )
        request.state.rate_limit = state
        if not allowed:
            headers = state.headers() | {"Retry-After": str(reset)}
            raise RateLimited(
                f"More than {per_minute} requests a minute. Retry after {reset} s.",
                headers=headers,
            )
        return state

    async def close(self) -> None:
        if self._pipe is not None:
            await self._pipe.close()
        if self._redis is not None:
            await self._redis.aclose()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
