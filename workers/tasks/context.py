"""What a task that runs its own transactions gets from the worker (workers.runner's
WorkerContext has these, and more)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.core.settings import Settings


class TaskContext(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...
