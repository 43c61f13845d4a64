"""Queries for messaging (all tenant queries start from `scoped`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, Text, any_, cast, func, literal, or_, select, text, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.messaging.models import (
    MESSAGE_CHANNELS,
    InboundMessage,
    Message,
    MessageHandoff,
    MessagingPreferences,
    ProviderSetting,
    SandboxMessage,
)
from api.oauth2.models import PublishableKey
from api.practice.models import LedgerBalance, OptOut, Patient, Procedure, Provider, Recall
from api.tenancy.models import Location


def _texts(values: Sequence[str]) -> Any:
    """A list as one array parameter (`= ANY(...)`): an IN list of a batch's hundreds
    of ids is compiled into as many bind parameters on every execution."""
    return cast(literal(list(values), ARRAY(Text)), ARRAY(Text))


# --- the ledger ---------------------------------------------------------------------------


async def message_by_key(
    session: AsyncSession,
    tenant_id: str,
    source_kind: str,
    source_id: str,
    recipient_key: str,
    channel: str,
) -> Message | None:
    stmt = scoped(Message, tenant_id).where(
        Message.source_kind == source_kind,
        Message.source_id == source_id,
        Message.recipient_key == recipient_key,
        Message.channel == channel,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_message(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless the (source, recipient, channel) key exists. True when inserted."""
    stmt = (
        insert(Message)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["tenant_id", "source_kind", "source_id", "recipient_key", "channel"]
        )
        .returning(Message.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def messages_by_keys(
    session: AsyncSession,
    tenant_id: str,
    source_kind: str,
    source_id: str,
    recipient_keys: Sequence[str],
) -> dict[tuple[str, str], str]:
    """{(recipient key, channel): message id} of a source's messages to these recipients."""
    if not recipient_keys:
        return {}
    # One index probe per key, whatever the table's statistics say: a LATERAL sub-select
    # with a LIMIT is never flattened into a join the planner may turn around. (With
    # "= ANY", or a plain join to the keys, a table never analyzed, as the messages of a
    # campaign being recorded are, was read whole for every recorded batch: at 100,000
    # recipients this query was most of Postgres's time in bench/sends, 6.3 s a call.)
    wanted = func.unnest(_texts(recipient_keys)).table_valued("key").render_derived("wanted")
    found = (
        select(Message.channel, Message.id)
        .where(
            Message.tenant_id == tenant_id,
            Message.source_kind == source_kind,
            Message.source_id == source_id,
            Message.recipient_key == wanted.c.key,
        )
        .limit(len(MESSAGE_CHANNELS))
        .lateral("found")
    )
    stmt = select(wanted.c.key, found.c.channel, found.c.id).select_from(wanted).join(found, true())
    return {(key, channel): mid for key, channel, mid in (await session.execute(stmt)).all()}


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows whose (source, recipient, channel) key is new; their ids."""
    return set(await insert_columns(session, Message, rows, skip_conflicts=True, returning="id"))


async def claim_due(
    session: AsyncSession,
    tenant_id: str,
    source_kind: str,
    source_id: str,
    now: datetime,
    limit: int,
) -> list[Message]:
    """Up to `limit` queued, due messages of a source that no other transaction holds."""
    stmt = (
        scoped(Message, tenant_id)
        .where(
            Message.source_kind == source_kind,
            Message.source_id == source_id,
            # Written out, not bound: a prepared statement's generic plan can only use
            # the partial index of queued messages (ix_messages_queued) for a constant.
            Message.status == literal("queued", literal_execute=True),
            or_(Message.deferred_until.is_(None), Message.deferred_until <= now),
        )
        .order_by(Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def take_send_lane(
    session: AsyncSession, tenant_id: str, source_kind: str, source_id: str, lanes: int
) -> int | None:
    """One of the source's `lanes` send lanes for this transaction (an advisory lock,
    released at commit, rollback or a lost connection), or None when all are taken."""
    result = await session.execute(
        text(
            "SELECT lane FROM generate_series(0, :last) AS lane "
            "WHERE pg_try_advisory_xact_lock(hashtext(:source), lane) LIMIT 1"
        ),
        {"last": lanes - 1, "source": f"sends:{tenant_id}:{source_kind}:{source_id}"},
    )
    lane: int | None = result.scalar_one_or_none()
    return lane


async def handoffs(
    session: AsyncSession, tenant_id: str, message_ids: Sequence[str]
) -> dict[str, MessageHandoff]:
    if not message_ids:
        return {}
    # A look-up per id whatever the table's statistics say (see `messages_by_keys`):
    # with stale ones, "= ANY" became a filter over every handoff of the practice, for
    # each batch, quadratic over a large campaign.
    wanted = func.unnest(_texts(message_ids)).table_valued("id").render_derived("wanted")
    found = (
        scoped(MessageHandoff, tenant_id)
        .where(MessageHandoff.message_id == wanted.c.id)
        .limit(1)
        .lateral("found")
    )
    stmt = select(aliased(MessageHandoff, found)).select_from(wanted).join(found, true())
    return {h.message_id: h for h in (await session.execute(stmt)).scalars()}


async def insert_handoffs(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_columns(session, MessageHandoff, rows, skip_conflicts=True)


_SAVE_BATCH = text(
    "UPDATE messages AS m SET status = b.status, failure_reason = b.failure_reason, "
    "provider_kind = b.provider_kind, provider_message_id = b.provider_message_id, "
    "attempts = b.attempts, deferred_until = b.deferred_until, to_address = b.to_address, "
    "updated_at = b.updated_at, sent_at = b.sent_at, delivered_at = b.delivered_at, "
    "failed_at = b.failed_at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]), "
    "CAST(:kinds AS text[]), CAST(:provider_ids AS text[]), CAST(:attempts AS int[]), "
    "CAST(:deferred AS timestamptz[]), CAST(:addresses AS text[]), "
    "CAST(:updated AS timestamptz[]), CAST(:sent AS timestamptz[]), "
    "CAST(:delivered AS timestamptz[]), CAST(:failed AS timestamptz[])) "
    "AS b(id, status, failure_reason, provider_kind, provider_message_id, attempts, "
    "deferred_until, to_address, updated_at, sent_at, delivered_at, failed_at) "
    "WHERE m.tenant_id = :tenant_id AND m.id = b.id"
)


async def save_batch(session: AsyncSession, messages: Sequence[Message]) -> None:
    """Write the state of a send batch's messages (detached from the session) in one
    statement: one UPDATE for the batch instead of one per message."""
    if not messages:
        return
    await session.execute(
        _SAVE_BATCH,
        {
            "tenant_id": messages[0].tenant_id,
            "ids": [m.id for m in messages],
            "statuses": [m.status for m in messages],
            "reasons": [m.failure_reason for m in messages],
            "kinds": [m.provider_kind for m in messages],
            "provider_ids": [m.provider_message_id for m in messages],
            "attempts": [m.attempts for m in messages],
            "deferred": [m.deferred_until for m in messages],
            "addresses": [m.to_address for m in messages],
            "updated": [m.updated_at for m in messages],
            "sent": [m.sent_at for m in messages],
            "delivered": [m.delivered_at for m in messages],
            "failed": [m.failed_at for m in messages],
        },
    )


_POSTGRES = postgresql.dialect()  # type: ignore[no-untyped-call]


def _array_type(column: Any) -> str:
    """The Postgres type of an array of the column's values (JSON goes as text)."""
    if isinstance(column.type, JSONB):
        return "text[]"
    return f"{column.type.compile(dialect=_POSTGRES)}[]"


