"""What the running app holds: settings, database session makers, Redis, the job queue
and the rate limiter. Built at start-up, closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.core import jobs
from api.core.db import new_engine
from api.core.ratelimit import RateLimiter
from api.core.settings import Settings


@dataclass
class AppState:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    rate_limiter: RateLimiter
    queue: jobs.JobQueue
    engine: AsyncEngine

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
        return cls(
            settings=settings,
            engine=engine,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            redis=redis,
            rate_limiter=RateLimiter(settings.redis_url),
            queue=queue,
        )

    async def close(self) -> None:
        await self.queue.close()
        await self.rate_limiter.close()
        await self.redis.aclose()
        await self.engine.dispose()
