"""OAuth endpoints: /oauth/authorize (login + consent page), /oauth/token, /oauth/revoke,
/oauth/introspect and the RFC 8414 metadata document.

Errors here are RFC 6749 JSON errors (or error redirects to the client), not problem+json:
OAuth client libraries parse that shape. Each call runs the Authlib server in a worker
thread, in one transaction (api/oauth2/server.py)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from itsdangerous import BadData, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from starlette.responses import Response

from api.auth.scopes import ALL_SCOPES, DENTRIX_RIGHTS, SCOPE_DESCRIPTIONS, Scope, parse_scopes
from api.core.errors import PROBLEM_RESPONSES, Problem
from api.core.ratelimit import client_address
from api.core.security import hash_token
from api.core.settings import Settings
from api.oauth2 import service
from api.oauth2.adapters import ALL_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS, GRANT_TYPES
from api.oauth2.schemas import (
    AuthorizationServerMetadata,
    AuthorizeForm,
    IntrospectionResponse,
    OAuthErrorResponse,
    TokenActionRequest,
    TokenRequest,
    TokenResponse,
)
from api.oauth2.server import (
    ChairfillAuthorizationServer,
    HttpRequestData,
    run_oauth,
)

router = APIRouter(tags=["oauth"])

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
CONSENT_COOKIE = "cf_consent"
# How long a consent page may stay open before its form is refused.
CONSENT_MAX_AGE_SECONDS = 15 * 60
_FORM_ONLY_FIELDS = {"csrf_token", "email", "password", "decision"}
# The consent page must never be framed (clickjacking) or cached.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
_RATE_LIMITED: dict[int | str, dict[str, Any]] = {429: PROBLEM_RESPONSES[429]}
_OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorResponse, "description": "RFC 6749 error"},
    401: {"model": OAuthErrorResponse, "description": "Client authentication failed"},
    **_RATE_LIMITED,
}


def _form_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


def _settings(request: Request) -> Settings:
    return request.app.state.chairfill.settings  # type: ignore[no-any-return]


def _issuer(request: Request) -> str:
    return _settings(request).oauth.issuer.rstrip("/") or str(request.base_url).rstrip("/")


async def _limit(request: Request, bucket: str) -> None:
    state = request.app.state.chairfill
    limits = state.settings.rate_limits
    if limits.enabled:
        await state.rate_limiter.hit(
            request, f"{bucket}:{client_address(request)}", limits.anonymous_per_minute
        )


async def _request_data(
    request: Request, form: list[tuple[str, str]] | None = None
) -> HttpRequestData:
    if form is None and request.method == "POST":
        form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    return HttpRequestData(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        query=list(request.query_params.multi_items()),
        form=form or [],
    )


# --- token, revoke, introspect -------------------------------------------------------------


@router.post(
    "/oauth/token",
    summary="Issue tokens (client credentials, authorization code + PKCE, refresh token)",
    response_model=None,
    responses={200: {"model": TokenResponse, "description": "Tokens"}, **_OAUTH_ERRORS},
    openapi_extra=_form_body(TokenRequest),
)
async def token(request: Request) -> Response:
    """Form-encoded (RFC 6749). Clients authenticate with HTTP Basic or form fields; public
    clients send only `client_id` and must use PKCE. Refresh tokens rotate on every use."""
    await _limit(request, "oauth-token")
    data = await _request_data(request)
    return await run_oauth(
        _settings(request), _issuer(request), lambda server: server.create_token_response(data)
    )


@router.post(
    "/oauth/revoke",
    summary="Revoke an access or refresh token (RFC 7009)",
    response_model=None,
    responses={
        200: {
            "description": "Revoked, or the token was unknown",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **_OAUTH_ERRORS,
    },
    openapi_extra=_form_body(TokenActionRequest),
)
async def revoke(request: Request) -> Response:
    """Always 200 for a token that is unknown or already revoked. Revoking a refresh token
    ends its whole authorization (every token issued from it)."""
    await _limit(request, "oauth-token")
    data = await _request_data(request)
    return await run_oauth(
        _settings(request),
        _issuer(request),
        lambda server: server.create_endpoint_response("revocation", data),
    )


@router.post(
    "/oauth/introspect",
    summary="Describe a token (RFC 7662)",
    response_model=None,
    responses={
        200: {"model": IntrospectionResponse, "description": "Token state"},
        **_OAUTH_ERRORS,
    },
    openapi_extra=_form_body(TokenActionRequest),
)
async def introspect(request: Request) -> Response:
    """For confidential clients. A token of another tenant is reported `active: false`."""
    await _limit(request, "oauth-token")
    data = await _request_data(request)
    return await run_oauth(
        _settings(request),
        _issuer(request),
        lambda server: server.create_endpoint_response("introspection", data),
    )


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Authorization server metadata (RFC 8414)",
)
async def metadata(request: Request) -> AuthorizationServerMetadata:
    issuer = _issuer(request)
    return AuthorizationServerMetadata(
        issuer=issuer,
        authorization_endpoint=f"{issuer}/oauth/authorize",
        token_endpoint=f"{issuer}/oauth/token",
        revocation_endpoint=f"{issuer}/oauth/revoke",
        introspection_endpoint=f"{issuer}/oauth/introspect",
        scopes_supported=list(ALL_SCOPES),
        response_types_supported=["code"],
        grant_types_supported=GRANT_TYPES,
        token_endpoint_auth_methods_supported=ALL_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported=ALL_AUTH_METHODS,
        introspection_endpoint_auth_methods_supported=CONFIDENTIAL_AUTH_METHODS,
        code_challenge_methods_supported=["S256"],
        service_documentation=f"{issuer}/docs",
    )


# --- authorize: login + consent ------------------------------------------------------------


@dataclass(frozen=True)
class _Page:
    client_name: str | None = None
    scopes: tuple[str, ...] = ()
    error: str | None = None
    status: int = 200
    # False when the request itself is broken: nothing to submit, nowhere to redirect.
    can_submit: bool = True


def _refusal(server: ChairfillAuthorizationServer, error: OAuth2Error) -> Response | _Page:
    # Redirect only to a redirect URI validated for the client (RFC 6749 4.1.2.1).
    if error.redirect_uri:
        return server.handle_error_response(None, error)  # type: ignore[no-any-return]
    message = error.get_error_description() or error.error
    return _Page(error=f"{message} ({error.error})", status=400, can_submit=False)


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="chairfill.oauth.consent")


def _params_digest(params: list[tuple[str, str]]) -> str:
    return hash_token("&".join(f"{k}={v}" for k, v in sorted(params)))


def _csrf_token(settings: Settings, nonce: str, params: list[tuple[str, str]]) -> str:
    # Bound to the browser (the nonce cookie) and to the exact authorization request.
    return _signer(settings).dumps({"nonce": nonce, "params": _params_digest(params)})


def _csrf_valid(
    settings: Settings, token: str, nonce: str | None, params: list[tuple[str, str]]
) -> bool:
    try:
        claims = _signer(settings).loads(token, max_age=CONSENT_MAX_AGE_SECONDS)
    except BadData:
        return False
    return (
        isinstance(claims, dict)
        and nonce is not None
        and secrets.compare_digest(str(claims.get("nonce", "")), nonce)
        and claims.get("params") == _params_digest(params)
    )


def _render(
    request: Request, page: _Page, params: list[tuple[str, str]], nonce: str, email: str = ""
) -> HTMLResponse:
    settings = _settings(request)
    scopes = [
        {
            "name": name,
            "description": SCOPE_DESCRIPTIONS[Scope(name)],
            "dentrix_right": DENTRIX_RIGHTS.get(Scope(name)),
        }
        for name in page.scopes
    ]
    html = _templates.get_template("consent.html").render(
        client_name=page.client_name,
        scopes=scopes,
        error=page.error,
        hidden=params,
        csrf_token=_csrf_token(settings, nonce, params) if page.can_submit else None,
        email=email,
        action=request.url.path,
    )
    response = HTMLResponse(html, status_code=page.status, headers=_PAGE_HEADERS)
    response.set_cookie(
        CONSENT_COOKIE,
        nonce,
        max_age=CONSENT_MAX_AGE_SECONDS,
        path="/oauth/authorize",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/oauth/authorize",
    summary="Sign-in and consent page for the authorization code grant (PKCE S256)",
    response_class=HTMLResponse,
    responses={
        302: {"description": "Error redirect to the client's redirect URI"},
        400: {"description": "Unknown client or redirect URI", "content": {"text/html": {}}},
    },
)
async def authorize_page(
    request: Request,
    response_type: Annotated[str | None, Query(description="Must be `code`.")] = None,
    client_id: str | None = None,
    redirect_uri: Annotated[str | None, Query(description="One registered for the client.")] = None,
    scope: Annotated[str | None, Query(description="Space-separated; default all.")] = None,
    state: str | None = None,
    code_challenge: Annotated[str | None, Query(description="BASE64URL(SHA256(verifier)).")] = None,
    code_challenge_method: Annotated[str | None, Query(description="Must be `S256`.")] = None,
) -> Response:
    """Shows the requested scopes (with the Dentrix right each mirrors) and a sign-in form.
    The parameters are read and validated by the authorization server, so an invalid
    request answers with an OAuth error redirect or an error page, never a 422."""
    data = await _request_data(request)

    def show(server: ChairfillAuthorizationServer) -> Response | _Page:
        try:
            grant = server.get_consent_grant(request=data)
        except OAuth2Error as error:
            return _refusal(server, error)
        return _Page(
            client_name=grant.client.row.name, scopes=tuple(parse_scopes(grant.request.scope))
        )

    outcome = await run_oauth(_settings(request), _issuer(request), show)
    if isinstance(outcome, Response):
        return outcome
    return _render(request, outcome, list(data.query), secrets.token_urlsafe(24))


@router.post(
    "/oauth/authorize",
    summary="Sign in and grant (or deny) the authorization request",
    response_class=HTMLResponse,
    responses={
        302: {"description": "Redirect to the client with `code` and `state`, or an error"},
        400: {
            "description": "The form expired or was not sent from the consent page",
            "content": {"text/html": {}},
        },
        403: {"description": "The user cannot grant this access", "content": {"text/html": {}}},
        **_RATE_LIMITED,
    },
    openapi_extra=_form_body(AuthorizeForm),
)
async def authorize_decision(request: Request) -> Response:
    """Granted scopes = requested scopes the user holds; the token's locations = those
    (also allowed by the client) where the user holds all granted scopes."""
    await _limit(request, "oauth-login")
    settings = _settings(request)
    submitted = (await request.form()).multi_items()
    fields = {k: v for k, v in submitted if k in _FORM_ONLY_FIELDS and isinstance(v, str)}
    params = [(k, v) for k, v in submitted if k not in _FORM_ONLY_FIELDS and isinstance(v, str)]
    nonce = request.cookies.get(CONSENT_COOKIE)
    if not _csrf_valid(settings, fields.get("csrf_token", ""), nonce, params):
        page = _Page(
            error="This form expired or was not sent from the sign-in page. Go back to the "
            "app and start again.",
            status=400,
            can_submit=False,
        )
        return _render(request, page, [], secrets.token_urlsafe(24))
    data = await _request_data(request, form=params)
    email = fields.get("email", "")

    def decide(server: ChairfillAuthorizationServer) -> Response | _Page:
        try:
            grant = server.get_consent_grant(request=data)
        except OAuth2Error as error:
            return _refusal(server, error)
        if fields.get("decision") != "approve":
            return server.create_authorization_response(grant.request, grant_user=None, grant=grant)  # type: ignore[no-any-return]
        client = grant.client.row
        requested = parse_scopes(grant.request.scope)
        page = _Page(client_name=client.name, scopes=tuple(requested))
        try:
            consent = service.staff_consent(
                server.session,
                client.tenant_id,
                email=email,
                password=fields.get("password", ""),
                requested=requested,
                client_location_ids=client.location_ids,
            )
        except service.WrongCredentials as problem:
            # A login form answers a wrong password by showing itself again.
            return replace(page, error=problem.detail)
        except Problem as problem:
            return replace(page, error=problem.detail, status=problem.status)
        return server.create_authorization_response(grant.request, grant_user=consent, grant=grant)  # type: ignore[no-any-return]

    outcome = await run_oauth(settings, _issuer(request), decide)
    if isinstance(outcome, Response):
        return outcome
    return _render(request, outcome, params, nonce or secrets.token_urlsafe(24), email)
