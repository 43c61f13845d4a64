"""The one job runner every task goes through.

arq hands us a job id. The `jobs` row in Postgres is the truth: the runner locks it
(`FOR UPDATE SKIP LOCKED`), skips it unless it is still pending, runs the task's handler
and marks the row done in the same transaction as the handler's own writes. So a job that
Redis delivers twice (a re-push by the reconciler, a worker killed after commit) runs once.

Transient errors climb an explicit retry ladder with arq's `Retry(defer=...)`; when the
ladder runs out, or the error is not transient, the row says `failed` with `last_error`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from arq import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.core import jobs
from api.core.clock import utcnow
from api.core.db import async_url, discard_closed_connections, unit_of_work
from api.core.infra_models import Job
from api.core.settings import Settings
from api.messaging.providers.pools import close_pools
from workers.tasks import HANDLERS, OWN_TRANSACTION_HANDLERS, OwnTransactionHandler
from workers.tasks import webhooks as webhook_tasks

log = structlog.get_logger(__name__)

# Seconds before each retry of a transient failure; one more failure after the last
# step marks the job failed.
RETRY_LADDER: tuple[float, ...] = (5, 30, 300, 1800)
# Postgres serialization failure and deadlock: the same transaction may well succeed later.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
_LAST_ERROR_MAX = 2000
# Connections a worker process keeps. A job holds one for its whole transaction, so this
# caps how many jobs talk to Postgres at once (a webhook deliverer holds one only while
# it claims or records a batch, never during the POSTs).
DB_POOL_SIZE = 40
# Not a tenant id: the job's tenant was not handed over (pushed without the hint), or,
# from a look-up, there is no such job.
_UNKNOWN = "?"


class TransientJobError(Exception):
    """Raised by a task when the failure is likely to pass (a provider timed out)."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(
        exc,
        TransientJobError
        | OperationalError
        | InterfaceError
        | PoolTimeoutError
        | RedisConnectionError
        | RedisTimeoutError
        | ConnectionError
        | TimeoutError,
    ):
        return True
    if isinstance(exc, DBAPIError):
        return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES
    return False


def worker_engine(database_url: str, pool_size: int = DB_POOL_SIZE) -> AsyncEngine:
    """The worker's engine. No pre-ping: it costs round trips per job. A connection the
    server has closed is discarded on checkout without one (`discard_closed_connections`);
    one that dies unnoticed fails its job with a transient error, which the retry ladder
    runs again, and SQLAlchemy drops the dead pool on the first such error."""
    engine = create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=0,
        # More jobs run than there are connections; a job may wait its turn this long
        # (then it is retried, as a pool timeout is transient).
        pool_timeout=60,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": "chairfill-worker"}},
    )
    discard_closed_connections(engine)
    return engine


@dataclass
class WorkerContext:
    """What every task run needs, built once at worker start-up and closed at shutdown."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    queue: jobs.JobQueue
    retry_ladder: tuple[float, ...] = RETRY_LADDER

    @classmethod
    async def start(
        cls,
        settings: Settings,
        retry_ladder: tuple[float, ...] = RETRY_LADDER,
        pool_size: int = DB_POOL_SIZE,
    ) -> WorkerContext:
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("workers need DATABASE_URL and REDIS_URL (or use `chairfill up`)")
        engine = worker_engine(settings.database_url, pool_size)
        queue = await jobs.JobQueue.connect(settings.redis_url)
        context = cls(
            settings=settings,
            engine=engine,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            queue=queue,
            retry_ladder=tuple(retry_ladder),
        )
        # Jobs that tasks enqueue are pushed to Redis after their transaction commits.
        jobs.activate(queue)
        return context

    async def close(self) -> None:
        jobs.deactivate(self.queue)
        await webhook_tasks.close_http_client()
        # SMTP connections and the SMS keep-alive pool this worker kept open.
        await close_pools()
        await self.queue.close()
        await self.engine.dispose()


async def run_job(
    ctx: dict[str, Any], job_id: str, tenant_id: str | None = _UNKNOWN
) -> dict[str, Any] | None:
    """The arq function behind every task name.

    `tenant_id` is a hint pushed with the job (api.core.jobs.JobQueue.push): it saves the
    look-up transaction. It is only trusted as far as row-level security lets it: under
    a wrong tenant the row is invisible, and the row's real tenant is looked up."""
    context: WorkerContext = ctx["chairfill"]
    if tenant_id == _UNKNOWN:
        tenant_id = await _tenant_of(context, job_id)
        if tenant_id == _UNKNOWN:
            log.warning("job_missing", job_id=job_id)
            return None
    try:
        ran, result = await _run_locked(context, job_id, tenant_id)
        if ran or tenant_id is None:
            return result
        # Not pending, locked elsewhere, or invisible under the hinted tenant.
        actual = await _tenant_of(context, job_id)
        if actual in (_UNKNOWN, tenant_id):
            return None
        tenant_id = actual
        return (await _run_locked(context, job_id, tenant_id))[1]
    except Exception as exc:
        defer = await _record_failure(context, job_id, tenant_id, exc)
        if defer is None:
            return None
        raise Retry(defer=defer) from exc


