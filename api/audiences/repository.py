"""Queries for audiences: the rows, the one-statement rebuild, member pages, diffs and the
do-not-contact list. Every statement is filtered by tenant (row-level security is the
second wall); the big ones are SQL text because they are set operations over a million
rows that the ORM would only obscure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    Text,
    any_,
    cast,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences.models import Audience, AudienceVersion, DoNotContactEntry
from api.audiences.suppression import first_reason_sql, suppressed_sql
from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.engines.rules import CompiledQuery
from api.practice.models import Patient
from api.segments.models import Segment


def _segment_visible(visible: frozenset[str] | None) -> ColumnElement[bool] | None:
    """An audience is visible when its segment is: it covers all locations, or only
    locations the caller may see."""
    if visible is None:
        return None
    return or_(
        func.cardinality(Segment.location_ids) == 0,
        Segment.location_ids.contained_by(sorted(visible)),
    )


def _audiences(tenant_id: str, visible: frozenset[str] | None) -> Select[Any]:
    stmt = scoped(Audience, tenant_id)
    condition = _segment_visible(visible)
    if condition is None:
        return stmt
    segments = scoped(Segment, tenant_id).where(condition).with_only_columns(Segment.id)
    return stmt.where(Audience.segment_id.in_(segments.scalar_subquery()))


async def get_audience(
    session: AsyncSession,
    tenant_id: str,
    audience_id: str,
    visible: frozenset[str] | None,
    *,
    for_update: bool = False,
) -> Audience | None:
    stmt = _audiences(tenant_id, visible).where(Audience.id == audience_id)
    if for_update:
        # One rebuild of an audience at a time: the next waits and builds on this one.
        stmt = stmt.with_for_update(of=Audience)
    audience: Audience | None = (await session.execute(stmt)).scalar_one_or_none()
    return audience


async def list_audiences(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    page: PageParams,
    segment_id: str | None = None,
) -> list[Audience]:
    stmt = _audiences(tenant_id, visible)
    if segment_id is not None:
        stmt = stmt.where(Audience.segment_id == segment_id)
    return list((await session.execute(keyset(stmt, [Audience.id], page))).scalars())


async def delete_audience(session: AsyncSession, audience: Audience) -> None:
    await session.delete(audience)
    await session.flush()


async def get_version(
    session: AsyncSession, tenant_id: str, audience_id: str, version: int
) -> AudienceVersion | None:
    stmt = scoped(AudienceVersion, tenant_id).where(
        AudienceVersion.audience_id == audience_id, AudienceVersion.version == version
    )
    found: AudienceVersion | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def all_audiences(session: AsyncSession) -> list[tuple[Audience, Segment]]:
    """Every tenant's audiences with their segments (the scheduler's system read)."""
    stmt = (
        select(Audience, Segment)
        .join(
            Segment,
            (Segment.tenant_id == Audience.tenant_id) & (Segment.id == Audience.segment_id),
        )
        .order_by(Audience.tenant_id, Audience.id)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


# --- counting and rebuilding -------------------------------------------------------------


async def _without_jit(session: AsyncSession) -> None:
    """JIT compiling these wide statements (a column per suppression, sub-plans) costs
    seconds, more than running them; this transaction's statements run without it."""
    await session.execute(text("SET LOCAL jit = off"))


def _counts_sql(reasons: tuple[str, ...], alias: str) -> str:
    per_reason = "".join(f", count(*) FILTER (WHERE {alias}.s_{r}) AS s_{r}" for r in reasons)
    kept = f"NOT {suppressed_sql(reasons, alias)}"
    return f"count(*) AS matched, count(*) FILTER (WHERE {kept}) AS kept{per_reason}"


def _counts(row: Any, reasons: tuple[str, ...]) -> dict[str, Any]:
    return {
        "matched": row.matched,
        "kept": row.kept,
        "suppressed": {r: getattr(row, f"s_{r}") for r in reasons},
    }


async def stage_candidates(
    session: AsyncSession, compiled: CompiledQuery, statements: Sequence[str]
) -> None:
    """The compiled rule's matches (with the plan's columns) into the temporary table
    `audience_candidates` of this transaction, flagged by each suppression statement."""
    await _without_jit(session)
    await session.execute(text("DROP TABLE IF EXISTS audience_candidates"))
    await session.execute(
        text(f"CREATE TEMPORARY TABLE audience_candidates ON COMMIT DROP AS {compiled.sql}"),
        compiled.params,
    )
    await session.execute(text("ANALYZE audience_candidates"))
    for statement in statements:
        await session.execute(text(statement), compiled.params)


