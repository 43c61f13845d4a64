"""Webhook test helpers: a loopback receiver, the real job runner driven on due jobs, and
endpoint factories that go through the REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job
from api.core.settings import Settings
from api.webhooks.models import WebhookDelivery
from tests.webhooks.receiver import Receiver, running_receiver
from workers.runner import WorkerContext, run_job

DELIVER = "webhooks.deliver"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
async def worker_context(settings: Settings) -> AsyncIterator[WorkerContext]:
    context = await WorkerContext.start(settings)
    yield context
    await context.close()


class Jobs:
    """Runs due `webhooks.deliver` jobs through the real runner (workers.runner.run_job),
    as an arq worker would, without waiting for Redis's deferral clock."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    async def pending(self) -> list[Job]:
        async with unit_of_work(self.context.sessions) as session:
            stmt = (
                select(Job)
                .where(Job.task == DELIVER, Job.status == "pending")
                .order_by(Job.run_at, Job.id)
            )
            return list((await session.execute(stmt)).scalars())

    async def run_due(self, *, advance: timedelta | None = None) -> int:
        """Run every pending job due now (or within `advance`, moving those jobs and the
        deliveries due by then forward to now, which is what waiting that long would do).
        Returns how many ran."""
        if advance is not None:
            async with unit_of_work(self.context.sessions) as session:
                until = utcnow() + advance
                await session.execute(
                    update(Job)
                    .where(Job.task == DELIVER, Job.status == "pending", Job.run_at <= until)
                    .values(run_at=utcnow())
                )
                await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= until,
                    )
                    .values(next_attempt_at=utcnow())
                )
        ran = 0
        for job in await self.pending():
            if job.run_at <= utcnow():
                await run_job({"chairfill": self.context}, job.id)
                ran += 1
        return ran

    async def run_until_idle(self, rounds: int = 10) -> int:
        total = 0
        for _ in range(rounds):
            ran = await self.run_due()
            total += ran
            if not ran:
                break
        return total


@pytest.fixture
def run_jobs(worker_context: WorkerContext) -> Jobs:
    return Jobs(worker_context)


async def create_endpoint(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-endpoints", headers=headers, json={"url": url} | fields
    )
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(sessions, **where: Any) -> list[WebhookDelivery]:
    async with unit_of_work(sessions) as session:
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(WebhookDelivery, name) == value)
        return list((await session.execute(stmt)).scalars())
