"""The sandbox: "sends" by recording the message in Postgres (GET /v1/sandbox/messages).
The default where no provider is configured (the embedded setup), and what demos use."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.ids import new_id
from api.messaging.models import SandboxMessage
from api.messaging.providers.base import ChannelProvider, OutboundMessage, ProviderResult


class SandboxProvider(ChannelProvider):
    kind = "sandbox"

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def send(self, message: OutboundMessage) -> ProviderResult:
        row = SandboxMessage(
            tenant_id=self.tenant_id,
            id=new_id("sandbox_message"),
            message_id=message.message_id,
            channel=message.channel,
            to_address=message.to,
            subject=message.subject,
            body_text=message.body_text,
            body_html=message.body_html,
            headers=dict(message.headers),
        )
        self.session.add(row)
        await self.session.flush()
        # Nothing leaves the building, so it is as delivered as it will ever be.
        return ProviderResult(row.id, "delivered")