async def _tenant_of(context: WorkerContext, job_id: str) -> str | None:
    """The job's tenant (None for platform work), or _UNKNOWN when there is no such job."""
    async with unit_of_work(context.sessions) as session:
        # System look-up: the tenant decides which wall the real transaction runs behind.
        found = (await session.execute(select(Job.tenant_id).where(Job.id == job_id))).one_or_none()
    return _UNKNOWN if found is None else found[0]


async def _run_locked(
    context: WorkerContext, job_id: str, tenant_id: str | None
) -> tuple[bool, dict[str, Any] | None]:
    """Lock the pending row, run its handler, mark it done: one transaction.
    Returns (False, None) when there was no pending row to take.

    A handler that runs its own transactions (workers.tasks.OWN_TRANSACTION_HANDLERS)
    runs after this one commits, and a second transaction marks the row done if it is
    still pending: it is idempotent, so a crash in between only runs it again."""
    own_transaction: OwnTransactionHandler | None = None
    async with unit_of_work(context.sessions, tenant_id) as session:
        job = await _lock_pending(session, job_id)
        if job is None:
            return False, None
        own_transaction = OWN_TRANSACTION_HANDLERS.get(job.task)
        if own_transaction is None:
            handler = HANDLERS.get(job.task)
            if handler is None:
                raise LookupError(f"no handler for task {job.task!r} in workers.tasks.HANDLERS")
            result = await handler(session, job)
            _mark_done(job)
    if own_transaction is not None:
        result = await own_transaction(context, job)
        async with unit_of_work(context.sessions, tenant_id) as session:
            still_pending = await _lock_pending(session, job_id)
            if still_pending is not None:
                _mark_done(still_pending)
    log.info("job_done", job_id=job_id, task=job.task, tenant_id=tenant_id, result=result)
    return True, result


def _mark_done(job: Job) -> None:
    job.status = "done"
    job.attempts += 1
    job.finished_at = utcnow()
    job.last_error = None


async def _lock_pending(session: AsyncSession, job_id: str) -> Job | None:
    """The row if it is still pending and no other worker holds it, else None."""
    stmt = select(Job).where(Job.id == job_id).with_for_update(skip_locked=True)
    job = (await session.execute(stmt)).scalar_one_or_none()
    if job is None or job.status != "pending":
        return None
    return job


async def _record_failure(
    context: WorkerContext, job_id: str, tenant_id: str | None, exc: Exception
) -> float | None:
    """Write the failure on the row; return the retry delay, or None when it is final."""
    error = f"{type(exc).__name__}: {exc}"[:_LAST_ERROR_MAX]
    async with unit_of_work(context.sessions, tenant_id) as session:
        job = await _lock_pending(session, job_id)
        if job is None:
            return None
        job.attempts += 1
        job.last_error = error
        now = utcnow()
        retries_used = job.attempts - 1
        if is_transient(exc) and retries_used < len(context.retry_ladder):
            delay = context.retry_ladder[retries_used]
            # The row says when it is due again, so the reconciler can re-push it if
            # Redis loses the deferred job meanwhile.
            job.run_at = now + timedelta(seconds=delay)
            log.warning("job_retry", job_id=job_id, task=job.task, error=error, defer=delay)
            return delay
        job.status = "failed"
        job.finished_at = now
        log.error("job_failed", job_id=job_id, task=job.task, error=error, attempts=job.attempts)
        return None
