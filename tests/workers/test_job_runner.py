"""The jobs mechanism end to end: Postgres row, push after commit, a real arq worker,
the reconciler after a flushed Redis, once-only execution and the retry ladder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.core import jobs
from api.core.db import unit_of_work
from api.core.infra_models import Job
from workers import tasks as worker_tasks
from workers.runner import TransientJobError, WorkerContext, run_job
from workers.tasks import maintenance as maintenance_tasks

QUEUE_KEY = jobs.queue_name("default")


async def load_job(sessions: async_sessionmaker[AsyncSession], job_id: str) -> Job | None:
    async with unit_of_work(sessions) as session:
        return await session.get(Job, job_id)


async def enqueue_job(
    sessions: async_sessionmaker[AsyncSession], task: str, tenant_id: str | None
) -> Job:
    async with unit_of_work(sessions) as session:
        return await jobs.enqueue(session, task, tenant_id=tenant_id)


@pytest.fixture
def counting_task(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A task `test.count` on the default queue that records each run (and its tenant
    wall) and takes a moment, so two deliveries can overlap."""
    runs: list[dict[str, Any]] = []

    async def handler(session: AsyncSession, job: Job) -> dict[str, Any]:
        wall = (
            await session.execute(text("SELECT current_setting('app.tenant_id', true)"))
        ).scalar()
        runs.append({"job_id": job.id, "tenant_wall": wall})
        await asyncio.sleep(0.2)
        return {"runs": len(runs)}

    monkeypatch.setitem(jobs.TASKS, "test.count", "default")
    monkeypatch.setitem(worker_tasks.HANDLERS, "test.count", handler)
    return runs


