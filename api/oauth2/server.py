"""The OAuth2 authorization server: Authlib's rfc6749 server with our grants and endpoints.

Authlib calls back synchronously, so each call runs in a worker thread with its own sync
(psycopg) session and one transaction (`run_oauth`). The session is system-level: client,
token and code look-ups happen before the tenant is known, and rows are written with the
tenant id of the client they belong to. Secrets are stored only as SHA-256.

One server object is built per call around that session; building one is cheap (a few
registrations) and keeps the session out of global state.
"""

# Authlib's base classes are untyped.
# mypy: disallow-subclassing-any=False

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from authlib.common.security import is_secure_transport
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InsecureTransportError,
    InvalidRequestError,
    JsonRequest,
    OAuth2Error,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api.auth.scopes import ALL_SCOPES, parse_scopes
from api.core.clock import utcnow
from api.core.db import sync_session_maker
from api.core.ids import new_id
from api.core.security import hash_token
from api.core.settings import Settings
from api.oauth2 import repository, service
from api.oauth2.adapters import (
    ALL_AUTH_METHODS,
    CONFIDENTIAL_AUTH_METHODS,
    ClientRecord,
    CodeRecord,
    HttpRequestData,
    JsonBody,
    ResourceOwner,
    StarletteOAuth2Request,
    TokenRecord,
    check_requested_scope,
    parameter_error,
)
from api.oauth2.models import AuthorizationCode, OAuthToken
from api.oauth2.service import Consent
from api.oauth2.tokens import mint_token

__all__ = ["ChairfillAuthorizationServer", "HttpRequestData", "run_oauth"]

T = TypeVar("T")


# --- Grants and endpoints. -------------------------------------------------------------


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_requested_scope(self) -> None:
        check_requested_scope(self.request.payload.scope, self.client)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    server: ChairfillAuthorizationServer

    def validate_requested_scope(self) -> None:
        check_requested_scope(self.request.payload.scope, self.client)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        consent: Consent = request.user
        client: ClientRecord = request.client
        data = request.payload.data
        self.server.session.add(
            AuthorizationCode(
                tenant_id=client.row.tenant_id,
                id=new_id("authorization_code"),
                code_hash=hash_token(code),
                client_id=client.row.id,
                user_id=consent.user_id,
                redirect_uri=request.payload.redirect_uri or "",
                scopes=consent.scopes,
                location_ids=consent.location_ids,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                expires_at=self.server.now + self.server.code_ttl,
            )
        )

    def query_authorization_code(self, code: str, client: ClientRecord) -> CodeRecord | None:
        server = self.server
        row = repository.authorization_code_by_hash_sync(
            server.session, hash_token(code), client.row.id
        )
        if row is None or row.expires_at <= server.now:
            return None
        if row.used_at is not None:
            # A code presented twice was intercepted: revoke what it was exchanged for
            # (its tokens' family is the code's id).
            repository.revoke_token_family_sync(server.session, row.tenant_id, row.id, server.now)
            return None
        return CodeRecord(row)

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        # Kept and marked, not deleted, so a second use can be recognised as reuse.
        authorization_code.row.used_at = self.server.now

    def authenticate_user(self, authorization_code: CodeRecord) -> ResourceOwner | None:
        row = authorization_code.row
        if not service.staff_user_is_active(self.server.session, row.tenant_id, row.user_id):
            return None
        return ResourceOwner(user_id=row.user_id, location_ids=row.location_ids, family_id=row.id)