async def count_suppressed(session: AsyncSession, reasons: tuple[str, ...]) -> dict[str, Any]:
    """{"matched", "kept", "suppressed": {reason: n}} of the staged candidates."""
    sql = f"SELECT {_counts_sql(reasons, 'c')} FROM audience_candidates c"
    row = (await session.execute(text(sql))).one()
    return _counts(row, reasons)


async def apply_rebuild(
    session: AsyncSession,
    reasons: tuple[str, ...],
    *,
    tenant_id: str,
    audience_id: str,
    version: int,
    location_ids: Sequence[str],
) -> tuple[int, int, dict[str, Any]]:
    """Make `version` of the audience's members at `location_ids` what the staged
    candidates keep (one bookkeeping statement): members no longer kept
    get `removed_version` (with the reason), patients newly kept get a row from
    `version`. Returns (added, removed, counts). Members at other locations are
    untouched."""
    kept = f"(c.patient_id IS NOT NULL AND NOT {suppressed_sql(reasons, 'c')})"
    # Set operations, planned as such: the new set and the current members meet in one
    # FULL JOIN, leaving just the moves, and every join is a hash or merge join (nested
    # loops are off for the bookkeeping statement: over members written moments ago,
    # without statistics yet, they went quadratic).
    # The candidates are staged (stage_candidates) before this statement.
    sql = f"""
WITH cand AS (SELECT * FROM audience_candidates),
cur AS MATERIALIZED (
  SELECT am.patient_id FROM audience_members am
  WHERE am.tenant_id = :tenant_id AND am.audience_id = :a_audience
    AND am.removed_version IS NULL AND am.location_id = ANY(CAST(:a_locations AS text[]))),
history AS (
  SELECT DISTINCT ON (o.patient_id) o.patient_id, o.removed_reason FROM audience_members o
  WHERE o.tenant_id = :tenant_id AND o.audience_id = :a_audience
    AND o.removed_version IS NOT NULL
  ORDER BY o.patient_id, o.added_version DESC),
moves AS MATERIALIZED (
  SELECT COALESCE(c.patient_id, cur.patient_id) AS patient_id, c.location_id,
    cur.patient_id IS NOT NULL AS was_member, c.patient_id IS NOT NULL AS matched,
    {first_reason_sql(reasons, "c")} AS reason
  FROM cand c FULL JOIN cur ON cur.patient_id = c.patient_id
  WHERE {kept} <> (cur.patient_id IS NOT NULL)),
removed AS (
  UPDATE audience_members am
  SET removed_version = :a_version,
      removed_reason = CASE
        WHEN m.matched THEN 'suppressed:' || m.reason
        WHEN EXISTS (
          SELECT 1 FROM patients pt WHERE pt.tenant_id = am.tenant_id
          AND pt.id = am.patient_id AND pt.deleted_at IS NULL)
        THEN 'no_longer_matches' ELSE 'patient_removed' END
  FROM moves m
  WHERE m.was_member AND am.tenant_id = :tenant_id AND am.audience_id = :a_audience
    AND am.removed_version IS NULL AND am.patient_id = m.patient_id
  RETURNING 1),
added AS (
  INSERT INTO audience_members
    (tenant_id, audience_id, patient_id, added_version, location_id, added_reason)
  SELECT :tenant_id, :a_audience, m.patient_id, :a_version, m.location_id,
    CASE WHEN starts_with(h.removed_reason, 'suppressed:')
    THEN 'no_longer_suppressed' ELSE 'matched_rule' END
  FROM moves m LEFT JOIN history h ON h.patient_id = m.patient_id
  WHERE NOT m.was_member
    -- A member still listed at another location (the patient moved) stays as is.
    AND NOT EXISTS (
      SELECT 1 FROM audience_members other WHERE other.tenant_id = :tenant_id
      AND other.audience_id = :a_audience AND other.patient_id = m.patient_id
      AND other.removed_version IS NULL)
  RETURNING 1)
SELECT (SELECT count(*) FROM added) AS added, (SELECT count(*) FROM removed) AS removed,
  {_counts_sql(reasons, "c")}
FROM cand c
"""
    params = dict(
        a_version=version,
        a_audience=audience_id,
        a_locations=list(location_ids),
    )
    params["tenant_id"] = tenant_id
    await session.execute(text("SET LOCAL enable_nestloop = off"))
    row = (await session.execute(text(sql), params)).one()
    await session.execute(text("SET LOCAL enable_nestloop = on"))
    return row.added, row.removed, _counts(row, reasons)


