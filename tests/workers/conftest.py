"""Worker fixtures: a real worker context (own engine, job queue on the test Redis) and a
burst-mode arq worker that runs a queue until it is empty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from api.core.settings import Settings
from workers.runner import WorkerContext
from workers.settings import create_worker

# Fast ladder so a retried job finishes within a test; production uses RETRY_LADDER.
TEST_LADDER = (0.05, 0.05)


@pytest.fixture
async def worker_context(settings: Settings) -> AsyncIterator[WorkerContext]:
    context = await WorkerContext.start(settings, retry_ladder=TEST_LADDER)
    yield context
    await context.close()


@pytest.fixture
def run_burst(settings: Settings, worker_context: WorkerContext) -> Callable[..., Awaitable[int]]:
    """Run an arq worker for `queue` until its queue is empty; returns jobs completed."""

    async def _run(queue: str = "default") -> int:
        worker = create_worker(
            queue, settings, worker_context, burst=True, with_cron=False, poll_delay=0.02
        )
        try:
            await asyncio.wait_for(worker.main(), timeout=30)
        finally:
            await worker.close()
        return worker.jobs_complete

    return _run