class S256CodeChallenge(CodeChallenge):
    """PKCE is required for every authorization request, and only with S256: `plain`
    would hand the verifier to anyone who sees the authorization request."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str | None) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send 'code_challenge' (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: ChairfillAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        server = self.server
        row = repository.token_by_refresh_hash_sync(server.session, hash_token(refresh_token))
        if row is None:
            return None
        token = TokenRecord(row, "refresh_token", server.now)
        if row.rotated_at is not None and row.revoked_at is None:
            # Reuse of a rotated refresh token: someone holds a copy. Revoke the family.
            repository.revoke_token_family_sync(
                server.session, row.tenant_id, row.family_id, server.now
            )
            return None
        if token.is_revoked() or token.is_expired():
            return None
        return token

    def authenticate_user(self, refresh_token: TokenRecord) -> ResourceOwner:
        row = refresh_token.row
        return ResourceOwner(
            user_id=row.user_id, location_ids=row.location_ids, family_id=row.family_id
        )

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        refresh_token.row.rotated_at = self.server.now


class _TokenLookup:
    server: ChairfillAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        # The hint only orders the search (RFC 7009 2.1).
        session, digest = self.server.session, hash_token(token_string)
        kinds = ["access_token", "refresh_token"]
        if token_type_hint == "refresh_token":
            kinds.reverse()
        for kind in kinds:
            if kind == "access_token":
                row = repository.token_by_access_hash_sync(session, digest)
            else:
                row = repository.token_by_refresh_hash_sync(session, digest)
            if row is not None:
                return TokenRecord(row, kind, self.server.now)
        return None


class ChairfillRevocationEndpoint(_TokenLookup, RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def revoke_token(self, token: TokenRecord, request: OAuth2Request) -> None:
        server = self.server
        if token.is_refresh:
            # A refresh token stands for the whole authorization: end all of it.
            repository.revoke_token_family_sync(
                server.session, token.row.tenant_id, token.row.family_id, server.now
            )
        elif token.row.revoked_at is None:
            token.row.revoked_at = server.now


class ChairfillIntrospectionEndpoint(_TokenLookup, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_permission(
        self, token: TokenRecord, client: ClientRecord, request: OAuth2Request
    ) -> bool:
        # Another tenant's token is reported inactive, as if it did not exist.
        return token.row.tenant_id == client.row.tenant_id

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        row = token.row
        return {
            "active": True,
            "scope": token.get_scope(),
            "client_id": row.client_id,
            "token_type": "refresh_token" if token.is_refresh else "Bearer",
            "exp": int(token.expires_at().timestamp()),
            "iat": int(row.issued_at.timestamp()),
            "sub": row.user_id or row.client_id,
            "iss": self.server.issuer,
            "tenant_id": row.tenant_id,
            "location_ids": row.location_ids,
        }


# --- The server. ------------------------------------------------------------------------


class ChairfillAuthorizationServer(AuthorizationServer):
    def __init__(self, session: Session, settings: Settings, issuer: str) -> None:
        super().__init__(scopes_supported=list(ALL_SCOPES))
        self.session = session
        self.settings = settings
        self.issuer = issuer
        # One instant per call, so every row written in it agrees on "now".
        self.now = utcnow()
        self.code_ttl = timedelta(seconds=settings.oauth.authorization_code_ttl_seconds)
        # Rows minted by the token generator, waiting for Authlib's save_token.
        self._minted: dict[str, OAuthToken] = {}
        self.register_token_generator("default", self._generate_token)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(ChairfillRevocationEndpoint)
        self.register_endpoint(ChairfillIntrospectionEndpoint)

    # Entry points: requests Authlib would fail on outside its own error handling are
    # answered with an OAuth error here.

    def _refusal(self, request: Any) -> OAuth2Error | None:
        if not isinstance(request, HttpRequestData):
            return None
        # Outside development tokens and secrets travel only over TLS.
        if not self.settings.is_dev and not is_secure_transport(request.url):
            return InsecureTransportError()
        return parameter_error(request)

    def create_token_response(self, request: Any = None) -> Response:
        if (error := self._refusal(request)) is not None:
            return self.handle_error_response(None, error)  # type: ignore[no-any-return]
        return super().create_token_response(request)  # type: ignore[no-any-return]

    def create_endpoint_response(self, name: str, request: Any = None) -> Response:
        if (error := self._refusal(request)) is not None:
            return self.handle_error_response(None, error)  # type: ignore[no-any-return]
        return super().create_endpoint_response(name, request)  # type: ignore[no-any-return]

    def get_consent_grant(self, request: Any = None, end_user: Any = None) -> Any:
        if (error := self._refusal(request)) is not None:
            raise error
        return super().get_consent_grant(request, end_user)

    def query_client(self, client_id: str) -> ClientRecord | None:
        row = repository.client_by_id_sync(self.session, client_id)
        return ClientRecord(row) if row is not None else None

    def _generate_token(
        self,
        grant_type: str,
        client: ClientRecord,
        user: ResourceOwner | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        owner = user or ResourceOwner(user_id=None, location_ids=client.row.location_ids)
        scopes = parse_scopes(scope) if scope else list(client.row.scopes)
        minted = mint_token(
            tenant_id=client.row.tenant_id,
            client_id=client.row.id,
            scopes=scopes,
            location_ids=owner.location_ids,
            now=self.now,
            config=self.settings.oauth,
            user_id=owner.user_id,
            with_refresh=include_refresh_token,
            family_id=owner.family_id,
        )
        self._minted[minted.access_token] = minted.row
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": minted.access_token,
            "expires_in": minted.expires_in,
            "scope": " ".join(scopes),
        }
        if minted.refresh_token:
            token["refresh_token"] = minted.refresh_token
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.session.add(self._minted.pop(token["access_token"]))
        self.session.flush()

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return StarletteOAuth2Request(request)

    def create_json_request(self, request: HttpRequestData) -> JsonRequest:
        json_request = JsonRequest(request.method, request.url, dict(request.headers))
        json_request.payload = JsonBody(request.json)
        return json_request

    def handle_response(
        self, status: int, body: Any, headers: Sequence[tuple[str, str]]
    ) -> Response:
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=dict(headers))
        return Response(body or b"", status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib announces events (client authenticated, token revoked); nothing listens."""


def _in_transaction(
    settings: Settings, issuer: str, work: Callable[[ChairfillAuthorizationServer], T]
) -> T:
    maker = sync_session_maker(settings.database_url or "")
    with maker() as session, session.begin():
        # Committed even when Authlib answers with an OAuth error: a detected reuse has
        # revoked a token family that must stay revoked.
        return work(ChairfillAuthorizationServer(session, settings, issuer))


async def run_oauth(
    settings: Settings, issuer: str, work: Callable[[ChairfillAuthorizationServer], T]
) -> T:
    """Run `work` with a fresh server in a worker thread, in one committed transaction."""
    return await run_in_threadpool(_in_transaction, settings, issuer, work)
