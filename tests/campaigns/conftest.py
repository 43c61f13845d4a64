"""Campaign fixtures: the messaging layer's real SMTP server (aiosmtpd) and Twilio
stand-in, a practice whose first location finished SMS registration, and a driver that
runs due jobs through the real job runner (as a worker would)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job
from api.tenancy.models import Location
from tests.messaging.conftest import (  # noqa: F401 (fixtures)
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    make_patient,
    smtp_server,
    twilio,
    worker_context,
)
from workers.runner import WorkerContext, run_job

SMS_BODY = "Hi {{patient.first_name}}, {{office.name}} has openings this week: {{booking.link}}"
EMAIL = {
    "channel": "email",
    "subject": "Openings this week, {{patient.first_name}}",
    "blocks": [
        {"type": "heading", "text": "We have openings"},
        {"type": "paragraph", "text": "Call {{office.phone}} or book online."},
    ],
}
ACTIVE = {"version": 1, "rule": {"field": "status", "op": "in", "value": ["active"]}}


class Jobs:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    async def pending(self, tasks: Iterable[str] | None = None, due_by: datetime | None = None):
        async with unit_of_work(self.context.sessions) as session:
            stmt = select(Job).where(Job.status == "pending").order_by(Job.run_at, Job.id)
            if tasks is not None:
                stmt = stmt.where(Job.task.in_(list(tasks)))
            if due_by is not None:
                stmt = stmt.where(Job.run_at <= due_by)
            return list((await session.execute(stmt)).scalars())

    async def run(self, job_id: str) -> Any:
        return await run_job({"chairfill": self.context}, job_id)

    async def run_due(
        self, tasks: Iterable[str] | None = None, until: datetime | None = None
    ) -> int:
        """Run due jobs (those the runs enqueue too) until none is left; how many ran."""
        ran = 0
        while True:
            due = await self.pending(tasks, until or utcnow())
            if not due:
                return ran
            for job in due:
                await self.run(job.id)
                ran += 1


@pytest.fixture
def campaign_jobs(worker_context: WorkerContext) -> Jobs:  # noqa: F811
    return Jobs(worker_context)


@pytest.fixture
async def sms_ready(practice, sessions):
    """The practice's first location finished SMS registration; the second did not."""
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(Location)
            .where(Location.id == practice.locations[0].id)
            .values(sms_registration_complete=True)
        )
    return practice


@pytest.fixture
async def providers(client, sms_ready, smtp_server, twilio):  # noqa: F811
    """Email through the local SMTP server, SMS through the Twilio stand-in."""
    controller, _ = smtp_server
    email = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": controller.port,
        "security": "none",
        "from_address": "hello@brightsmiles.example",
    }
    sms = {
        "kind": "twilio",
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": FROM_NUMBER,
        "base_url": twilio.base_url,
    }
    for channel, body in (("email", email), ("sms", sms)):
        response = await client.put(
            f"/v1/messaging/providers/{channel}", json=body, headers=sms_ready.headers
        )
        assert response.status_code == 200, response.text
    return sms_ready


def campaign_body(practice, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Fill the hygiene column",
        "channels": ["sms"],
        "campaign_type": "instant",
        "location_ids": [practice.locations[0].id],
        "sms": {"channel": "sms", "body": SMS_BODY},
        "recipients": {"kind": "filters", "rule": ACTIVE},
    }
    return body | overrides


async def create_and_submit(
    client, practice, key: str = "submit-1", headers: dict | None = None, **overrides: Any
) -> dict:
    headers = headers or practice.headers
    created = await client.post(
        "/v1/campaigns", json=campaign_body(practice, **overrides), headers=headers
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    submitted = await client.post(
        f"/v1/campaigns/{campaign_id}/submit",
        headers=headers | {"Idempotency-Key": key},
    )
    assert submitted.status_code == 200, submitted.text
    return submitted.json()
