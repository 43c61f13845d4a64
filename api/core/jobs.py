"""The jobs facade: the only module that knows jobs travel through arq and Redis.

`enqueue()` writes a `jobs` row in the caller's transaction and pushes the job id to
Redis only after that transaction commits. A worker loads the row by id, locks it,
skips it if already done, runs the task and marks it done in the same transaction as
the task's own writes. The reconciler re-enqueues due rows that Redis lost (flushed,
or a worker killed mid-job), so nothing recorded is lost and nothing runs twice.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.clock import utcnow
from api.core.db import AfterCommit, after_commit
from api.core.ids import new_id
from api.core.infra_models import Job

QUEUES = ("sends", "webhooks", "sync", "default")
# Pushes in flight at once after a commit that enqueued many jobs.
PUSH_CONCURRENCY = 32
_TO_PUSH = "jobs_to_push"

# The one registry of task names and the queue each runs on. Workers map the same
# names to functions (workers/tasks); the API only ever names them.
TASKS: dict[str, str] = {
    "maintenance.purge_expired": "default",
    "webhooks.deliver": "webhooks",
    "messaging.send": "sends",
    "messaging.send_batch": "sends",
    "campaigns.start": "sends",
    "campaigns.send_batch": "sends",
    "campaigns.finish": "sends",
    "sync.opendental_location": "sync",
    "booking.expire_holds": "default",
    "booking.daily_report": "default",
    "cadences.dispatch": "default",
    "cadences.enroll": "default",
    "audiences.rebuild": "default",
}


def queue_name(queue: str) -> str:
    return f"chairfill:queue:{queue}"


class JobQueue:
    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, redis_url: str) -> JobQueue:
        # No ping: the API must start (and /readyz say why it is not ready) while Redis is
        # down; a push that fails leaves the job pending for the reconciler.
        return cls(ArqRedis.from_url(redis_url, socket_connect_timeout=2))

    async def push(self, job: Job) -> None:
        # The tenant rides along as a hint: the worker opens the job's transaction behind
        # that tenant's wall at once instead of looking the row up first.
        await self.pool.enqueue_job(
            job.task,
            job.id,
            job.tenant_id,
            _job_id=job.id,
            _queue_name=queue_name(job.queue),
            _defer_until=job.run_at if job.run_at > utcnow() else None,
        )

    async def push_many(self, batch: list[Job]) -> None:
        """Push jobs concurrently (a few connections' worth at a time); a job that fails
        to push stays pending for the reconciler."""
        limit = asyncio.Semaphore(PUSH_CONCURRENCY)

        async def _push(job: Job) -> None:
            async with limit:
                await self.push(job)

        await asyncio.gather(*(_push(job) for job in batch), return_exceptions=True)

    async def is_known(self, job_id: str) -> bool:
        """Does Redis still hold this job (queued, deferred or running)?"""
        keys = (f"arq:job:{job_id}", f"arq:in-progress:{job_id}", f"arq:retry:{job_id}")
        return bool(await self.pool.exists(*keys))

    async def close(self) -> None:
        await self.pool.aclose()


# The queues of the app instances and workers running in this process, newest last. A list
# rather than one slot: instances may stop in any order (tests run several), and stopping
# one must not leave the others without a queue.
_active: list[JobQueue] = []


def activate(queue: JobQueue) -> None:
    """Start pushing through `queue` (app or worker start-up)."""
    _active.append(queue)


def deactivate(queue: JobQueue) -> None:
    """`queue` is closing: push through the previous active one, if any."""
    if queue in _active:
        _active.remove(queue)


def current_queue() -> JobQueue | None:
    """The queue in use (a worker started in the API's process restores it when done)."""
    return _active[-1] if _active else None


async def enqueue(
    session: AsyncSession,
    task: str,
    *,
    tenant_id: str | None,
    args: dict[str, Any] | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> Job:
    """Record a job in this transaction; push it to Redis once the transaction commits."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; add it to api.core.jobs.TASKS")
    job = Job(
        id=new_id("job"),
        tenant_id=tenant_id,
        task=task,
        queue=TASKS[task],
        args=args or {},
        status="pending",
        run_at=run_at or utcnow(),
        attempts=0,
        dedupe_key=dedupe_key,
    )
    session.add(job)
    await session.flush()
    _pending_pushes(session).append(job)
    return job


async def enqueue_once(
    session: AsyncSession,
    task: str,
    *,
    tenant_id: str | None,
    dedupe_key: str,
    args: dict[str, Any] | None = None,
    run_at: datetime | None = None,
) -> bool:
    """`enqueue`, unless a job with `dedupe_key` was ever recorded: then nothing, and False.
    In a savepoint, so a concurrent transaction that recorded the key first costs only
    this insert (the unique index on the key is the guard)."""
    try:
        async with session.begin_nested():
            await enqueue(
                session, task, tenant_id=tenant_id, args=args, run_at=run_at, dedupe_key=dedupe_key
            )
    except IntegrityError:
        return False
    return True


def _pending_pushes(session: AsyncSession) -> list[Job]:
    """This transaction's jobs to push; one after-commit callback pushes them together."""
    sync = session.sync_session
    found: tuple[AfterCommit, list[Job]] | None = sync.info.get(_TO_PUSH)
    # A rollback drops the callbacks; a list whose callback is gone starts over.
    if found is not None and found[0] in sync.info.get("after_commit", ()):
        return found[1]
    waiting: list[Job] = []

    async def _push() -> None:
        sync.info.pop(_TO_PUSH, None)
        # If Redis is down now, the rows stay pending and the reconciler pushes them later.
        queue = current_queue()
        if queue is not None:
            await queue.push_many(waiting)

    sync.info[_TO_PUSH] = (_push, waiting)
    after_commit(session, _push)
    return waiting


async def due_pending_jobs(session: AsyncSession, now: datetime, limit: int = 1000) -> list[Job]:
    stmt = (
        select(Job)
        .where(Job.status == "pending", Job.run_at <= now)
        .order_by(Job.run_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def reconcile(session: AsyncSession, queue: JobQueue, now: datetime | None = None) -> int:
    """Re-push every due, pending job that Redis no longer knows. Returns how many."""
    pushed = 0
    for job in await due_pending_jobs(session, now or utcnow()):
        if not await queue.is_known(job.id):
            await queue.push(job)
            pushed += 1
    return pushed
