"""OAuth clients, tokens and publishable keys (the operations the CLI, tests and the
authorization server share)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from api.auth.scopes import ALL_SCOPES, unknown_scopes
from api.core.clock import utcnow
from api.core.errors import Forbidden, NotFound, Unauthorized, ValidationProblem
from api.core.ids import new_id, new_secret
from api.core.security import hash_password, hash_token, verify_password
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


async def _check_locations(
    session: AsyncSession, tenant_id: str, location_ids: list[str] | None
) -> None:
    if await tenancy_repository.get_tenant(session, tenant_id) is None:
        raise NotFound(f"There is no tenant {tenant_id}.")
    if location_ids:
        found = {
            loc.id
            for loc in await tenancy_repository.locations_by_ids(session, tenant_id, location_ids)
        }
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
    session: AsyncSession,
    client: OAuthClient,
    config: OAuthSettings,
    scopes: list[str] | None = None,
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


# --- Consent: what a staff user may grant an app (used by the authorization endpoint). ---


class WrongCredentials(Unauthorized):
    slug = "wrong-credentials"
    title = "The email or password is not correct"


class ConsentRefused(Forbidden):
    slug = "consent-refused"
    title = "This user cannot grant the requested access"


@dataclass(frozen=True)
class Consent:
    """What a staff user granted: the scopes they hold, at the locations where they hold
    every one of them."""

    user_id: str
    scopes: list[str]
    location_ids: list[str]


@lru_cache(maxsize=1)
def _decoy_password_hash() -> str:
    return hash_password("decoy password, never matches a real one")


def authenticate_staff(session: Session, tenant_id: str, email: str, password: str) -> str:
    """The staff user's id, if the email and password match an active user of the tenant."""
    user = repository.staff_user_by_email_sync(session, tenant_id, email)
    if user is None or not user.is_active:
        # Hash anyway, so the response time does not tell which emails exist.
        verify_password(password, _decoy_password_hash())
        raise WrongCredentials("The email or password is not correct.")
    if not verify_password(password, user.password_hash):
        raise WrongCredentials("The email or password is not correct.")
    return user.id


def decide_consent(
    user_id: str,
    requested: list[str],
    rights: Iterable[tuple[str, str]],
    client_location_ids: list[str] | None,
) -> Consent:
    """Granted scopes = requested scopes the user holds (where the app may act); the
    token's locations = those where the user holds ALL granted scopes.

    `rights` are (location_id, right) pairs; rights are named like the scopes they allow."""
    allowed = None if client_location_ids is None else set(client_location_ids)
    held: dict[str, set[str]] = {}
    for location_id, right in rights:
        if allowed is None or location_id in allowed:
            held.setdefault(location_id, set()).add(right)
    held_anywhere = set().union(*held.values()) if held else set()
    scopes = [s for s in ALL_SCOPES if s in set(requested) and s in held_anywhere]
    if not scopes:
        raise ConsentRefused(
            "You hold none of the rights this app asks for "
            f"({', '.join(requested)}), so you cannot grant it access."
        )
    locations = sorted(loc for loc, rs in held.items() if set(scopes) <= rs)
    if not locations:
        raise ConsentRefused(
            "There is no location where you hold all of these rights: "
            f"{', '.join(scopes)}. Ask the app to request fewer scopes, or ask an "
            "administrator for the rights."
        )
    return Consent(user_id=user_id, scopes=scopes, location_ids=locations)


def staff_consent(
    session: Session,
    tenant_id: str,
    *,
    email: str,
    password: str,
    requested: list[str],
    client_location_ids: list[str] | None,
) -> Consent:
    user_id = authenticate_staff(session, tenant_id, email, password)
    rights = repository.rights_of_sync(session, tenant_id, user_id)
    return decide_consent(
        user_id, requested, [(r.location_id, r.right) for r in rights], client_location_ids
    )


def staff_user_is_active(session: Session, tenant_id: str, user_id: str) -> bool:
    user = repository.staff_user_sync(session, tenant_id, user_id)
    return user is not None and user.is_active
