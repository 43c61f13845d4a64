"""Authlib's view of our HTTP requests and rows: the request wrapper the server reads,
and the client, authorization-code and token models it calls back.

Authlib's base classes are untyped, hence the relaxed subclassing check."""

# mypy: disallow-subclassing-any=False

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    JsonPayload,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)

from api.auth.scopes import ALL_SCOPES, parse_scopes
from api.core.security import token_matches
from api.oauth2 import service
from api.oauth2.models import AuthorizationCode, OAuthClient, OAuthToken

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
ALL_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
GRANT_TYPES = [service.AUTHORIZATION_CODE, service.CLIENT_CREDENTIALS, service.REFRESH_TOKEN]


@dataclass(frozen=True)
class HttpRequestData:
    """What Authlib needs of an HTTP request, read on the event loop before the thread."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()
    form: Sequence[tuple[str, str]] = ()
    json: Any = None


class _Payload(OAuth2Payload):
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._datalist: dict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        # Like a form library's `values`: the first value of each parameter.
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist  # type: ignore[return-value]


class StarletteOAuth2Request(OAuth2Request):
    def __init__(self, data: HttpRequestData) -> None:
        # Authlib would refuse plain http by raising outside its error handling; the server
        # checks the transport itself (only outside development: tests and `chairfill up`
        # run without TLS) and answers with a proper OAuth error.
        super().__init__(data.method, _as_https(data.url), headers=data.headers)
        self.uri = data.url
        self._query = dict(data.query)
        self._form = dict(data.form)
        self.payload = _Payload([*data.query, *data.form])

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class JsonBody(JsonPayload):
    def __init__(self, body: Any) -> None:
        self._body = body

    @property
    def data(self) -> Any:
        return self._body


# Parameters Authlib quotes in error descriptions, which allow no '"' or '\\' (RFC 6749 5.2).
_QUOTED_PARAMETERS = {"response_type", "redirect_uri", "scope", "client_id", "grant_type"}


def parameter_error(data: HttpRequestData) -> InvalidRequestError | None:
    """Every OAuth parameter is printable ASCII (RFC 6749 appendix A); anything else is
    refused before Authlib would echo it into an error description it cannot build."""
    for name, value in [*data.query, *data.form]:
        bad = any(not 0x20 <= ord(c) <= 0x7E for c in value)
        if bad or (name in _QUOTED_PARAMETERS and ('"' in value or "\\" in value)):
            safe_name = "".join(c for c in name if (c.isascii() and c.isalnum()) or c == "_")
            return InvalidRequestError(f"Parameter '{safe_name}' has characters not allowed.")
    return None


def _as_https(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="https")) if parts.scheme == "http" else url


# --- Adapters: our rows as Authlib's client, code and token models. ---------------------


class ClientRecord(ClientMixin):
    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    @property
    def is_public(self) -> bool:
        return self.row.secret_hash is None

    def get_client_id(self) -> str:
        return self.row.id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous single registration may be used without naming it.
        return self.row.redirect_uris[0] if len(self.row.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        if not scope:
            return " ".join(self.row.scopes)
        requested = scope.split()
        if not set(requested) <= set(self.row.scopes):
            return None
        return " ".join(parse_scopes(scope))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return token_matches(client_secret, self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A public client has no secret to send; a confidential one must send it.
        if self.is_public:
            return method == "none"
        return method in CONFIDENTIAL_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.check_grant_type(service.AUTHORIZATION_CODE)

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


class CodeRecord(AuthorizationCodeMixin):
    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return " ".join(self.row.scopes)


class TokenRecord(TokenMixin):
    """A token row, as the access token or the refresh token that was presented."""

    def __init__(self, row: OAuthToken, kind: str, now: datetime) -> None:
        self.row = row
        self.kind = kind
        self.now = now

    @property
    def is_refresh(self) -> bool:
        return self.kind == "refresh_token"

    def check_client(self, client: ClientRecord) -> bool:
        return self.row.client_id == client.row.id

    def get_scope(self) -> str:
        return " ".join(self.row.scopes)

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def expires_at(self) -> datetime:
        expiry = self.row.refresh_expires_at if self.is_refresh else self.row.expires_at
        return expiry or self.row.expires_at

    def is_expired(self) -> bool:
        return self.expires_at() <= self.now

    def is_revoked(self) -> bool:
        rotated = self.is_refresh and self.row.rotated_at is not None
        return self.row.revoked_at is not None or rotated


@dataclass(frozen=True)
class ResourceOwner:
    """Who a token acts for and where: the staff user (None for a client acting as itself),
    the locations, and the family its refresh tokens belong to."""

    user_id: str | None
    location_ids: list[str] | None
    family_id: str | None = None


def check_requested_scope(scope: str | None, client: ClientRecord) -> None:
    requested = set((scope or "").split())
    unknown = sorted(requested - set(ALL_SCOPES))
    if unknown:
        raise InvalidScopeError(f"Unknown scope: {' '.join(unknown)}.")
    refused = sorted(requested - set(client.row.scopes))
    if refused:
        raise InvalidScopeError(f"This client may not request: {' '.join(refused)}.")
