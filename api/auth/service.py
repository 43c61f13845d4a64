"""Turning a presented credential into a Principal."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import repository
from api.auth.principal import Principal
from api.core.clock import utcnow
from api.core.errors import Unauthorized
from api.core.security import hash_token


def _locations(ids: list[str] | None) -> frozenset[str] | None:
    return None if ids is None else frozenset(ids)


async def principal_for_access_token(session: AsyncSession, token: str) -> Principal:
    row = await repository.active_token_by_hash(session, hash_token(token), utcnow())
    if row is None:
        raise Unauthorized(
            "The access token is invalid, expired or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="chairfill", error="invalid_token"'},
        )
    return Principal(
        tenant_id=row.tenant_id,
        kind="user" if row.user_id else "client",
        client_id=row.client_id,
        user_id=row.user_id,
        token_id=row.id,
        scopes=frozenset(row.scopes),
        location_ids=_locations(row.location_ids),
    )


async def principal_for_publishable_key(session: AsyncSession, key: str) -> Principal:
    row = await repository.active_publishable_key(session, key)
    if row is None:
        raise Unauthorized("The publishable key is unknown or revoked.")
    return Principal(
        tenant_id=row.tenant_id,
        kind="publishable_key",
        client_id=row.id,
        scopes=frozenset(),
        location_ids=frozenset(row.location_ids),
        allowed_origins=tuple(row.allowed_origins),
    )
