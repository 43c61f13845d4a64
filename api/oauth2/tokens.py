"""Minting tokens: pure construction of the row and the two secrets, shared by the
Authlib server (sync) and the async callers (CLI, tests, `chairfill up`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from api.core.ids import new_id, new_secret
from api.core.security import hash_token
from api.core.settings import OAuthSettings
from api.oauth2.models import OAuthToken

ACCESS_TOKEN_PREFIX = "cfat"
REFRESH_TOKEN_PREFIX = "cfrt"
CLIENT_SECRET_PREFIX = "cfcs"
PUBLISHABLE_KEY_PREFIX = "pk"


@dataclass(frozen=True)
class MintedToken:
    row: OAuthToken
    access_token: str
    refresh_token: str | None
    expires_in: int


def mint_token(
    *,
    tenant_id: str,
    client_id: str,
    scopes: list[str],
    location_ids: list[str] | None,
    now: datetime,
    config: OAuthSettings,
    user_id: str | None = None,
    with_refresh: bool = False,
    family_id: str | None = None,
) -> MintedToken:
    access = new_secret(ACCESS_TOKEN_PREFIX)
    refresh = new_secret(REFRESH_TOKEN_PREFIX) if with_refresh else None
    token_id = new_id("oauth_token")
    row = OAuthToken(
        tenant_id=tenant_id,
        id=token_id,
        client_id=client_id,
        user_id=user_id,
        access_token_hash=hash_token(access),
        refresh_token_hash=hash_token(refresh) if refresh else None,
        scopes=list(scopes),
        location_ids=None if location_ids is None else list(location_ids),
        family_id=family_id or token_id,
        issued_at=now,
        expires_at=now + timedelta(seconds=config.access_token_ttl_seconds),
        refresh_expires_at=(now + timedelta(seconds=config.refresh_token_ttl_seconds))
        if refresh
        else None,
    )
    return MintedToken(
        row=row,
        access_token=access,
        refresh_token=refresh,
        expires_in=config.access_token_ttl_seconds,
    )
