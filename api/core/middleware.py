"""Per-request context as a plain ASGI middleware (no BaseHTTPMiddleware overhead):
request id, one structured access-log line, Prometheus metrics by route template, and the
`RateLimit-*` headers decided during the request."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_LATENCY = Histogram(
    "chairfill_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RESPONSES = Counter(
    "chairfill_http_responses_total", "HTTP responses by route template and status", ["method", "route", "status"]
)

log = structlog.get_logger("chairfill.access")

QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return str(path) if path else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                rate_limit = state.get("rate_limit")
                if rate_limit is not None:
                    extra += [(k.lower().encode(), v.encode()) for k, v in rate_limit.headers().items()]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "GET")
            REQUEST_LATENCY.labels(method, route).observe(elapsed)
            RESPONSES.labels(method, route, str(status)).inc()
            if scope.get("path") not in QUIET_PATHS:
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
            structlog.contextvars.unbind_contextvars("request_id")