@pytest.fixture
def failing_task(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """`test.flaky` fails transiently `fail_times` times, then succeeds;
    `test.broken` fails with a non-transient error."""
    state = {"fail_times": 99, "calls": 0}

    async def flaky(session: AsyncSession, job: Job) -> dict[str, Any]:
        state["calls"] += 1
        if state["calls"] <= state["fail_times"]:
            raise TransientJobError("provider timed out")
        return {"calls": state["calls"]}

    async def broken(session: AsyncSession, job: Job) -> None:
        raise ValueError("template has no body")

    for name, handler in (("test.flaky", flaky), ("test.broken", broken)):
        monkeypatch.setitem(jobs.TASKS, name, "default")
        monkeypatch.setitem(worker_tasks.HANDLERS, name, handler)
    return state


async def test_enqueue_in_committed_unit_of_work_records_and_pushes(
    sessions, redis: Redis, worker_context: WorkerContext, make_tenant
) -> None:
    tenant = await make_tenant()
    job = await enqueue_job(sessions, "maintenance.purge_expired", tenant.id)

    row = await load_job(sessions, job.id)
    assert row is not None and row.status == "pending" and row.queue == "default"
    assert await redis.exists(f"arq:job:{job.id}") == 1
    assert await redis.zscore(QUEUE_KEY, job.id) is not None


async def test_rolled_back_unit_of_work_leaves_no_row_and_pushes_nothing(
    sessions, redis: Redis, worker_context: WorkerContext, make_tenant
) -> None:
    tenant = await make_tenant()
    job_id = None
    with pytest.raises(RuntimeError, match="booking failed"):
        async with unit_of_work(sessions) as session:
            job = await jobs.enqueue(session, "maintenance.purge_expired", tenant_id=tenant.id)
            job_id = job.id
            raise RuntimeError("booking failed")

    assert job_id is not None
    assert await load_job(sessions, job_id) is None
    assert await redis.exists(f"arq:job:{job_id}") == 0
    assert await redis.zcard(QUEUE_KEY) == 0


async def test_flushed_redis_is_repaired_by_the_reconciler(
    sessions, redis: Redis, worker_context: WorkerContext, counting_task, make_tenant, run_burst
) -> None:
    tenant = await make_tenant()
    job = await enqueue_job(sessions, "test.count", tenant.id)
    # FLUSHDB on this test's own database stands for a FLUSHALL of a production Redis.
    await redis.flushdb()
    assert not await worker_context.queue.is_known(job.id)

    pushed = await maintenance_tasks.reconcile_jobs({"chairfill": worker_context})

    assert pushed == 1
    assert await worker_context.queue.is_known(job.id)
    assert await run_burst() == 1
    row = await load_job(sessions, job.id)
    assert row is not None and row.status == "done" and row.finished_at is not None
    assert [r["job_id"] for r in counting_task] == [job.id]
    # Nothing left to reconcile once the row is done.
    assert await maintenance_tasks.reconcile_jobs({"chairfill": worker_context}) == 0


async def test_a_job_delivered_twice_runs_once(
    sessions, worker_context: WorkerContext, counting_task, make_tenant, run_burst
) -> None:
    tenant = await make_tenant()
    job = await enqueue_job(sessions, "test.count", tenant.id)
    assert await run_burst() == 1

    # keep_result=0: arq accepts the same id again (as after a reconciler re-push) ...
    assert await worker_context.queue.pool.enqueue_job(
        "test.count", job.id, _job_id=job.id, _queue_name=QUEUE_KEY
    )
    assert await run_burst() == 1
    # ... but the row is done, so the task itself ran once.
    row = await load_job(sessions, job.id)
    assert row is not None and row.status == "done" and row.attempts == 1
    assert counting_task == [{"job_id": job.id, "tenant_wall": tenant.id}]


async def test_two_workers_racing_for_one_job_run_it_once(
    sessions, worker_context: WorkerContext, counting_task, make_tenant
) -> None:
    tenant = await make_tenant()
    job = await enqueue_job(sessions, "test.count", tenant.id)
    ctx = {"chairfill": worker_context}

    # Two deliveries at once: the second finds the row locked (SKIP LOCKED) and skips.
    results = await asyncio.gather(run_job(ctx, job.id), run_job(ctx, job.id))

    assert sorted(results, key=lambda r: r is None) == [{"runs": 1}, None]
    assert len(counting_task) == 1


async def test_transient_failures_climb_the_ladder_then_fail_with_last_error(
    sessions, worker_context: WorkerContext, failing_task, run_burst
) -> None:
    job = await enqueue_job(sessions, "test.flaky", None)

    await run_burst()

    row = await load_job(sessions, job.id)
    assert row is not None
    # One first try plus one retry per ladder step (TEST_LADDER has two).
    assert failing_task["calls"] == 3
    assert row.status == "failed" and row.attempts == 3 and row.finished_at is not None
    assert row.last_error == "TransientJobError: provider timed out"


async def test_a_transient_failure_that_passes_ends_done(
    sessions, worker_context: WorkerContext, failing_task, run_burst
) -> None:
    failing_task["fail_times"] = 1
    job = await enqueue_job(sessions, "test.flaky", None)

    await run_burst()

    row = await load_job(sessions, job.id)
    assert row is not None and row.status == "done" and row.attempts == 2
    assert row.last_error is None


async def test_a_permanent_error_fails_at_once(
    sessions, worker_context: WorkerContext, failing_task, run_burst
) -> None:
    job = await enqueue_job(sessions, "test.broken", None)

    await run_burst()

    row = await load_job(sessions, job.id)
    assert row is not None and row.status == "failed" and row.attempts == 1
    assert row.last_error == "ValueError: template has no body"


async def test_a_job_without_its_row_is_skipped(
    sessions, worker_context: WorkerContext, run_burst: Callable[..., Awaitable[int]]
) -> None:
    assert await run_job({"chairfill": worker_context}, "job_does_not_exist") is None
    async with unit_of_work(sessions) as session:
        assert (await session.execute(select(Job))).first() is None


def test_every_task_name_has_exactly_one_handler() -> None:
    transactional = set(worker_tasks.HANDLERS)
    own_transaction = set(worker_tasks.OWN_TRANSACTION_HANDLERS)
    assert transactional.isdisjoint(own_transaction)
    assert transactional | own_transaction == set(jobs.TASKS)


async def test_an_own_transaction_task_holds_no_lock_while_it_runs_and_ends_done(
    sessions, worker_context: WorkerContext, make_tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such a task (a webhook deliverer waiting on receivers) runs after the job's own
    transaction has committed: the row is not locked meanwhile; it is done afterwards."""
    seen: dict[str, Any] = {}

    async def handler(context: Any, job: Job) -> dict[str, Any]:
        async with unit_of_work(context.sessions) as session:
            # NOWAIT fails at once if the runner still held the row's lock.
            stmt = select(Job.status).where(Job.id == job.id).with_for_update(nowait=True)
            seen["status_while_running"] = (await session.execute(stmt)).scalar_one()
        return {"ran": True}

    monkeypatch.setitem(jobs.TASKS, "test.own", "default")
    monkeypatch.setitem(worker_tasks.OWN_TRANSACTION_HANDLERS, "test.own", handler)
    tenant = await make_tenant()
    job = await enqueue_job(sessions, "test.own", tenant.id)

    assert await run_job({"chairfill": worker_context}, job.id, tenant.id) == {"ran": True}
    assert seen == {"status_while_running": "pending"}
    row = await load_job(sessions, job.id)
    assert row is not None and row.status == "done" and row.attempts == 1
    # Delivered again (a reconciler re-push): the row is done, so it does not run again.
    seen.clear()
    assert await run_job({"chairfill": worker_context}, job.id, tenant.id) is None
    assert seen == {}
