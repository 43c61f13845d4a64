"""Credential look-ups. These run before the tenant is known, in a system session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.oauth2.models import OAuthToken, PublishableKey


async def active_token_by_hash(
    session: AsyncSession, access_token_hash: str, now: datetime
) -> OAuthToken | None:
    stmt = select(OAuthToken).where(
        OAuthToken.access_token_hash == access_token_hash,
        OAuthToken.revoked_at.is_(None),
        OAuthToken.expires_at > now,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_publishable_key(session: AsyncSession, key: str) -> PublishableKey | None:
    stmt = select(PublishableKey).where(
        PublishableKey.key == key,
        PublishableKey.is_active.is_(True),
        PublishableKey.revoked_at.is_(None),
    )
    return (await session.execute(stmt)).scalar_one_or_none()
