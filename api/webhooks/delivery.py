"""The parts of one attempt: the HTTP client, the payload, the checked and signed POST,
the retry ladder, Retry-After, and disabling an endpoint.

Batches of attempts are claimed, sent and recorded by api/webhooks/dispatch.py."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from api.core.clock import utcnow
from api.core.settings import WebhookSettings
from api.events.outbox import record_event
from api.webhooks import repository, signing, ssrf
from api.webhooks.catalog import EndpointDisabledData
from api.webhooks.models import WebhookEndpoint

# Seconds before attempt 2, 3, ...: about 5 days 4 hours in all, so an endpoint that never
# answers is retried for more than three days and its five failing days run out first.
RETRY_LADDER: tuple[int, ...] = (
    5, 60, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400, 86400, 86400,
)  # fmt: skip
MAX_ATTEMPTS = len(RETRY_LADDER) + 1
RESPONSE_BODY_LIMIT = 2048
RETRY_AFTER_MAX_SECONDS = 24 * 3600
USER_AGENT = "Chairfill-Webhooks/1.0"


def new_http_client(settings: WebhookSettings, max_connections: int = 200) -> aiohttp.ClientSession:
    """One per worker process, sized to its concurrency: connections to busy receivers are
    kept alive (up to one per delivery in flight).

    aiohttp rather than httpx: on the benchmark (bench/webhooks) httpx's connection pool
    was the bottleneck (~800 requests/s at 10 connections, and slower the more connections
    it holds); aiohttp does several times that. No cookie jar: one tenant's receiver must
    not set cookies another's sees."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0),
        timeout=aiohttp.ClientTimeout(
            total=settings.total_timeout, sock_connect=settings.connect_timeout
        ),
        headers={"user-agent": USER_AGENT, "content-type": "application/json"},
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
    )


def payload_body(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    timestamp = occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    payload = {"type": event_type, "timestamp": timestamp, "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def next_delay(attempt_count: int, retry_after: float | None) -> float:
    """Seconds until the next attempt after `attempt_count` attempts (with jitter)."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), RETRY_AFTER_MAX_SECONDS)
    step = RETRY_LADDER[min(attempt_count, len(RETRY_LADDER)) - 1]
    # Only later, never earlier: the ladder's total is a promise.
    return step * random.uniform(1.0, 1.2)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


@dataclass
class SendResult:
    status_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    latency_ms: int | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@lru_cache(maxsize=4096)
def _decrypt(secret_key: str, ciphertext: str) -> str:
    # Keyed by ciphertext: a rotated secret is a new entry, never a stale one.
    return signing.decrypt_secret(secret_key, ciphertext)


def endpoint_secrets(endpoint: WebhookEndpoint, secret_key: str, now: datetime) -> list[str]:
    valid = [_decrypt(secret_key, endpoint.secret_ciphertext)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_ciphertext and expires is not None and expires > now:
        valid.append(_decrypt(secret_key, endpoint.previous_secret_ciphertext))
    return valid


async def send(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    body: str,
    settings: WebhookSettings,
) -> SendResult:
    """POST to the checked address of `url`; never raises for the receiver's faults."""
    try:
        target = await ssrf.resolve_target(url, allow_private=bool(settings.allow_private_targets))
    except ssrf.UnsafeTarget as exc:
        return SendResult(error=f"refused target: {exc}")
    request_url = URL(url)
    server_hostname = None
    if request_url.host != target.address:
        # Connect to the address we checked; keep the name for Host and TLS (SNI and the
        # certificate check; connections are pooled per name too).
        headers = headers | {"host": urlsplit(url).netloc.rpartition("@")[2]}
        server_hostname = target.host
        request_url = request_url.with_host(target.address)
    started = time.perf_counter()
    result = SendResult()
    try:
        async with (
            asyncio.timeout(settings.total_timeout),
            http.post(
                request_url,
                data=body.encode(),
                headers=headers,
                allow_redirects=False,
                server_hostname=server_hostname,
            ) as response,
        ):
            received = bytearray()
            while len(received) < RESPONSE_BODY_LIMIT:
                chunk = await response.content.read(RESPONSE_BODY_LIMIT - len(received))
                if not chunk:
                    break
                received += chunk
        result.status_code = response.status
        result.response_body = bytes(received).decode("utf-8", "replace")
        if response.status in (429, 503):
            result.retry_after = parse_retry_after(response.headers.get("retry-after"), utcnow())
    except TimeoutError:
        result.error = f"timeout: no complete answer within {settings.total_timeout:g} s"
    except aiohttp.ClientConnectorError as exc:
        result.error = f"connection failed: {exc}"
    except aiohttp.ClientError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.latency_ms = round((time.perf_counter() - started) * 1000)
    return result


async def disable_endpoint(
    session: AsyncSession, tenant_id: str, endpoint_id: str, reason: str, detail: str
) -> bool:
    """Disable, cancel its pending deliveries and tell the tenant's other endpoints.

    Returns False when it was already disabled (then nothing is emitted twice)."""
    endpoint = await repository.get_endpoint(session, tenant_id, endpoint_id, for_update=True)
    if endpoint is None or not endpoint.enabled:
        return False
    now = utcnow()
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = detail
    endpoint.updated_at = now
    await session.flush()
    await repository.cancel_pending_deliveries(session, tenant_id, endpoint_id, now)
    await record_event(
        session,
        tenant_id=tenant_id,
        type="endpoint.disabled",
        data=EndpointDisabledData(
            endpoint_id=endpoint.id,
            url=endpoint.url,
            reason=reason,
            detail=detail,
            disabled_at=now,
        ),
    )
    return True