async def remove_members_outside(
    session: AsyncSession,
    *,
    tenant_id: str,
    audience_id: str,
    version: int,
    location_ids: Sequence[str],
) -> int:
    """Members at locations the audience no longer covers (the segment's locations
    changed, or a location was removed) leave at `version`."""
    sql = """
UPDATE audience_members SET removed_version = :version, removed_reason = 'location_removed'
WHERE tenant_id = :tenant_id AND audience_id = :audience_id AND removed_version IS NULL
  AND NOT (location_id = ANY(CAST(:location_ids AS text[])))
"""
    result = await session.execute(
        text(sql),
        {
            "version": version,
            "tenant_id": tenant_id,
            "audience_id": audience_id,
            "location_ids": list(location_ids),
        },
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- reading members and changes ------------------------------------------------------

_CONTACT = (
    "p.first_name, p.last_name, p.preferred_name, p.email, p.mobile, p.communication_preference"
)


async def members_page(
    session: AsyncSession,
    *,
    tenant_id: str,
    audience_id: str,
    version: int,
    current: bool,
    visible: frozenset[str] | None,
    after: str | None,
    limit: int,
) -> list[Any]:
    """Up to `limit` members at `version` with a patient id after `after`, by patient id,
    with their contact details from the mirror. The current version reads the partial
    index of open ranges; an older one filters the ranges that cover it."""
    where = ["am.tenant_id = :tenant_id", "am.audience_id = :audience_id"]
    if current:
        where.append("am.removed_version IS NULL")
    else:
        where.append(
            "am.added_version <= :version "
            "AND (am.removed_version IS NULL OR am.removed_version > :version)"
        )
    params: dict[str, Any] = {
        "tenant_id": tenant_id,
        "audience_id": audience_id,
        "version": version,
        "limit": limit,
    }
    if visible is not None:
        where.append("am.location_id = ANY(CAST(:visible AS text[]))")
        params["visible"] = sorted(visible)
    if after is not None:
        where.append("am.patient_id > :after")
        params["after"] = after
    sql = (
        f"SELECT am.patient_id, am.location_id, am.added_version, {_CONTACT} "
        "FROM audience_members am LEFT JOIN patients p "
        "ON p.tenant_id = am.tenant_id AND p.id = am.patient_id "
        f"WHERE {' AND '.join(where)} ORDER BY am.patient_id LIMIT :limit"
    )
    return list(await session.execute(text(sql), params))


def _changes_sql(visible: frozenset[str] | None) -> str:
    """Patients in the audience at `to` but not at `since` (added) and the other way
    round (removed). Each side starts from a range scan on the version that changed (an
    index on added_version, one on removed_version) and checks the patient's other ranges
    through the primary key, so the cost follows the number of changes."""
    at = (
        "o.tenant_id = am.tenant_id AND o.audience_id = am.audience_id "
        "AND o.patient_id = am.patient_id AND o.added_version + 0 <= {v} "
        "AND (o.removed_version IS NULL OR o.removed_version + 0 > {v})"
    )
    seen = " AND am.location_id = ANY(CAST(:visible AS text[]))" if visible is not None else ""
    return f"""
SELECT 'added' AS change, am.patient_id, am.location_id, am.added_reason AS reason,
  am.added_version AS version
FROM audience_members am
WHERE am.tenant_id = :tenant_id AND am.audience_id = :audience_id
  AND am.added_version > :since AND am.added_version <= :to_version
  AND (am.removed_version IS NULL OR am.removed_version > :to_version){seen}
  AND NOT EXISTS (SELECT 1 FROM audience_members o WHERE {at.format(v=":since")})
UNION ALL
SELECT 'removed', am.patient_id, am.location_id, am.removed_reason, am.removed_version
FROM audience_members am
WHERE am.tenant_id = :tenant_id AND am.audience_id = :audience_id
  AND am.removed_version > :since AND am.removed_version <= :to_version
  AND am.added_version <= :since{seen}
  AND NOT EXISTS (SELECT 1 FROM audience_members o WHERE {at.format(v=":to_version")})
"""


def _changes_params(
    tenant_id: str, audience_id: str, since: int, to_version: int, visible: frozenset[str] | None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "tenant_id": tenant_id,
        "audience_id": audience_id,
        "since": since,
        "to_version": to_version,
    }
    if visible is not None:
        params["visible"] = sorted(visible)
    return params


async def changes_page(
    session: AsyncSession,
    *,
    tenant_id: str,
    audience_id: str,
    since: int,
    to_version: int,
    visible: frozenset[str] | None,
    after: str | None,
    limit: int,
) -> list[Any]:
    params = _changes_params(tenant_id, audience_id, since, to_version, visible)
    params["limit"] = limit
    start = ""
    if after is not None:
        start = "WHERE ch.patient_id > :after"
        params["after"] = after
    sql = (
        f"SELECT ch.*, {_CONTACT} FROM ({_changes_sql(visible)}) ch "
        "LEFT JOIN patients p ON p.tenant_id = :tenant_id AND p.id = ch.patient_id "
        f"{start} ORDER BY ch.patient_id LIMIT :limit"
    )
    return list(await session.execute(text(sql), params))


async def change_counts(
    session: AsyncSession,
    *,
    tenant_id: str,
    audience_id: str,
    since: int,
    to_version: int,
    visible: frozenset[str] | None,
) -> tuple[int, int]:
    """(added, removed) between the two versions."""
    params = _changes_params(tenant_id, audience_id, since, to_version, visible)
    sql = (
        "SELECT count(*) FILTER (WHERE ch.change = 'added') AS added, "
        "count(*) FILTER (WHERE ch.change = 'removed') AS removed "
        f"FROM ({_changes_sql(visible)}) ch"
    )
    row = (await session.execute(text(sql), params)).one()
    return row.added, row.removed


# --- the do-not-contact list ------------------------------------------------------------


async def list_do_not_contact(
    session: AsyncSession, tenant_id: str, page: PageParams
) -> list[DoNotContactEntry]:
    stmt = keyset(scoped(DoNotContactEntry, tenant_id), [DoNotContactEntry.id], page)
    return list((await session.execute(stmt)).scalars())


async def get_do_not_contact(
    session: AsyncSession, tenant_id: str, entry_id: str
) -> DoNotContactEntry | None:
    stmt = scoped(DoNotContactEntry, tenant_id).where(DoNotContactEntry.id == entry_id)
    found: DoNotContactEntry | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def delete_do_not_contact(session: AsyncSession, entry: DoNotContactEntry) -> None:
    await session.delete(entry)
    await session.flush()


def _texts(values: Sequence[str]) -> Any:
    return cast(literal(list(values), ARRAY(Text)), ARRAY(Text))


async def do_not_contact_matches(
    session: AsyncSession, tenant_id: str, patients: Sequence[Patient]
) -> set[str]:
    """Ids of these patients on the do-not-contact list: by chart, mobile or email."""
    if not patients:
        return set()
    ids = [p.id for p in patients]
    phones = [p.mobile for p in patients if p.mobile]
    emails = [p.email.lower() for p in patients if p.email]
    # Each list as one array parameter: a send batch asks about hundreds of patients, and
    # an IN list is compiled into one bind parameter per value on every call.
    stmt = scoped(DoNotContactEntry, tenant_id).where(
        or_(
            DoNotContactEntry.patient_id == any_(_texts(ids)),
            DoNotContactEntry.phone == any_(_texts(phones)),
            DoNotContactEntry.email == any_(_texts(emails)),
        )
    )
    entries = list((await session.execute(stmt)).scalars())
    listed_ids = {e.patient_id for e in entries if e.patient_id}
    listed_phones = {e.phone for e in entries if e.phone}
    listed_emails = {e.email for e in entries if e.email}
    return {
        p.id
        for p in patients
        if p.id in listed_ids
        or (p.mobile and p.mobile in listed_phones)
        or (p.email and p.email.lower() in listed_emails)
    }
