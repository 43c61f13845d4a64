"""Calendar claims: how the database, not the code, rules out double booking.

The embedded PostgreSQL has no btree_gist, so an exclusion constraint over time ranges is
not available. Instead every hold and online appointment claims each 5-minute cell its
buffered span covers, once for its provider and once for its operatory, as rows of
`calendar_claims` whose primary key is (tenant_id, resource_kind, resource_id,
cell_start). The claims are inserted in the same transaction as the hold or appointment:
of two racing transactions on any shared cell, the second blocks on the first's index
entry and fails with a unique violation once the first commits (409 `taken`), whatever the
isolation level or the number of API processes.

Slots start on a grid of whole multiples of 5 minutes, so "the buffered spans overlap"
and "they share a cell" are the same statement, and the claims agree with the engine.

Releasing: a claim carries `hold_expires_at` while its owner is a tentative hold. Before
inserting, a writer deletes, in its own transaction, the claims on its cells whose hold
has expired or whose appointment the PMS cancelled, deleted or moved, so stale claims
never block anyone. Confirming a hold clears `hold_expires_at` only on claims still
unexpired (row locks order it against such a delete); fewer rows than claimed means the
hold lapsed and was taken over (409 `hold_expired`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

CELL_SECONDS = 300
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNIQUE_VIOLATION = "23505"


class ClaimTaken(Exception):
    """Another hold or online appointment holds one of the cells."""


def cells(start: datetime, end: datetime) -> list[datetime]:
    """The 5-minute cells (UTC starts) that [start, end) touches."""
    first = int((start - _EPOCH).total_seconds()) // CELL_SECONDS
    last = -(-int((end - _EPOCH).total_seconds()) // CELL_SECONDS)
    return [_EPOCH + timedelta(seconds=n * CELL_SECONDS) for n in range(first, last)]


def _keys(provider_id: str, operatory_id: str, span: list[datetime]) -> dict[str, list[Any]]:
    return {
        "kinds": ["provider"] * len(span) + ["operatory"] * len(span),
        "ids": [provider_id] * len(span) + [operatory_id] * len(span),
        "cells": span + span,
    }


_CELLS = (
    "unnest(CAST(:kinds AS text[]), CAST(:ids AS text[]), CAST(:cells AS timestamptz[])) "
    "AS u(kind, resource, cell)"
)

_RELEASE_STALE = text(
    f"""
    DELETE FROM calendar_claims c USING {_CELLS}
    WHERE c.tenant_id = :tenant_id AND c.resource_kind = u.kind
      AND c.resource_id = u.resource AND c.cell_start = u.cell
      AND ((c.hold_expires_at IS NOT NULL AND c.hold_expires_at <= :now)
        OR (c.appointment_id IS NOT NULL AND NOT EXISTS (
              SELECT 1 FROM appointments a
              WHERE a.tenant_id = c.tenant_id AND a.id = c.appointment_id
                AND a.deleted_at IS NULL AND a.status NOT IN ('cancelled', 'broken')
                AND a.start_at = c.owner_start)))
    """
)

_INSERT = text(
    f"""
    INSERT INTO calendar_claims (tenant_id, resource_kind, resource_id, cell_start,
        location_id, hold_id, appointment_id, owner_start, hold_expires_at)
    SELECT :tenant_id, u.kind, u.resource, u.cell, :location_id, :hold_id, :appointment_id,
        :owner_start, :hold_expires_at
    FROM {_CELLS}
    """
)


async def claim(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    provider_id: str,
    operatory_id: str,
    span_start: datetime,
    span_end: datetime,
    owner_start: datetime,
    hold_id: str | None,
    appointment_id: str | None,
    hold_expires_at: datetime | None,
    now: datetime,
) -> int:
    """Claim the buffered span for both resources; ClaimTaken when any cell is held.

    Runs in a savepoint, so a refusal leaves the caller's transaction usable."""
    keys = _keys(provider_id, operatory_id, cells(span_start, span_end))
    try:
        async with session.begin_nested():
            await session.execute(_RELEASE_STALE, {"tenant_id": tenant_id, "now": now, **keys})
            await session.execute(
                _INSERT,
                {
                    "tenant_id": tenant_id,
                    "location_id": location_id,
                    "hold_id": hold_id,
                    "appointment_id": appointment_id,
                    "owner_start": owner_start,
                    "hold_expires_at": hold_expires_at,
                    **keys,
                },
            )
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION or "23505" in str(exc):
            raise ClaimTaken from exc
        raise
    return len(keys["cells"])


async def renew_hold_claims(
    session: AsyncSession,
    *,
    tenant_id: str,
    hold_id: str,
    now: datetime,
    hold_expires_at: datetime | None,
    appointment_id: str | None = None,
) -> int:
    """Keep a live hold's claims (new expiry, or none once it is an appointment). Returns
    how many were still held; claims of a lapsed hold may already belong to others."""
    result = await session.execute(
        text(
            "UPDATE calendar_claims SET hold_expires_at = :expires, appointment_id = :apt "
            "WHERE tenant_id = :tenant_id AND hold_id = :hold_id "
            "AND hold_expires_at IS NOT NULL AND hold_expires_at > :now"
        ),
        {
            "expires": hold_expires_at,
            "apt": appointment_id,
            "tenant_id": tenant_id,
            "hold_id": hold_id,
            "now": now,
        },
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def release_hold(session: AsyncSession, tenant_id: str, hold_id: str) -> int:
    """Delete the claims a tentative hold still has (never an appointment's)."""
    result = await session.execute(
        text(
            "DELETE FROM calendar_claims WHERE tenant_id = :tenant_id AND hold_id = :hold_id "
            "AND appointment_id IS NULL AND hold_expires_at IS NOT NULL"
        ),
        {"tenant_id": tenant_id, "hold_id": hold_id},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def release_appointment(session: AsyncSession, tenant_id: str, appointment_id: str) -> int:
    result = await session.execute(
        text(
            "DELETE FROM calendar_claims "
            "WHERE tenant_id = :tenant_id AND appointment_id = :appointment_id"
        ),
        {"tenant_id": tenant_id, "appointment_id": appointment_id},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
