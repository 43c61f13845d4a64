"""Sending: one job per attempt of one message (api/messaging/sending.py), or one job per
batch of a source's due messages (api/messaging/batch.py). A transient provider failure
schedules the next attempt as a new job in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.infra_models import Job
from api.core.settings import get_settings
from api.messaging.batch import deliver_batch
from api.messaging.sending import deliver_message


async def send(session: AsyncSession, job: Job) -> dict[str, Any]:
    return await deliver_message(
        session, job.args["tenant_id"], job.args["message_id"], get_settings()
    )


async def send_batch(session: AsyncSession, job: Job) -> dict[str, Any]:
    """A batch of one source's due messages (campaigns): see api/messaging/batch.py."""
    args = job.args
    return await deliver_batch(
        session, args["tenant_id"], args["source_kind"], args["source_id"], get_settings()
    )