async def insert_columns(
    session: AsyncSession,
    model: type[Any],
    rows: Sequence[dict[str, Any]],
    *,
    skip_conflicts: bool = False,
    returning: str | None = None,
) -> list[Any]:
    """Insert rows that all name the same columns as one INSERT ... SELECT FROM unnest(),
    one array parameter per column: what a batch of hundreds of rows costs is then
    Postgres's work, not per-row statement building (an ORM or multi-VALUES insert spent
    more CPU here than the database did). Returns the `returning` column's values."""
    if not rows:
        return []
    table = model.__table__
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    selected = ", ".join(
        f"u.{name}::jsonb" if isinstance(c.type, JSONB) else f"u.{name}"
        for name, c in zip(names, columns, strict=True)
    )
    arrays = ", ".join(f"CAST(:p{i} AS {_array_type(c)})" for i, c in enumerate(columns))
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {selected} "
        f"FROM unnest({arrays}) AS u({', '.join(names)})"
    )
    if skip_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    params = {
        f"p{i}": [
            json.dumps(row[name])
            if isinstance(c.type, JSONB) and row[name] is not None
            else row[name]
            for row in rows
        ]
        for i, (name, c) in enumerate(zip(names, columns, strict=True))
    }
    result = await session.execute(text(sql), params)
    return list(result.scalars()) if returning else []


