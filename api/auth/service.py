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
    return token_principal(
        tenant_id=row.tenant_id,
        client_id=row.client_id,
        user_id=row.user_id,
        token_id=row.id,
        scopes=row.scopes,
        location_ids=row.location_ids,
    )


def token_principal(
    *,
    tenant_id: str,
    client_id: str,
    user_id: str | None,
    token_id: str,
    scopes: list[str],
    location_ids: list[str] | None,
) -> Principal:
    """The caller an active access token stands for (from its row, however it was read)."""
    return Principal(
        tenant_id=tenant_id,
        kind="user" if user_id else "client",
        client_id=client_id,
        user_id=user_id,
        token_id=token_id,
        scopes=frozenset(scopes),
        location_ids=_locations(location_ids),
    )


async def principal_for_publishable_key(session: AsyncSession, key: str) -> Principal:
    row = await repository.active_publishable_key(session, key)
    if row is None:
        raise Unauthorized("The publishable key is unknown or revoked.")
    return publishable_key_principal(
        tenant_id=row.tenant_id,
        key_id=row.id,
        location_ids=row.location_ids,
        allowed_origins=row.allowed_origins,
    )


def publishable_key_principal(
    *, tenant_id: str, key_id: str, location_ids: list[str], allowed_origins: list[str]
) -> Principal:
    """The booking widget an active publishable key stands for."""
    return Principal(
        tenant_id=tenant_id,
        kind="publishable_key",
        client_id=key_id,
        scopes=frozenset(),
        location_ids=frozenset(location_ids),
        allowed_origins=tuple(allowed_origins),
    )
