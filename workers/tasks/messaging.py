"""Sending: one job per attempt of one message (api/messaging/sending.py). A transient
provider failure schedules the next attempt as a new job in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.infra_models import Job
from api.core.settings import get_settings
from api.messaging.sending import deliver_message


async def send(session: AsyncSession, job: Job) -> dict[str, Any]:
    return await deliver_message(
        session, job.args["tenant_id"], job.args["message_id"], get_settings()
    )
