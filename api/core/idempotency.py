"""`Idempotency-Key` for creating POSTs (IETF httpapi draft).

Same key and same request: the stored response is replayed (with `Idempotent-Replayed:
true`). Same key, different request: 422. The first request still running: 409. Only
successful responses are stored: after an error the client may fix the request and retry
with the same key. Keys are kept for `CHAIRFILL_IDEMPOTENCY__TTL_SECONDS` (24 h default).

The in-flight marker is committed on its own, before the work, so a concurrent retry
sees it; the completed response is written in the request's own transaction, so the
stored response exists exactly when the work it describes was committed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, ValidationProblem
from api.core.infra_models import IdempotencyRecord
from api.core.settings import IdempotencySettings

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Response headers worth replaying (the rest are recomputed per response).
REPLAYED_HEADERS = ("content-type", "location")


@dataclass(frozen=True)
class IdempotencyClaim:
    tenant_id: str
    principal_id: str
    key: str
    fingerprint: str


def fingerprint(method: str, path: str, body: bytes | list[list[str]]) -> str:
    """`body` is the raw body, or a form as `[name, value]` / `[name, filename, sha256]`."""
    if isinstance(body, list):
        digest = _request_digest(method, path)
        digest.update(b"form:" + json.dumps(body, separators=(",", ":")).encode())
        return digest.hexdigest()
    try:
        value = json.loads(body)
    except ValueError:
        digest = _request_digest(method, path)
        digest.update(body)
        return digest.hexdigest()
    return json_fingerprint(method, path, value)


def json_fingerprint(method: str, path: str, value: Any) -> str:
    """A JSON body's, from its parsed value (the same as `fingerprint` of its bytes):
    equivalent JSON (key order, whitespace) is the same request."""
    digest = _request_digest(method, path)
    digest.update(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def _request_digest(method: str, path: str) -> hashlib._Hash:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n")


def validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationProblem(
            "The Idempotency-Key must be 1 to 255 printable characters.",
            errors=[{"field": HEADER, "message": "1 to 255 printable characters"}],
        )


async def claim(
    sessions: async_sessionmaker[AsyncSession], claim: IdempotencyClaim, config: IdempotencySettings
) -> Response | None:
    """Mark the key in flight. Returns the stored response to replay, or None to proceed."""
    now = utcnow()
    async with unit_of_work(sessions, claim.tenant_id) as session:
        inserted = await session.execute(
            insert(IdempotencyRecord)
            .values(
                tenant_id=claim.tenant_id,
                principal_id=claim.principal_id,
                key=claim.key,
                fingerprint=claim.fingerprint,
                status="in_flight",
                locked_until=now + timedelta(seconds=config.in_flight_timeout_seconds),
                expires_at=now + timedelta(seconds=config.ttl_seconds),
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
        if inserted.first() is not None:
            return None
        record = (
            await session.execute(
                select(IdempotencyRecord)
                .where(
                    IdempotencyRecord.tenant_id == claim.tenant_id,
                    IdempotencyRecord.principal_id == claim.principal_id,
                    IdempotencyRecord.key == claim.key,
                )
                .with_for_update()
            )
        ).scalar_one()
        expired = record.expires_at <= now
        abandoned = record.status == "in_flight" and record.locked_until <= now
        if expired or abandoned:
            record.fingerprint = claim.fingerprint
            record.status = "in_flight"
            record.response_status = None
            record.response_body = None
            record.response_headers = None
            record.locked_until = now + timedelta(seconds=config.in_flight_timeout_seconds)
            record.expires_at = now + timedelta(seconds=config.ttl_seconds)
            return None
        if record.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body or "
                "path. Use a new key for a new request."
            )
        if record.status == "in_flight":
            raise IdempotencyKeyInFlight(
                "The first request with this Idempotency-Key has not finished. Retry shortly.",
                headers={"Retry-After": "1"},
            )
        headers = dict(record.response_headers or {})
        headers["Idempotent-Replayed"] = "true"
        return Response(
            content=record.response_body or b"",
            status_code=record.response_status or 200,
            headers=headers,
        )


async def complete(session: AsyncSession, claim: IdempotencyClaim, response: Response) -> None:
    """Store the response in the request's own transaction."""
    headers = {k: v for k, v in response.headers.items() if k.lower() in REPLAYED_HEADERS}
    await session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.tenant_id == claim.tenant_id,
            IdempotencyRecord.principal_id == claim.principal_id,
            IdempotencyRecord.key == claim.key,
        )
        .values(
            status="completed",
            response_status=response.status_code,
            response_headers=headers,
            response_body=bytes(response.body),
        )
    )


async def release(sessions: async_sessionmaker[AsyncSession], claim: IdempotencyClaim) -> None:
    """The request failed: forget the key so a corrected retry can use it."""
    async with unit_of_work(sessions, claim.tenant_id) as session:
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.tenant_id == claim.tenant_id,
                IdempotencyRecord.principal_id == claim.principal_id,
                IdempotencyRecord.key == claim.key,
                IdempotencyRecord.status == "in_flight",
            )
        )


async def purge_expired(session: AsyncSession) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
