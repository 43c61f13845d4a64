"""The jobs facade keeps pushing through a live queue whatever order app instances and
workers in one process stop in (a stopped one must not leave the others without one)."""

from __future__ import annotations

from sqlalchemy import func, select

from api.core import jobs
from api.core.db import unit_of_work
from api.core.infra_models import Job


class _Queue(jobs.JobQueue):
    def __init__(self, name: str) -> None:  # no Redis needed to track which queue is active
        self.name = name


def test_stopping_in_any_order_leaves_the_newest_live_queue_active():
    before = jobs.current_queue()
    first, second = _Queue("first"), _Queue("second")
    jobs.activate(first)
    jobs.activate(second)
    assert jobs.current_queue() is second
    jobs.deactivate(first)  # the older one stops first
    assert jobs.current_queue() is second
    jobs.deactivate(second)
    assert jobs.current_queue() is before
    jobs.deactivate(second)  # stopping twice is harmless
    assert jobs.current_queue() is before


async def test_enqueue_once_records_a_dedupe_key_once_and_keeps_the_transaction(sessions):
    async with unit_of_work(sessions) as session:
        assert await jobs.enqueue_once(
            session, "maintenance.purge_expired", tenant_id=None, dedupe_key="once:test"
        )
        # The second insert fails in its savepoint; the transaction goes on.
        assert not await jobs.enqueue_once(
            session, "maintenance.purge_expired", tenant_id=None, dedupe_key="once:test"
        )
        recorded = await session.scalar(
            select(func.count()).select_from(Job).where(Job.dedupe_key == "once:test")
        )
    assert recorded == 1
    async with unit_of_work(sessions) as session:  # committed, and still refused later
        assert not await jobs.enqueue_once(
            session, "maintenance.purge_expired", tenant_id=None, dedupe_key="once:test"
        )
