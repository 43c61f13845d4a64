"""Request and response shapes of the OAuth endpoints, as documented in OpenAPI.

The endpoints read their form bodies themselves (Authlib validates them and answers with
RFC 6749 errors), so the request models here describe the bodies for the docs only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

GrantType = Literal["client_credentials", "authorization_code", "refresh_token"]
TokenTypeHint = Literal["access_token", "refresh_token"]


class ClientAuthFields(BaseModel):
    client_id: str | None = Field(
        default=None,
        description="With client_secret_post, or alone for a public client (PKCE).",
    )
    client_secret: str | None = Field(
        default=None, description="client_secret_post; or send HTTP Basic (client_secret_basic)."
    )


class TokenRequest(ClientAuthFields):
    grant_type: GrantType
    scope: str | None = Field(
        default=None,
        description="Space-separated scopes; a subset of the client's (default: all of them).",
    )
    code: str | None = Field(default=None, description="authorization_code: the code received.")
    redirect_uri: str | None = Field(
        default=None, description="authorization_code: as sent to /oauth/authorize."
    )
    code_verifier: str | None = Field(
        default=None, description="authorization_code: the PKCE verifier (S256)."
    )
    refresh_token: str | None = Field(
        default=None, description="refresh_token: the latest refresh token (rotated on use)."
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the access token expires.")
    scope: str = Field(description="The scopes granted, space-separated.")
    refresh_token: str | None = Field(
        default=None,
        description="Authorization-code grants only. Single use: each refresh returns a new "
        "one, and presenting a used one revokes every token of the authorization.",
    )


class OAuthErrorResponse(BaseModel):
    """RFC 6749 section 5.2 (OAuth clients expect this shape, not problem+json)."""

    error: str = Field(examples=["invalid_client", "invalid_grant", "invalid_scope"])
    error_description: str | None = None
    error_uri: str | None = None


class TokenActionRequest(ClientAuthFields):
    token: str = Field(description="An access or refresh token.")
    token_type_hint: TokenTypeHint | None = None


class IntrospectionResponse(BaseModel):
    """RFC 7662, plus the tenant and locations the token may touch."""

    active: bool
    scope: str | None = None
    client_id: str | None = None
    token_type: Literal["Bearer", "refresh_token"] | None = None
    exp: int | None = Field(default=None, description="Expiry, seconds since the epoch.")
    iat: int | None = Field(default=None, description="Issued at, seconds since the epoch.")
    sub: str | None = Field(
        default=None, description="The staff user's id, or the client's id for its own tokens."
    )
    iss: str | None = None
    tenant_id: str | None = None
    location_ids: list[str] | None = Field(
        default=None, description="Null when the token may touch every location of the tenant."
    )


class AuthorizeForm(BaseModel):
    """The consent form: the authorization request's parameters as hidden fields, plus the
    staff user's login and decision."""

    response_type: Literal["code"]
    client_id: str
    redirect_uri: str | None = None
    scope: str | None = None
    state: str | None = None
    code_challenge: str
    code_challenge_method: Literal["S256"]
    csrf_token: str
    email: str
    password: str
    decision: Literal["approve", "deny"]


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    introspection_endpoint: str
    scopes_supported: list[str]
    response_types_supported: list[str]
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]
    introspection_endpoint_auth_methods_supported: list[str]
    code_challenge_methods_supported: list[str]
    service_documentation: str | None = None
