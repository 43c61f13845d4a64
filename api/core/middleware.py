"""Per-request context as a plain ASGI middleware (no BaseHTTPMiddleware overhead):
request id, one structured access-log line, Prometheus metrics by route template, the
`RateLimit-*` headers decided during the request, and the masking of unexpected errors."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.errors import internal_error, problem_response

REQUEST_LATENCY = Histogram(
    "chairfill_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RESPONSES = Counter(
    "chairfill_http_responses_total",
    "HTTP responses by route template and status",
    ["method", "route", "status"],
)

log = structlog.get_logger("chairfill.access")
error_log = structlog.get_logger("chairfill.errors")

QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}
# A caller's own request id is kept only when it cannot smuggle anything into logs or
# headers (a UUID, a ULID, a trace id); anything else is replaced.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def _route_template(scope: Scope) -> str:
    # Labels use the template (`/v1/locations/{location_id}`), never the raw path, so the
    # number of series stays bounded whatever ids callers send.
    # An answer given before routing (api/booking/fast_path.py) names its route itself.
    template = scope.get("route_template")
    if template:
        return str(template)
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return str(path) if path else "unmatched"


def request_id_for(scope: Scope) -> str:
    for name, value in scope.get("headers") or []:
        if name == b"x-request-id":
            incoming: str = value.decode("latin-1")
            if SANE_REQUEST_ID.fullmatch(incoming):
                return incoming
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"x-request-id", request_id.encode())]
                rate_limit = state.get("rate_limit")
                if rate_limit is not None:
                    # A 429 problem already carries them; never send a header twice.
                    extra += [
                        (k.lower().encode(), v.encode())
                        for k, v in rate_limit.headers().items()
                        if k.lower().encode() not in present
                    ]
                message["headers"] = headers + extra
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_headers)
            except Exception:
                # Masked here, inside the request context, so the 500 is logged with its
                # traceback as JSON and answered as a problem carrying the request id.
                error_log.exception("unhandled_error", path=scope.get("path"))
                if response_started:
                    raise
                response = problem_response(Request(scope), internal_error())
                await response(scope, receive, send_with_headers)
            finally:
                self._record(scope, state, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, state: dict[str, Any], status: int, elapsed: float) -> None:
        route = _route_template(scope)
        method = scope.get("method", "GET")
        REQUEST_LATENCY.labels(method, route).observe(elapsed)
        RESPONSES.labels(method, route, str(status)).inc()
        if scope.get("path") in QUIET_PATHS:
            return
        principal = state.get("principal")
        log.info(
            "request",
            method=method,
            path=scope.get("path"),
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            tenant_id=getattr(principal, "tenant_id", None),
            client_id=getattr(principal, "client_id", None),
        )
