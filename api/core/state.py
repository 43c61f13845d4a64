"""What the running app holds: settings, database session makers, Redis, the job queue
and the rate limiter. Built at start-up, closed at shutdown."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.core import jobs
from api.core.db import new_engine
from api.core.ratelimit import RateLimiter
from api.core.raw_reads import RawReads
from api.core.settings import Settings

RAW_READ_TIMEOUT_SECONDS = 5.0


def asyncpg_arguments(engine: AsyncEngine) -> dict[str, Any]:
    """Where and as whom the engine connects, as asyncpg.connect's own arguments (the URL
    may also carry options only SQLAlchemy understands, such as its statement cache size,
    which asyncpg.connect would refuse)."""
    _, arguments = engine.dialect.create_connect_args(engine.url)
    accepted = set(inspect.signature(asyncpg.connect).parameters)
    return {name: value for name, value in arguments.items() if name in accepted}


@dataclass
class AppState:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    rate_limiter: RateLimiter
    queue: jobs.JobQueue
    engine: AsyncEngine
    # A few plain asyncpg connections for the one hot-path statement that skips the ORM
    # (api/booking/fast_path.py). Opened on first use, never inside a transaction.
    raw_reads: RawReads

    @classmethod
    async def start(cls, settings: Settings) -> AppState:
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError(
                "DATABASE_URL and REDIS_URL are not set: start with `chairfill up` (embedded "
                "PostgreSQL and Redis) or set them."
            )
        redis = Redis.from_url(settings.redis_url)
        queue = await jobs.JobQueue.connect(settings.redis_url)
        engine = new_engine(settings.database_url)
        raw_reads = RawReads(
            wait_seconds=RAW_READ_TIMEOUT_SECONDS,
            connect_arguments={
                **asyncpg_arguments(engine),
                # A stalled database must not hold requests longer than the ORM path would.
                "timeout": RAW_READ_TIMEOUT_SECONDS,
                "command_timeout": RAW_READ_TIMEOUT_SECONDS,
                "server_settings": {"application_name": "chairfill"},
            },
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            redis=redis,
            rate_limiter=RateLimiter(settings.redis_url),
            queue=queue,
            raw_reads=raw_reads,
        )

    async def close(self) -> None:
        await self.queue.close()
        await self.rate_limiter.close()
        await self.redis.aclose()
        try:
            await self.raw_reads.close()
        finally:
            await self.engine.dispose()
