from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.repository import scoped
from api.oauth2.models import OAuthClient, PublishableKey


async def get_client(session: AsyncSession, tenant_id: str, client_id: str) -> OAuthClient | None:
    stmt = scoped(OAuthClient, tenant_id).where(OAuthClient.id == client_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def client_by_id_any_tenant(session: AsyncSession, client_id: str) -> OAuthClient | None:
    """System look-up (token endpoint): the client id tells us the tenant."""
    stmt = select(OAuthClient).where(OAuthClient.id == client_id, OAuthClient.revoked_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_publishable_keys(session: AsyncSession, tenant_id: str) -> list[PublishableKey]:
    stmt = scoped(PublishableKey, tenant_id).order_by(PublishableKey.id)
    return list((await session.execute(stmt)).scalars())
