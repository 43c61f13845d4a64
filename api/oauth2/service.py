"""OAuth clients, tokens and publishable keys (the operations the CLI, tests and the
authorization server share)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scopes import ALL_SCOPES, unknown_scopes
from api.core.clock import utcnow
from api.core.errors import NotFound, ValidationProblem
from api.core.ids import new_id, new_secret
from api.core.security import hash_token
from api.core.settings import OAuthSettings
from api.oauth2 import repository
from api.oauth2.models import OAuthClient, PublishableKey
from api.oauth2.tokens import CLIENT_SECRET_PREFIX, PUBLISHABLE_KEY_PREFIX, MintedToken, mint_token
from api.tenancy import repository as tenancy_repository

CLIENT_CREDENTIALS = "client_credentials"
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"


@dataclass(frozen=True)
class CreatedClient:
    client: OAuthClient
    # Shown once; only its hash is stored.
    client_secret: str | None


async def _check_locations(session: AsyncSession, tenant_id: str, location_ids: list[str] | None) -> None:
    if await tenancy_repository.get_tenant(session, tenant_id) is None:
        raise NotFound(f"There is no tenant {tenant_id}.")
    if location_ids:
        found = {loc.id for loc in await tenancy_repository.locations_by_ids(session, tenant_id, location_ids)}
        missing = sorted(set(location_ids) - found)
        if missing:
            raise NotFound(f"No such location in this tenant: {', '.join(missing)}")


async def create_client(
    session: AsyncSession,
    tenant_id: str,
    *,
    name: str,
    scopes: list[str],
    location_ids: list[str] | None = None,
    redirect_uris: list[str] | None = None,
    public: bool = False,
) -> CreatedClient:
    """A confidential client gets a secret and the client-credentials grant; a client with
    redirect URIs may also use the authorization-code grant (PKCE S256 required)."""
    bad = unknown_scopes(scopes)
    if bad:
        raise ValidationProblem(
            f"Unknown scopes: {', '.join(bad)}. Known: {', '.join(ALL_SCOPES)}.",
            errors=[{"field": "scope", "message": f"unknown scope {s}"} for s in bad],
        )
    await _check_locations(session, tenant_id, location_ids)
    grant_types = [] if public else [CLIENT_CREDENTIALS]
    if redirect_uris:
        grant_types += [AUTHORIZATION_CODE, REFRESH_TOKEN]
    if not grant_types:
        raise ValidationProblem(
            "A public client needs at least one redirect URI.",
            errors=[{"field": "redirect_uris", "message": "required for a public client"}],
        )
    secret = None if public else new_secret(CLIENT_SECRET_PREFIX)
    client = OAuthClient(
        tenant_id=tenant_id,
        id=new_id("oauth_client"),
        name=name,
        secret_hash=hash_token(secret) if secret else None,
        scopes=[s for s in ALL_SCOPES if s in set(scopes)],
        location_ids=sorted(set(location_ids)) if location_ids else None,
        redirect_uris=list(redirect_uris or []),
        grant_types=grant_types,
    )
    session.add(client)
    await session.flush()
    return CreatedClient(client=client, client_secret=secret)


async def issue_client_token(
    session: AsyncSession, client: OAuthClient, config: OAuthSettings, scopes: list[str] | None = None
) -> MintedToken:
    """A client-credentials token (used by `chairfill up` to print a ready token and by
    tests; integrators go through /oauth/token)."""
    granted = client.scopes if scopes is None else [s for s in client.scopes if s in set(scopes)]
    minted = mint_token(
        tenant_id=client.tenant_id,
        client_id=client.id,
        scopes=granted,
        location_ids=client.location_ids,
        now=utcnow(),
        config=config,
    )
    session.add(minted.row)
    await session.flush()
    return minted


async def create_publishable_key(
    session: AsyncSession,
    tenant_id: str,
    *,
    name: str,
    location_ids: list[str],
    allowed_origins: list[str],
) -> PublishableKey:
    if not location_ids:
        raise ValidationProblem(
            "A publishable key needs at least one location.",
            errors=[{"field": "location_ids", "message": "at least one location"}],
        )
    await _check_locations(session, tenant_id, location_ids)
    key = PublishableKey(
        tenant_id=tenant_id,
        id=new_id("publishable_key"),
        key=new_secret(PUBLISHABLE_KEY_PREFIX, 24),
        name=name,
        location_ids=sorted(set(location_ids)),
        allowed_origins=[o.rstrip("/") for o in allowed_origins],
        is_active=True,
    )
    session.add(key)
    await session.flush()
    return key
