"""Helpers shared by the messaging tests: calling the send service as campaigns will, and
reading rows back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from api.core.db import unit_of_work
from api.messaging.schemas import EmailContent, SmsContent
from api.messaging.sending import MessageSource, SendOutcome, send_message
from api.webhooks.models import Event

SMS = SmsContent(
    channel="sms",
    body="Hi {{patient.first_name}}, {{office.name}} misses you! Book: {{booking.link}}",
)
EMAIL = EmailContent.model_validate(
    {
        "channel": "email",
        "subject": "Time for your cleaning, {{patient.first_name}}",
        "blocks": [
            {"type": "heading", "text": "We miss you, {{patient.preferred_name}}"},
            {"type": "paragraph", "text": "Your recall is due. Call {{office.phone}}."},
            {"type": "button", "text": "Book now", "url": "{{booking.link}}"},
        ],
    }
)


async def send(
    sessions: Any,
    settings: Any,
    tenant_id: str,
    location_id: str,
    patient_id: str,
    *,
    content: SmsContent | EmailContent = SMS,
    source: tuple[str, str] = ("campaign", "cmp_1"),
) -> SendOutcome:
    async with unit_of_work(sessions, tenant_id) as session:
        return await send_message(
            session,
            tenant_id=tenant_id,
            location_id=location_id,
            patient_id=patient_id,
            content=content,
            source=MessageSource(*source),
            settings=settings,
        )


async def rows(sessions: Any, model: Any, **where: Any) -> list[Any]:
    async with unit_of_work(sessions) as session:
        stmt = select(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return list((await session.execute(stmt.order_by(model.id))).scalars())


async def event_types(sessions: Any, tenant_id: str) -> list[str]:
    async with unit_of_work(sessions) as session:
        stmt = select(Event.type).where(Event.tenant_id == tenant_id).order_by(Event.id)
        return list((await session.execute(stmt)).scalars())


async def count(sessions: Any, model: Any) -> int:
    async with unit_of_work(sessions) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())
