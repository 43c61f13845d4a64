"""Provider throttling: at most N messages per second per practice and channel, across
every worker process. Sends over the rate wait for their turn; none is dropped.

The shared state is one Redis key per (tenant, channel) holding the "theoretical
arrival time" of the next free slot (GCRA, the cell-rate algorithm): a Lua script
reserves the next `n` slots atomically and answers when the first of them is due,
each later one following at 1/rate. A worker reserves slots a few at a time
(RESERVE_SECONDS' worth) and spaces its sends across them itself, so 1,000 messages a
second cost a few Redis calls a second, not one per message. After an idle spell the
first BURST messages go at once.

Time comes from the caller's clock (the wall clock in workers, an injected one in
tests), so the tests need no sleeping, and workers on one host agree on it.

Without Redis (unreachable, or no queue in this process) each process paces itself
with the same algorithm in memory. The practice may then exceed the rate by up to
the number of worker processes sending for it: we prefer that to stopping all sends
(while Redis is down no new jobs start anyway, so only batches already running send),
and a provider that refuses the excess (HTTP 429, SMTP 4xx) gets the message again
later through the retry delays, never dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.exceptions import RedisError

from api.core import jobs

log = structlog.get_logger(__name__)

# Slots reserved per Redis call: this many seconds of the rate (at least one message).
RESERVE_SECONDS = 0.1
# Messages that may go at once after an idle spell.
BURST = 1
_MICROS = 1_000_000

# KEYS[1]: the practice's channel; ARGV: now, interval (both in microseconds), slots
# wanted, burst. Returns when the first reserved slot is due (microseconds). The key
# lives until its last reserved slot has passed, plus a minute (a key gone or one in
# the past mean the same: the rate starts again at once).
RESERVE_SCRIPT = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local start = math.max(tat, now - (burst - 1) * interval)
local next_free = start + n * interval
local ttl = math.floor((next_free - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%d', next_free), 'PX', ttl)
return string.format('%d', start)
"""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


def key_for(tenant_id: str, channel: str) -> str:
    return f"chairfill:send-rate:{tenant_id}:{channel}"


class LocalSlots:
    """The same reservation, kept in this process (the fallback without Redis)."""

    def __init__(self) -> None:
        self._next_free: dict[str, int] = {}

    def reserve(self, key: str, now: int, interval: int, n: int, burst: int) -> int:
        start = max(self._next_free.get(key, 0), now - (burst - 1) * interval)
        self._next_free[key] = start + n * interval
        return start


_local = LocalSlots()


class SendRateLimiter:
    """Reserves send slots for a practice's channels (Redis when it can)."""

    def __init__(
        self,
        redis: Any | None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        local: LocalSlots | None = None,
    ) -> None:
        self.redis = redis
        self.clock = clock
        self.sleep = sleep
        self.local = local or _local
        self._script: Any = redis.register_script(RESERVE_SCRIPT) if redis is not None else None

    async def reserve(self, key: str, per_second: int, n: int) -> float:
        """Reserve the next `n` slots; when the first is due (clock seconds)."""
        now = int(self.clock() * _MICROS)
        interval = max(1, _MICROS // per_second)
        if self._script is not None:
            try:
                start = await self._script(keys=[key], args=[now, interval, n, BURST])
                return int(start) / _MICROS
            except (RedisError, OSError) as exc:
                log.warning("send_rate_redis_unavailable", key=key, error=str(exc))
        return self.local.reserve(key, now, interval, n, BURST) / _MICROS

    def pacer(self, tenant_id: str, channel: str, per_second: int, expected: int) -> Pacer:
        return Pacer(self, key_for(tenant_id, channel), per_second, expected)


class Pacer:
    """One batch's turns on one channel: `await pacer.turn()` before each send."""

    def __init__(self, limiter: SendRateLimiter, key: str, per_second: int, expected: int):
        self.limiter = limiter
        self.key = key
        self.per_second = per_second
        self.interval = 1 / per_second
        # Messages of the batch still to take a turn: never reserve more than that.
        self.remaining = max(1, expected)
        self.chunk = max(1, int(per_second * RESERVE_SECONDS))
        self._lock = asyncio.Lock()
        self._next = 0.0
        self._left = 0

    async def turn(self) -> float:
        """Wait for the next slot; returns its time (clock seconds)."""
        async with self._lock:
            if self._left == 0:
                n = min(self.chunk, self.remaining)
                self._next = await self.limiter.reserve(self.key, self.per_second, n)
                self._left = n
            slot = self._next
            self._next += self.interval
            self._left -= 1
            self.remaining = max(1, self.remaining - 1)
        wait = slot - self.limiter.clock()
        if wait > 0:
            await self.limiter.sleep(wait)
        return slot


@dataclass(frozen=True)
class Rates:
    """A practice's messages-per-second per channel (from its messaging settings)."""

    per_second: dict[str, int]

    @classmethod
    def from_settings(cls, send_rates: list[dict[str, Any]] | None) -> Rates:
        return cls({str(r["channel"]): int(r["per_second"]) for r in send_rates or []})


def current_limiter() -> SendRateLimiter:
    """The limiter on the Redis of this process's job queue (in-process without one)."""
    queue = jobs.current_queue()
    return SendRateLimiter(queue.pool if queue is not None else None)
