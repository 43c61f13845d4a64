"""Messaging fixtures: a real SMTP server (aiosmtpd) and a real loopback Twilio stand-in,
patients in the mirror, and the real job runner driven on due `messaging.send` jobs."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from api.core.db import unit_of_work
from api.core.embedded import free_port
from api.core.ids import new_id
from api.core.infra_models import Job
from api.core.settings import Settings
from api.messaging.sending import SEND_TASK
from api.practice.models import Patient
from tests.messaging.twilio_standin import TwilioStandIn, running_twilio
from workers.runner import WorkerContext, run_job

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-for-tests"
FROM_NUMBER = "+15125550199"


class Mailbox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with running_twilio(ACCOUNT_SID, AUTH_TOKEN) as standin:
        yield standin


def twilio_signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


@pytest.fixture
def make_patient(sessions):
    async def _make(tenant_id: str, location_id: str, **fields: Any) -> Patient:
        values: dict[str, Any] = {
            "first_name": "Jordan",
            "last_name": "Rivera",
            "status": "active",
            "mobile": "+15125550100",
            "email": "jordan@example.com",
            "sms_consent": True,
            "email_consent": True,
            "communication_preference": "sms",
        } | fields
        async with unit_of_work(sessions, tenant_id) as session:
            patient = Patient(
                tenant_id=tenant_id,
                id=new_id("patient"),
                location_id=location_id,
                external_id=new_id("patient"),
                **values,
            )
            session.add(patient)
        return patient

    return _make


@pytest.fixture
async def worker_context(settings: Settings) -> AsyncIterator[WorkerContext]:
    context = await WorkerContext.start(settings)
    yield context
    await context.close()


class SendJobs:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    async def run_due(self) -> int:
        """Run every pending `messaging.send` job through the real runner; how many ran."""
        async with unit_of_work(self.context.sessions) as session:
            stmt = (
                select(Job.id)
                .where(Job.task == SEND_TASK, Job.status == "pending")
                .order_by(Job.run_at, Job.id)
            )
            ids = list((await session.execute(stmt)).scalars())
        for job_id in ids:
            await run_job({"chairfill": self.context}, job_id)
        return len(ids)


@pytest.fixture
def send_jobs(worker_context: WorkerContext) -> SendJobs:
    return SendJobs(worker_context)
