"""Cadence fixtures: patients in the mirror (through the bridge's ingest), the real job
runner for the cron fan-out and the per-tenant dispatch, and the messaging fixtures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job
from api.practice import ingest
from tests.booking.conftest import mirror  # noqa: F401  (fixture)
from tests.booking.test_widget_e2e import browser  # noqa: F401  (fixture)
from tests.messaging.conftest import (  # noqa: F401  (fixtures)
    make_patient,
    send_jobs,
    worker_context,
)
from workers.runner import WorkerContext, run_job
from workers.tasks import cadences as cadence_tasks

WINBACK = {"name": "Spring win-back", "template": "winback"}


async def sync(sessions, tenant_id: str, location_id: str, entity: str, rows: list[dict]) -> None:
    """Rows pushed as the PMS bridge pushes them."""
    async with unit_of_work(sessions, tenant_id) as session:
        now = utcnow()
        await ingest.sync_batch(
            session,
            tenant_id=tenant_id,
            location_id=location_id,
            entity=entity,
            rows=rows,
            watermark=now,
            now=now,
        )


def patient_row(external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "first_name": external_id.title(),
        "last_name": "Lopez",
        "status": "active",
        "mobile": None,
        "email": None,
        "sms_consent": True,
        "email_consent": True,
    } | fields


async def patient_ids(sessions, tenant_id: str) -> dict[str, str]:
    """external id -> our id."""
    from api.practice.models import Patient

    async with unit_of_work(sessions, tenant_id) as session:
        rows = await session.execute(select(Patient.external_id, Patient.id))
        return {external: ours for external, ours in rows}


class Ticks:
    """What the default queue does every minute: the cron fans out, the jobs run."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    async def run_pending(self, tasks: Sequence[str]) -> int:
        async with unit_of_work(self.context.sessions) as session:
            stmt = (
                select(Job.id)
                .where(Job.task.in_(list(tasks)), Job.status == "pending", Job.run_at <= utcnow())
                .order_by(Job.run_at, Job.id)
            )
            ids = list((await session.execute(stmt)).scalars())
        for job_id in ids:
            await run_job({"chairfill": self.context}, job_id)
        return len(ids)

    async def tick(self) -> int:
        await cadence_tasks.enqueue_ticks({"chairfill": self.context})
        return await self.run_pending(["cadences.dispatch"])

    async def enroll(self) -> int:
        await cadence_tasks.enqueue_enrollments({"chairfill": self.context})
        return await self.run_pending(["cadences.enroll"])


@pytest.fixture
def ticks(worker_context: WorkerContext) -> Ticks:  # noqa: F811  (the imported fixture)
    return Ticks(worker_context)
