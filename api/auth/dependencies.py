"""FastAPI dependencies for authentication and scope checks.

Routes declare what they need with the aliases at the bottom of each domain's router
(`Security(authorize, scopes=[...])`), so OpenAPI shows the scope of every operation.
Routers are authenticated by default; a public route simply does not depend on these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.openapi.models import (
    OAuthFlowAuthorizationCode,
    OAuthFlowClientCredentials,
    OAuthFlows,
)
from fastapi.security import OAuth2, SecurityScopes

from api.auth import service
from api.auth.principal import Principal
from api.auth.scopes import SCOPE_DESCRIPTIONS, Scope
from api.core.db import single_read
from api.core.errors import Forbidden, MissingScope, Unauthorized
from api.core.ratelimit import client_address

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token", scopes={s.value: d for s, d in SCOPE_DESCRIPTIONS.items()}
        ),
        authorizationCode=OAuthFlowAuthorizationCode(
            authorizationUrl="/oauth/authorize",
            tokenUrl="/oauth/token",
            refreshUrl="/oauth/token",
            scopes={s.value: d for s, d in SCOPE_DESCRIPTIONS.items()},
        ),
    ),
    scheme_name="OAuth2",
    description="Bearer access tokens from /oauth/token. Booking widgets may instead send a "
    "publishable key (`pk_...`) as the bearer value or as `?publishable_key=`.",
    auto_error=False,
)

# A scope that includes another: "Manage Communications setup" can review what it manages.
IMPLIED_SCOPES: dict[str, set[str]] = {
    Scope.COMMUNICATIONS_REVIEW.value: {Scope.COMMUNICATIONS_MANAGE.value},
}


async def resolve_principal(request: Request, authorization: str | None = None) -> Principal:
    """Resolve (once per request) who is calling; rate-limit them."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    credential = authorization or presented_credential(
        request.headers.get("authorization"), request.query_params.get("publishable_key")
    )
    if not credential:
        raise Unauthorized("Send an access token: `Authorization: Bearer <token>`.")
    state = request.app.state.chairfill
    async with single_read(state.sessions) as session:
        if credential.startswith("pk_"):
            principal = await service.principal_for_publishable_key(session, credential)
            check_origin(principal, request.headers.get("origin"))
        else:
            principal = await service.principal_for_access_token(session, credential)
    request.state.principal = principal
    await rate_limit(request, principal)
    return principal


async def rate_limit(request: Request, principal: Principal) -> None:
    """Count the request against its caller's limit (raises RateLimited over it)."""
    state = request.app.state.chairfill
    limits = state.settings.rate_limits
    if limits.enabled:
        if principal.kind == "publishable_key":
            bucket = f"pk:{principal.client_id}:{client_address(request)}"
            await state.rate_limiter.hit(request, bucket, limits.publishable_key_per_minute)
        else:
            await state.rate_limiter.hit(
                request, f"client:{principal.id}", limits.client_per_minute
            )


def presented_credential(authorization: str | None, publishable_key: str | None) -> str | None:
    """The bearer value of an `Authorization` header, else a `?publishable_key=`."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return publishable_key or None


def check_origin(principal: Principal, origin: str | None) -> None:
    """A browser always sends Origin with a cross-origin call; a page that is not on the
    key's list is refused (calls without Origin come from servers, where the key is no
    secret anyway)."""
    if origin is not None and origin.rstrip("/") not in {
        o.rstrip("/") for o in principal.allowed_origins
    }:
        raise Forbidden(f"This publishable key may not be used from {origin}.")


async def authenticate(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)] = None,
    publishable_key: Annotated[
        str | None,
        Query(
            description="A booking widget's publishable key, where it cannot send headers.",
            include_in_schema=False,
        ),
    ] = None,
) -> Principal:
    # The OAuth2 scheme is declared for the docs; the header is parsed in resolve_principal.
    del token
    return await resolve_principal(request, publishable_key)


def check_scopes(principal: Principal, required: list[str]) -> None:
    if principal.kind == "publishable_key":
        raise Forbidden("Publishable keys may only call the slot and booking endpoints.")
    for scope in required:
        if not principal.has_scope(scope, *IMPLIED_SCOPES.get(scope, set())):
            raise MissingScope([scope])


async def authorize(
    security_scopes: SecurityScopes, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """A token holding every scope the route declares (publishable keys are refused)."""
    check_scopes(principal, security_scopes.scopes)
    return principal


async def authorize_or_publishable(
    security_scopes: SecurityScopes, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """For slot and booking routes: the declared scopes, or a publishable key used from
    one of its allowed origins (browsers send Origin; a page elsewhere is refused)."""
    if principal.kind == "publishable_key":
        return principal
    check_scopes(principal, security_scopes.scopes)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
