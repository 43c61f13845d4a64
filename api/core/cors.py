"""CORS for booking widgets holding a publishable key (`pk_...`).

Only publishable keys are meant for browsers, so only their callers get CORS: an actual
response is readable cross-origin (`Access-Control-Allow-Origin`) only when the request
was authenticated by a publishable key whose allowed origins include the page's Origin.

Preflights run before any credential is sent. With `?publishable_key=` in the URL, the key
is looked up and only its origins pass. Without it the key travels in the Authorization
header of the actual request, which the preflight cannot see: the preflight is allowed for
`/v1/` with the methods and headers a widget uses, and the actual request is then checked
against the key's origins (api.auth.dependencies.check_origin), so nothing leaks.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import service as auth_service
from api.core.db import single_read
from api.core.errors import Forbidden, Unauthorized, problem_response

ALLOWED_METHODS = ("GET", "POST")
ALLOWED_HEADERS = ("authorization", "content-type", "idempotency-key")
EXPOSED_HEADERS = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, X-Request-Id, "
    "Idempotent-Replayed"
)
# Browsers cap this anyway (Chromium: 2 h); 10 minutes keeps a revoked key's preflights short.
MAX_AGE_SECONDS = 600
CORS_PATH_PREFIX = "/v1/"


def origin_allowed(allowed_origins: tuple[str, ...] | list[str], origin: str) -> bool:
    return origin.rstrip("/") in {o.rstrip("/") for o in allowed_origins}


class PreflightRefused(Forbidden):
    slug = "cors-preflight-refused"
    title = "This cross-origin request is not allowed"


class PublishableKeyCORSMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            response = await self._preflight(scope, headers, origin)
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The principal is known once authentication ran (it is absent when the
                # key was refused, so a refused page cannot read the answer).
                principal = scope.get("state", {}).get("principal")
                if getattr(principal, "kind", None) == "publishable_key" and origin_allowed(
                    principal.allowed_origins, origin
                ):
                    response_headers = MutableHeaders(scope=message)
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                    response_headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, headers: Headers, origin: str) -> Response:
        request = Request(scope)
        method = headers["access-control-request-method"].strip().upper()
        requested = {
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        }
        refused = self._refusal(scope["path"], method, requested)
        key = QueryParams(scope.get("query_string", b"")).get("publishable_key")
        if refused is None and key:
            refused = await self._key_refusal(scope, key, origin)
        if refused is not None:
            return problem_response(request, PreflightRefused(refused))
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
                "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
                "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
                "Vary": "Origin",
            },
        )

    @staticmethod
    def _refusal(path: str, method: str, requested: set[str]) -> str | None:
        if not path.startswith(CORS_PATH_PREFIX):
            return f"Cross-origin calls are offered under {CORS_PATH_PREFIX} only."
        if method not in ALLOWED_METHODS:
            return f"Cross-origin {method} is not allowed; use {' or '.join(ALLOWED_METHODS)}."
        unknown = sorted(requested - set(ALLOWED_HEADERS))
        if unknown:
            return f"These request headers are not allowed cross-origin: {', '.join(unknown)}."
        return None

    @staticmethod
    async def _key_refusal(scope: Scope, key: str, origin: str) -> str | None:
        state: Any = scope["app"].state.chairfill
        try:
            async with single_read(state.sessions) as session:
                principal = await auth_service.principal_for_publishable_key(session, key)
        except Unauthorized:
            return "The publishable key is unknown or revoked."
        if not origin_allowed(principal.allowed_origins, origin):
            return f"This publishable key may not be used from {origin}."
        return None
