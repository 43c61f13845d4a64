"""Credential look-ups. These run before the tenant is known, in a system session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.oauth2.models import OAuthToken, PublishableKey

# Built once: every authenticated request runs one of these.
_ACTIVE_TOKEN = select(OAuthToken).where(
    OAuthToken.access_token_hash == bindparam("access_token_hash"),
    OAuthToken.revoked_at.is_(None),
    OAuthToken.expires_at > bindparam("now"),
)
_ACTIVE_PUBLISHABLE_KEY = select(PublishableKey).where(
    PublishableKey.key == bindparam("key"),
    PublishableKey.is_active.is_(True),
    PublishableKey.revoked_at.is_(None),
)


async def active_token_by_hash(
    session: AsyncSession, access_token_hash: str, now: datetime
) -> OAuthToken | None:
    params = {"access_token_hash": access_token_hash, "now": now}
    return (await session.execute(_ACTIVE_TOKEN, params)).scalar_one_or_none()


async def active_publishable_key(session: AsyncSession, key: str) -> PublishableKey | None:
    return (await session.execute(_ACTIVE_PUBLISHABLE_KEY, {"key": key})).scalar_one_or_none()
