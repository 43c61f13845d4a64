"""Queries for campaigns (all tenant queries start from `scoped`). Recipients are resolved
in SQL: a source query yields (patient_id, location_id) and one statement joins patients,
drops exclusions and picks each patient's channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.campaigns.models import (
    Campaign,
    CampaignExclusion,
    CampaignListEntry,
    CampaignRecipient,
)
from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.messaging.models import Message
from api.practice.models import Patient


@dataclass(frozen=True)
class SourceQuery:
    """SQL returning `patient_id, location_id` rows, with its parameters."""

    sql: str
    params: dict[str, Any]


@dataclass(frozen=True)
class CampaignFilters:
    location_id: str | None = None
    name: str | None = None
    send_date_from: date | None = None
    send_date_to: date | None = None
    time_zone: str = "UTC"
    method: str | None = None
    campaign_type: str | None = None
    status: str | None = None


def _visible(visible: frozenset[str] | None) -> ColumnElement[bool] | None:
    """A campaign is visible when every location it covers is."""
    if visible is None:
        return None
    condition: ColumnElement[bool] = Campaign.location_ids.contained_by(sorted(visible))
    return condition


def _campaigns(tenant_id: str, visible: frozenset[str] | None) -> Select[Any]:
    stmt = scoped(Campaign, tenant_id)
    condition = _visible(visible)
    return stmt if condition is None else stmt.where(condition)


async def get_campaign(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    visible: frozenset[str] | None,
    *,
    for_update: bool = False,
    shared: bool = False,
) -> Campaign | None:
    stmt = _campaigns(tenant_id, visible).where(Campaign.id == campaign_id)
    if for_update:
        stmt = stmt.with_for_update()
    elif shared:
        stmt = stmt.with_for_update(read=True)
    campaign: Campaign | None = (await session.execute(stmt)).scalar_one_or_none()
    return campaign


def _filtered(stmt: Select[Any], filters: CampaignFilters) -> Select[Any]:
    if filters.location_id is not None:
        stmt = stmt.where(literal(filters.location_id) == func.any(Campaign.location_ids))
    if filters.name:
        escaped = filters.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Campaign.name.ilike(f"%{escaped}%", escape="\\"))
    if filters.method is not None:
        stmt = stmt.where(literal(filters.method) == func.any(Campaign.channels))
    if filters.campaign_type is not None:
        stmt = stmt.where(Campaign.campaign_type == filters.campaign_type)
    if filters.status is not None:
        stmt = stmt.where(Campaign.status == filters.status)
    if filters.send_date_from is not None or filters.send_date_to is not None:
        local_day = func.date(func.timezone(filters.time_zone, Campaign.send_at))
        if filters.send_date_from is not None:
            stmt = stmt.where(local_day >= filters.send_date_from)
        if filters.send_date_to is not None:
            stmt = stmt.where(local_day <= filters.send_date_to)
    return stmt


async def list_campaigns(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    filters: CampaignFilters,
    page: PageParams,
) -> list[Campaign]:
    stmt = _filtered(_campaigns(tenant_id, visible), filters)
    return list((await session.execute(keyset(stmt, [Campaign.id], page))).scalars())


async def status_counts(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    filters: CampaignFilters,
) -> dict[str, int]:
    inner = _filtered(_campaigns(tenant_id, visible), filters).subquery()
    stmt = select(inner.c.status, func.count()).group_by(inner.c.status)
    return {status: int(n) for status, n in (await session.execute(stmt)).all()}


async def delete_campaign(session: AsyncSession, campaign: Campaign) -> None:
    await session.delete(campaign)
    await session.flush()


# --- recipients ---------------------------------------------------------------------------


def custom_list_source(tenant_id: str, campaign_id: str) -> SourceQuery:
    return SourceQuery(
        "SELECT e.patient_id AS patient_id, p.location_id AS location_id "
        "FROM campaign_list_entries e JOIN patients p "
        "ON p.tenant_id = e.tenant_id AND p.id = e.patient_id "
        "WHERE e.tenant_id = :tenant_id AND e.campaign_id = :list_campaign_id "
        "AND e.patient_id IS NOT NULL AND p.deleted_at IS NULL",
        {"tenant_id": tenant_id, "list_campaign_id": campaign_id},
    )


def _channel_sql(channels: list[str]) -> str:
    if len(channels) == 1:
        return f"'{'email' if channels[0] == 'email' else 'sms'}'"
    # Both: the patient's preference when they have that address, else what they have.
    return (
        "CASE WHEN p.communication_preference = 'email' AND p.email IS NOT NULL THEN 'email' "
        "WHEN p.communication_preference = 'sms' AND p.mobile IS NOT NULL THEN 'sms' "
        "WHEN p.mobile IS NOT NULL THEN 'sms' WHEN p.email IS NOT NULL THEN 'email' "
        "ELSE 'sms' END"
    )


def _resolved(
    source: SourceQuery, tenant_id: str, campaign_id: str, channels: list[str], *, exclude: bool
) -> tuple[str, dict[str, Any]]:
    """(patient_id, location_id, channel, first_name, last_name, excluded) per recipient."""
    params = dict(source.params, tenant_id=tenant_id, campaign_id=campaign_id)
    excluded = (
        "EXISTS (SELECT 1 FROM campaign_exclusions x WHERE x.tenant_id = :tenant_id "
        "AND x.campaign_id = :campaign_id AND x.patient_id = m.patient_id)"
    )
    sql = (
        f"SELECT DISTINCT ON (m.patient_id) m.patient_id, m.location_id, "
        f"{_channel_sql(channels)} AS channel, p.first_name, p.last_name, "
        f"{excluded} AS excluded "
        f"FROM ({source.sql}) m JOIN patients p ON p.tenant_id = :tenant_id "
        "AND p.id = m.patient_id"
    )
    if exclude:
        sql = f"SELECT * FROM ({sql}) r WHERE NOT r.excluded"
    return sql, params


async def recipient_counts(
    session: AsyncSession,
    source: SourceQuery,
    tenant_id: str,
    campaign_id: str,
    channels: list[str],
) -> tuple[int, dict[str, int]]:
    """(excluded, {channel: recipients}) of the would-be recipients."""
    sql, params = _resolved(source, tenant_id, campaign_id, channels, exclude=False)
    rows = await session.execute(
        text(f"SELECT r.channel, r.excluded, count(*) AS n FROM ({sql}) r GROUP BY 1, 2"), params
    )
    excluded = 0
    by_channel: dict[str, int] = {}
    for channel, is_excluded, n in rows.all():
        if is_excluded:
            excluded += int(n)
        else:
            by_channel[channel] = by_channel.get(channel, 0) + int(n)
    return excluded, by_channel


async def list_would_be_recipients(
    session: AsyncSession,
    source: SourceQuery,
    tenant_id: str,
    campaign_id: str,
    channels: list[str],
    search: str | None,
    page: PageParams,
    after: str | None,
) -> list[Any]:
    sql, params = _resolved(source, tenant_id, campaign_id, channels, exclude=False)
    where = []
    if search:
        where.append(
            "(r.patient_id = :search OR (r.first_name || ' ' || r.last_name) ILIKE :pattern "
            "OR r.last_name ILIKE :pattern)"
        )
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params |= {"search": search, "pattern": f"%{escaped}%"}
    if after is not None:
        where.append("r.patient_id > :after")
        params["after"] = after
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await session.execute(
        text(f"SELECT * FROM ({sql}) r {condition} ORDER BY r.patient_id LIMIT :limit"),
        params | {"limit": page.limit + 1},
    )
    return list(rows.all())


async def snapshot_recipients(
    session: AsyncSession,
    source: SourceQuery,
    tenant_id: str,
    campaign_id: str,
    send_round: int,
    channels: list[str],
) -> int:
    """Insert this round's recipients in one statement; returns how many were added."""
    sql, params = _resolved(source, tenant_id, campaign_id, channels, exclude=True)
    result = await session.execute(
        text(
            "INSERT INTO campaign_recipients (tenant_id, campaign_id, send_round, patient_id, "
            "location_id, channel, status) "
            f"SELECT :tenant_id, :campaign_id, :send_round, r.patient_id, r.location_id, "
            f"r.channel, 'pending' FROM ({sql}) r ON CONFLICT DO NOTHING"
        ),
        params | {"send_round": send_round},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def claim_pending(
    session: AsyncSession, tenant_id: str, campaign_id: str, send_round: int, limit: int
) -> list[CampaignRecipient]:
    """Up to `limit` pending recipients no other transaction holds."""
    stmt = (
        scoped(CampaignRecipient, tenant_id)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.send_round == send_round,
            CampaignRecipient.status == "pending",
        )
        .order_by(CampaignRecipient.patient_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def has_pending(session: AsyncSession, tenant_id: str, campaign_id: str, rnd: int) -> bool:
    stmt = (
        select(CampaignRecipient.patient_id)
        .where(
            CampaignRecipient.tenant_id == tenant_id,
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.send_round == rnd,
            CampaignRecipient.status == "pending",
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def pending_count(session: AsyncSession, tenant_id: str, campaign_id: str, rnd: int) -> int:
    stmt = select(func.count()).where(
        CampaignRecipient.tenant_id == tenant_id,
        CampaignRecipient.campaign_id == campaign_id,
        CampaignRecipient.send_round == rnd,
        CampaignRecipient.status == "pending",
    )
    return int((await session.execute(stmt)).scalar_one())


async def unfinished_messages(
    session: AsyncSession, tenant_id: str, source_id: str
) -> tuple[int, datetime | None]:
    """(queued or held messages of the round, the latest deferral among them)."""
    stmt = select(func.count(), func.max(Message.deferred_until)).where(
        Message.tenant_id == tenant_id,
        Message.source_kind == "campaign",
        Message.source_id == source_id,
        Message.status.in_(("queued", "held")),
    )
    count, latest = (await session.execute(stmt)).one()
    return int(count), latest


async def set_exclusions(
    session: AsyncSession, tenant_id: str, campaign_id: str, patient_ids: list[str], on: bool
) -> None:
    if on:
        stmt = (
            insert(CampaignExclusion)
            .values(
                [
                    {"tenant_id": tenant_id, "campaign_id": campaign_id, "patient_id": pid}
                    for pid in patient_ids
                ]
            )
            .on_conflict_do_nothing()
        )
        await session.execute(stmt)
    else:
        await session.execute(
            delete(CampaignExclusion).where(
                CampaignExclusion.tenant_id == tenant_id,
                CampaignExclusion.campaign_id == campaign_id,
                CampaignExclusion.patient_id.in_(patient_ids),
            )
        )


async def existing_patients(
    session: AsyncSession, tenant_id: str, patient_ids: list[str], location_ids: list[str]
) -> set[str]:
    stmt = select(Patient.id).where(
        Patient.tenant_id == tenant_id,
        Patient.id.in_(patient_ids),
        Patient.location_id.in_(location_ids),
        Patient.deleted_at.is_(None),
    )
    return set((await session.execute(stmt)).scalars())


async def copy_campaign_rows(
    session: AsyncSession, tenant_id: str, source_id: str, target_id: str
) -> None:
    """A duplicate keeps the exclusions and the custom list."""
    for table, columns in (
        ("campaign_exclusions", "patient_id"),
        ("campaign_list_entries", "line, first_name, last_name, email, mobile, patient_id"),
    ):
        await session.execute(
            text(
                f"INSERT INTO {table} (tenant_id, campaign_id, {columns}) "
                f"SELECT tenant_id, :target, {columns} FROM {table} "
                "WHERE tenant_id = :tenant_id AND campaign_id = :source"
            ),
            {"tenant_id": tenant_id, "target": target_id, "source": source_id},
        )


async def replace_list(
    session: AsyncSession, tenant_id: str, campaign_id: str, entries: list[dict[str, Any]]
) -> None:
    await session.execute(
        delete(CampaignListEntry).where(
            CampaignListEntry.tenant_id == tenant_id,
            CampaignListEntry.campaign_id == campaign_id,
        )
    )
    if entries:
        await session.execute(insert(CampaignListEntry).values(entries))


async def match_patient(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    first_name: str,
    last_name: str,
    email: str | None,
    mobile: str | None,
) -> str | None:
    """The one live patient of the location with this name and this email or mobile."""
    contact = []
    if email:
        contact.append(func.lower(Patient.email) == email.lower())
    if mobile:
        contact.append(Patient.mobile == mobile)
    if not contact:
        return None
    stmt = (
        select(Patient.id)
        .where(
            Patient.tenant_id == tenant_id,
            Patient.location_id == location_id,
            Patient.deleted_at.is_(None),
            func.lower(Patient.first_name) == first_name.lower(),
            func.lower(Patient.last_name) == last_name.lower(),
            or_(*contact),
        )
        .order_by(Patient.id)
        .limit(2)
    )
    found = list((await session.execute(stmt)).scalars())
    return found[0] if len(found) == 1 else None


async def mark_recipients(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    send_round: int,
    outcomes: list[tuple[str, str, str | None, str | None]],
) -> None:
    """(patient_id, status, message_id, failure_reason) for many recipients, one statement."""
    if not outcomes:
        return
    await session.execute(
        text(
            "UPDATE campaign_recipients r SET status = o.status, message_id = o.message_id, "
            "failure_reason = o.reason FROM unnest(CAST(:patients AS text[]), "
            "CAST(:statuses AS text[]), CAST(:messages AS text[]), CAST(:reasons AS text[])) "
            "AS o(patient_id, status, message_id, reason) WHERE r.tenant_id = :tenant_id "
            "AND r.campaign_id = :campaign_id AND r.send_round = :send_round "
            "AND r.patient_id = o.patient_id"
        ),
        {
            "tenant_id": tenant_id,
            "campaign_id": campaign_id,
            "send_round": send_round,
            "patients": [o[0] for o in outcomes],
            "statuses": [o[1] for o in outcomes],
            "messages": [o[2] for o in outcomes],
            "reasons": [o[3] for o in outcomes],
        },
    )


# --- results ------------------------------------------------------------------------------


def _results_sql() -> str:
    """Each recipient of a round with its message, whether the patient replied (an SMS
    after the send) and whether they opted out of the channel after it."""
    return (
        "SELECT r.patient_id, p.first_name, p.last_name, r.location_id, r.channel, "
        "CASE WHEN r.status = 'pending' THEN 'pending' WHEN r.status = 'unsendable' "
        "THEN 'failed' ELSE m.status END AS status, "
        "COALESCE(r.failure_reason, m.failure_reason) AS failure_reason, "
        "m.id AS message_id, m.sent_at, m.delivered_at, "
        "(m.sent_at IS NOT NULL AND r.channel = 'sms' AND EXISTS (SELECT 1 FROM "
        "inbound_messages i WHERE i.tenant_id = r.tenant_id AND i.patient_id = r.patient_id "
        "AND i.action = 'reply' AND i.received_at >= m.sent_at)) AS replied, "
        "(m.sent_at IS NOT NULL AND EXISTS (SELECT 1 FROM opt_outs o WHERE "
        "o.tenant_id = r.tenant_id AND o.deleted_at IS NULL AND (o.patient_id = r.patient_id "
        "OR o.contact_value = m.to_address) "
        "AND o.channel IN (r.channel, 'all') AND o.opted_out_at >= m.sent_at)) AS opted_out "
        "FROM campaign_recipients r "
        "JOIN patients p ON p.tenant_id = r.tenant_id AND p.id = r.patient_id "
        "LEFT JOIN messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id "
        "WHERE r.tenant_id = :tenant_id AND r.campaign_id = :campaign_id "
        "AND r.send_round = :send_round"
    )


async def patient_results(
    session: AsyncSession,
    tenant_id: str,
    campaign_id: str,
    send_round: int,
    page: PageParams,
    after: str | None,
    status: str | None,
) -> list[Any]:
    params: dict[str, Any] = {
        "tenant_id": tenant_id,
        "campaign_id": campaign_id,
        "send_round": send_round,
        "limit": page.limit + 1,
    }
    where = []
    if after is not None:
        where.append("x.patient_id > :after")
        params["after"] = after
    if status is not None:
        where.append("x.status = :status")
        params["status"] = status
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    sql = f"SELECT * FROM ({_results_sql()}) x {condition} ORDER BY x.patient_id LIMIT :limit"
    return list((await session.execute(text(sql), params)).all())


async def result_counts(
    session: AsyncSession, tenant_id: str, campaign_id: str, send_round: int
) -> list[Any]:
    sql = (
        "SELECT x.channel, x.status, x.failure_reason = 'frequency_cap' AS capped, "
        "x.replied, x.opted_out, count(*) AS n "
        f"FROM ({_results_sql()}) x GROUP BY 1, 2, 3, 4, 5"
    )
    params = {"tenant_id": tenant_id, "campaign_id": campaign_id, "send_round": send_round}
    return list((await session.execute(text(sql), params)).all())
