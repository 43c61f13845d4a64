"""Campaign sends: start (snapshot the recipients), batches (record messages in the send
ledger), finish (completed once nothing is left). See api/campaigns/sending.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.campaigns import sending
from api.core.infra_models import Job
from api.core.settings import get_settings


async def start(session: AsyncSession, job: Job) -> dict[str, Any]:
    return await sending.start_campaign(session, job.args)


async def send_batch(session: AsyncSession, job: Job) -> dict[str, Any]:
    return await sending.send_batch(session, job.args, get_settings())


async def finish(session: AsyncSession, job: Job) -> dict[str, Any]:
    return await sending.finish_campaign(session, job.args)