async def has_due(
    session: AsyncSession, tenant_id: str, source_kind: str, source_id: str, now: datetime
) -> bool:
    stmt = (
        select(Message.id)
        .where(
            Message.tenant_id == tenant_id,
            Message.source_kind == source_kind,
            Message.source_id == source_id,
            Message.status == "queued",
            or_(Message.deferred_until.is_(None), Message.deferred_until <= now),
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def get_message(
    session: AsyncSession,
    tenant_id: str,
    message_id: str,
    visible: frozenset[str] | None = None,
    *,
    for_update: bool = False,
) -> Message | None:
    stmt = scoped(Message, tenant_id, visible).where(Message.id == message_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def message_by_provider_id(
    session: AsyncSession, tenant_id: str, provider_kind: str, provider_message_id: str
) -> Message | None:
    stmt = (
        scoped(Message, tenant_id)
        .where(
            Message.provider_kind == provider_kind,
            Message.provider_message_id == provider_message_id,
        )
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().first()


async def list_messages(
    session: AsyncSession,
    tenant_id: str,
    visible: frozenset[str] | None,
    page: PageParams,
    filters: dict[str, str | None],
) -> list[Message]:
    stmt = scoped(Message, tenant_id, visible)
    for name, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(Message, name) == value)
    return list((await session.execute(keyset(stmt, [Message.id], page))).scalars())


async def lock_recipient(
    session: AsyncSession, tenant_id: str, patient_id: str, channel: str
) -> None:
    """A transaction lock on (patient, channel): frequency-cap checks take turns."""
    key = f"cap:{tenant_id}:{patient_id}:{channel}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def paced_sends_since(
    session: AsyncSession,
    tenant_id: str,
    patient_id: str,
    channel: str,
    source_kinds: Sequence[str],
    since: datetime,
) -> int:
    stmt = select(func.count()).where(
        Message.tenant_id == tenant_id,
        Message.patient_id == patient_id,
        Message.channel == channel,
        Message.source_kind.in_(list(source_kinds)),
        Message.sent_at > since,
    )
    return int((await session.execute(stmt)).scalar_one())


async def set_source_status(
    session: AsyncSession,
    tenant_id: str,
    source_kind: str,
    source_id: str,
    from_status: str,
    to_status: str,
    now: datetime,
    reason: str | None = None,
) -> int:
    stmt = (
        update(Message)
        .where(
            Message.tenant_id == tenant_id,
            Message.source_kind == source_kind,
            Message.source_id == source_id,
            Message.status == from_status,
        )
        .values(status=to_status, updated_at=now, failure_reason=reason)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def release_held(
    session: AsyncSession, tenant_id: str, source_kind: str, source_id: str, now: datetime
) -> list[Message]:
    stmt = (
        update(Message)
        .where(
            Message.tenant_id == tenant_id,
            Message.source_kind == source_kind,
            Message.source_id == source_id,
            Message.status == "held",
        )
        .values(status="queued", updated_at=now)
        .returning(Message)
        .execution_options(synchronize_session=False)
    )
    return list((await session.execute(stmt)).scalars())


async def last_outbound_to(session: AsyncSession, tenant_id: str, address: str) -> Message | None:
    stmt = (
        scoped(Message, tenant_id)
        .where(Message.to_address == address, Message.source_kind != "reply")
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# --- opt-outs and patients ----------------------------------------------------------------


def _active_opt_outs(tenant_id: str, channel: str) -> Any:
    return scoped(OptOut, tenant_id).where(
        OptOut.deleted_at.is_(None), OptOut.channel.in_([channel, "all"])
    )


async def is_opted_out(
    session: AsyncSession, tenant_id: str, channel: str, patient_id: str | None, address: str
) -> bool:
    who = [OptOut.contact_value == address]
    if patient_id is not None:
        who.append(OptOut.patient_id == patient_id)
    stmt = _active_opt_outs(tenant_id, channel).where(or_(*who)).limit(1)
    return (await session.execute(stmt)).first() is not None


async def own_opt_outs(
    session: AsyncSession,
    tenant_id: str,
    channel: str,
    source: str,
    address: str,
    patient_ids: Sequence[str],
) -> list[OptOut]:
    """Active opt-outs we recorded (`source`) for this address or these patients."""
    who = [OptOut.contact_value == address]
    if patient_ids:
        who.append(OptOut.patient_id.in_(list(patient_ids)))
    stmt = (
        scoped(OptOut, tenant_id)
        .where(
            OptOut.deleted_at.is_(None),
            OptOut.channel == channel,
            OptOut.source == source,
            or_(*who),
        )
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


async def opt_outs_for(
    session: AsyncSession,
    tenant_id: str,
    channel: str,
    patient_ids: Sequence[str],
    addresses: Sequence[str],
) -> list[OptOut]:
    """Active opt-outs of these patients or addresses on the channel (or all channels)."""
    who = []
    if patient_ids:
        who.append(OptOut.patient_id == any_(_texts(patient_ids)))
    if addresses:
        who.append(OptOut.contact_value == any_(_texts(addresses)))
    if not who:
        return []
    stmt = _active_opt_outs(tenant_id, channel).where(or_(*who))
    return list((await session.execute(stmt)).scalars())


async def patients_by_ids(
    session: AsyncSession, tenant_id: str, patient_ids: Sequence[str]
) -> dict[str, Patient]:
    """The live patients among these ids."""
    if not patient_ids:
        return {}
    stmt = scoped(Patient, tenant_id).where(
        Patient.id == any_(_texts(patient_ids)), Patient.deleted_at.is_(None)
    )
    return {p.id: p for p in (await session.execute(stmt)).scalars()}


async def patients_with_mobile(session: AsyncSession, tenant_id: str, mobile: str) -> list[Patient]:
    stmt = (
        scoped(Patient, tenant_id)
        .where(Patient.mobile == mobile, Patient.deleted_at.is_(None))
        .order_by(Patient.id)
    )
    return list((await session.execute(stmt)).scalars())


# --- inbound and sandbox ------------------------------------------------------------------


async def insert_inbound(session: AsyncSession, values: dict[str, Any]) -> bool:
    stmt = (
        insert(InboundMessage)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["tenant_id", "provider_kind", "provider_message_id"]
        )
        .returning(InboundMessage.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def get_inbound(session: AsyncSession, tenant_id: str, inbound_id: str) -> InboundMessage:
    stmt = scoped(InboundMessage, tenant_id).where(InboundMessage.id == inbound_id)
    return (await session.execute(stmt)).scalar_one()


async def list_sandbox(
    session: AsyncSession,
    tenant_id: str,
    page: PageParams,
    channel: str | None,
    to_address: str | None,
) -> list[SandboxMessage]:
    stmt = scoped(SandboxMessage, tenant_id)
    if channel is not None:
        stmt = stmt.where(SandboxMessage.channel == channel)
    if to_address is not None:
        stmt = stmt.where(SandboxMessage.to_address == to_address)
    return list((await session.execute(keyset(stmt, [SandboxMessage.id], page))).scalars())


# --- settings -----------------------------------------------------------------------------


async def provider_settings(session: AsyncSession, tenant_id: str) -> list[ProviderSetting]:
    stmt = scoped(ProviderSetting, tenant_id).order_by(ProviderSetting.channel)
    return list((await session.execute(stmt)).scalars())


async def provider_setting(
    session: AsyncSession, tenant_id: str, channel: str
) -> ProviderSetting | None:
    stmt = scoped(ProviderSetting, tenant_id).where(ProviderSetting.channel == channel)
    return (await session.execute(stmt)).scalar_one_or_none()


async def twilio_settings_for_account(
    session: AsyncSession, account_sid: str
) -> list[ProviderSetting]:
    """System look-up (no tenant yet): which tenants send SMS through this account."""
    stmt = (
        select(ProviderSetting)
        .where(
            ProviderSetting.kind == "twilio",
            ProviderSetting.config["account_sid"].astext == account_sid,
        )
        .order_by(ProviderSetting.tenant_id)
    )
    return list((await session.execute(stmt)).scalars())


async def preferences(session: AsyncSession, tenant_id: str) -> MessagingPreferences | None:
    return (await session.execute(scoped(MessagingPreferences, tenant_id))).scalar_one_or_none()


# --- what templates say about a patient ---------------------------------------------------


async def provider_name(session: AsyncSession, tenant_id: str, provider_id: str) -> str | None:
    stmt = select(Provider.name).where(Provider.tenant_id == tenant_id, Provider.id == provider_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def next_recall_date(session: AsyncSession, tenant_id: str, patient_id: str) -> date | None:
    stmt = select(func.min(Recall.due_date)).where(
        Recall.tenant_id == tenant_id,
        Recall.patient_id == patient_id,
        Recall.deleted_at.is_(None),
        Recall.disabled.is_(False),
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def open_treatment(
    session: AsyncSession, tenant_id: str, patient_id: str
) -> list[tuple[str, Decimal]]:
    """(description or code, fee) of the patient's planned, not yet completed procedures."""
    stmt = (
        select(func.coalesce(Procedure.description, Procedure.code), Procedure.fee)
        .where(
            Procedure.tenant_id == tenant_id,
            Procedure.patient_id == patient_id,
            Procedure.deleted_at.is_(None),
            Procedure.status.in_(("proposed", "accepted", "scheduled")),
        )
        .order_by(Procedure.planned_date.nulls_last(), Procedure.id)
    )
    return [(str(d), Decimal(f)) for d, f in (await session.execute(stmt)).all()]


async def household_balance(
    session: AsyncSession, tenant_id: str, guarantor_id: str
) -> Decimal | None:
    stmt = select(func.sum(LedgerBalance.balance)).where(
        LedgerBalance.tenant_id == tenant_id,
        LedgerBalance.guarantor_id == guarantor_id,
        LedgerBalance.deleted_at.is_(None),
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_patient(session: AsyncSession, tenant_id: str, patient_id: str) -> Patient | None:
    stmt = scoped(Patient, tenant_id).where(Patient.id == patient_id, Patient.deleted_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_location(session: AsyncSession, tenant_id: str, location_id: str) -> Location | None:
    stmt = scoped(Location, tenant_id).where(Location.id == location_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def first_location(
    session: AsyncSession, tenant_id: str, visible: frozenset[str] | None
) -> Location | None:
    stmt = scoped(Location, tenant_id, visible).order_by(Location.id).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def booking_key(
    session: AsyncSession, tenant_id: str, location_id: str, origin: str
) -> str | None:
    """A live publishable key for the location that the widget, served from `origin` (our
    public URL), may use: what a `{{booking.link}}` needs to open a working widget."""
    stmt = (
        scoped(PublishableKey, tenant_id)
        .where(
            PublishableKey.is_active.is_(True),
            PublishableKey.revoked_at.is_(None),
            literal(location_id) == any_(PublishableKey.location_ids),
            or_(
                literal(origin.rstrip("/")) == any_(PublishableKey.allowed_origins),
                literal(origin.rstrip("/") + "/") == any_(PublishableKey.allowed_origins),
            ),
        )
        .order_by(PublishableKey.created_at.desc(), PublishableKey.id)
        .limit(1)
    )
    key = (await session.execute(stmt)).scalar_one_or_none()
    return None if key is None else key.key
