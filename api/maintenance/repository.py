"""Queries for housekeeping: deleting what has expired, one tenant at a time, and finding
which nightly jobs already exist."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.infra_models import IdempotencyRecord, Job
from api.oauth2.models import AuthorizationCode, OAuthToken


async def delete_expired_tokens(session: AsyncSession, tenant_id: str, now: datetime) -> int:
    # A token with a refresh token lives as long as its refresh token can still be used.
    stmt = delete(OAuthToken).where(
        OAuthToken.tenant_id == tenant_id,
        or_(
            and_(OAuthToken.refresh_token_hash.is_not(None), OAuthToken.refresh_expires_at <= now),
            and_(OAuthToken.refresh_token_hash.is_(None), OAuthToken.expires_at <= now),
        ),
    )
    return _count(await session.execute(stmt))


async def delete_spent_authorization_codes(
    session: AsyncSession, tenant_id: str, now: datetime
) -> int:
    """Codes that were used or have expired.

    A used code is kept until its own expiry, so a replay within its lifetime is still
    recognised as a replay (RFC 6749 section 4.1.2) rather than as an unknown code."""
    stmt = delete(AuthorizationCode).where(
        AuthorizationCode.tenant_id == tenant_id, AuthorizationCode.expires_at <= now
    )
    return _count(await session.execute(stmt))


async def delete_expired_idempotency_records(
    session: AsyncSession, tenant_id: str, now: datetime
) -> int:
    stmt = delete(IdempotencyRecord).where(
        IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.expires_at <= now
    )
    return _count(await session.execute(stmt))


async def existing_dedupe_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    stmt = select(Job.dedupe_key).where(Job.dedupe_key.in_(keys))
    return {k for k in (await session.execute(stmt)).scalars() if k is not None}


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
