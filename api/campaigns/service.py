"""Campaigns: compose, review, submit, schedule, pause, resume, duplicate, delete, and
the dashboard. Sending itself (start, batches, completion) is in sending.py; results in
results.py.

Recipients are a tagged union resolved in SQL by one resolver per kind (`RESOLVERS`):
`filters` (a rule through the rule compiler), `segment`, `custom_list`. Adding `audience`
is one more resolver."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository as audiences_repository
from api.auth.principal import Principal
from api.campaigns import repository
from api.campaigns.models import Campaign
from api.campaigns.recipients import recipient_source
from api.campaigns.repository import CampaignFilters, SourceQuery
from api.campaigns.schemas import (
    CampaignCounts,
    CampaignCreate,
    CampaignOut,
    CampaignSummary,
    CampaignUpdate,
    CustomListOut,
    CustomListRecipients,
    ExclusionsIn,
    RecipientCountOut,
    RecipientCountRequest,
    RecipientOut,
)
from api.campaigns.sending import continue_sending, schedule_instants, source_id
from api.core import jobs
from api.core.errors import Conflict, FieldError, Forbidden, NotFound, ValidationProblem
from api.core.ids import new_id
from api.core.pagination import PageParams, decode_cursor, encode_cursor
from api.messaging import templates
from api.messaging.schemas import EmailContent, SmsContent
from api.messaging.sending import cancel_source, hold_source
from api.messaging.service import allow_clinical_sms
from api.practice.contact import normalize_email, normalize_phone
from api.segments import repository as segments_repository
from api.segments.service import validate_rule
from api.tenancy import repository as tenancy_repository
from api.tenancy.models import Location

START_TASK = "campaigns.start"
EDITABLE = ("draft", "scheduled", "paused", "completed")


def campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        channels=list(campaign.channels),
        campaign_type=campaign.campaign_type,
        scheduled_for=campaign.scheduled_local,
        location_ids=list(campaign.location_ids),
        sms=SmsContent.model_validate(campaign.sms_content) if campaign.sms_content else None,
        email=EmailContent.model_validate(campaign.email_content)
        if campaign.email_content
        else None,
        recipients=campaign.recipients,
        created_by=campaign.created_by,
        send_round=campaign.send_round,
        send_at=campaign.send_at,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        submitted_at=campaign.submitted_at,
        started_at=campaign.started_at,
        completed_at=campaign.completed_at,
        cancelled_at=campaign.cancelled_at,
    )


def _invalid(field: str, message: str, detail: str | None = None) -> ValidationProblem:
    return ValidationProblem(
        detail or f"Check {field}: {message}.", errors=[FieldError(field=field, message=message)]
    )


# --- checks ---------------------------------------------------------------------------------


async def _locations(
    session: AsyncSession, principal: Principal, ids: Sequence[str], channels: Sequence[str]
) -> list[Location]:
    """The campaign's locations: each visible to the caller and, when SMS is among the
    channels, with its SMS registration complete."""
    visible = await tenancy_repository.all_locations(
        session, principal.tenant_id, principal.location_ids
    )
    by_id = {loc.id: loc for loc in visible}
    errors = []
    for i, loc_id in enumerate(ids):
        location = by_id.get(loc_id)
        if location is None:
            errors.append(FieldError(field=f"location_ids[{i}]", message=f"no location {loc_id!r}"))
        elif "sms" in channels and not location.sms_registration_complete:
            errors.append(
                FieldError(
                    field=f"location_ids[{i}]",
                    message="SMS registration is not complete for this location",
                )
            )
    if errors:
        raise ValidationProblem("Check the locations.", errors=errors)
    return [by_id[i] for i in sorted(set(ids))]


async def _check_content(
    session: AsyncSession, tenant_id: str, content: SmsContent | EmailContent | None, field: str
) -> None:
    if content is None:
        return
    try:
        templates.check(content, await allow_clinical_sms(session, tenant_id))
    except ValidationProblem as problem:
        for error in problem.errors:
            error.field = field + error.field.removeprefix("content")
        raise


async def _check_recipients(
    session: AsyncSession, principal: Principal, recipients: dict[str, Any] | None
) -> None:
    if recipients is None:
        return
    if recipients["kind"] == "filters":
        try:
            validate_rule(recipients["rule"])
        except ValidationProblem as problem:
            for error in problem.errors:
                error.field = "recipients.rule" + (
                    error.field if error.field.startswith("/") else ""
                )
            raise
    elif recipients["kind"] == "segment":
        segment = await segments_repository.get_segment(
            session, principal.tenant_id, recipients["segment_id"], principal.location_ids
        )
        if segment is None:
            raise _invalid("recipients.segment_id", "no such segment")
    elif recipients["kind"] == "audience":
        audience = await audiences_repository.get_audience(
            session, principal.tenant_id, recipients["audience_id"], principal.location_ids
        )
        if audience is None:
            raise _invalid("recipients.audience_id", "no such audience")


# --- compose --------------------------------------------------------------------------------


async def _apply(
    session: AsyncSession,
    principal: Principal,
    campaign: Campaign,
    data: CampaignCreate | CampaignUpdate,
) -> None:
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "channels", "campaign_type", "location_ids"):
        if key in changes and changes[key] is None:
            raise _invalid(key, "cannot be null")
    if "name" in changes:
        campaign.name = changes["name"]
    if "channels" in changes:
        campaign.channels = sorted(set(changes["channels"]))
    if "campaign_type" in changes:
        campaign.campaign_type = changes["campaign_type"]
    if "scheduled_for" in changes:
        when = data.scheduled_for
        if when is not None and when.tzinfo is not None:
            raise _invalid(
                "scheduled_for", "a local date and time without an offset (the location's zone)"
            )
        campaign.scheduled_local = when
    if "sms" in changes:
        await _check_content(session, principal.tenant_id, data.sms, "sms")
        campaign.sms_content = data.sms.model_dump(mode="json") if data.sms else None
    if "email" in changes:
        await _check_content(session, principal.tenant_id, data.email, "email")
        campaign.email_content = data.email.model_dump(mode="json") if data.email else None
    if "recipients" in changes:
        recipients = data.recipients.model_dump(mode="json") if data.recipients else None
        await _check_recipients(session, principal, recipients)
        campaign.recipients = recipients
    if "location_ids" in changes or "channels" in changes:
        await _locations(session, principal, campaign.location_ids, campaign.channels)
    if "location_ids" in changes:
        campaign.location_ids = sorted(set(changes["location_ids"]))
        await _locations(session, principal, campaign.location_ids, campaign.channels)
    custom = (campaign.recipients or {}).get("kind") == "custom_list"
    if custom and len(campaign.location_ids) != 1:
        raise _invalid("location_ids", "a custom list needs exactly one location")


async def create_campaign(
    session: AsyncSession, principal: Principal, data: CampaignCreate, now: dt.datetime
) -> Campaign:
    campaign = Campaign(
        tenant_id=principal.tenant_id,
        id=new_id("campaign"),
        name=data.name,
        channels=[],
        campaign_type="instant",
        location_ids=[],
        status="draft",
        created_by=principal.id,
        send_round=0,
        created_at=now,
        updated_at=now,
    )
    await _apply(session, principal, campaign, data)
    session.add(campaign)
    await session.flush()
    return campaign


async def get_campaign(
    session: AsyncSession, principal: Principal, campaign_id: str, *, for_update: bool = False
) -> Campaign:
    campaign = await repository.get_campaign(
        session, principal.tenant_id, campaign_id, principal.location_ids, for_update=for_update
    )
    if campaign is None:
        raise NotFound(f"There is no campaign {campaign_id}.")
    return campaign


def _may_edit(principal: Principal, campaign: Campaign) -> None:
    if campaign.status == "draft" and campaign.created_by != principal.id:
        raise Forbidden("Only the user who saved this draft may edit it.")


async def update_campaign(
    session: AsyncSession,
    principal: Principal,
    campaign_id: str,
    data: CampaignUpdate,
    now: dt.datetime,
) -> Campaign:
    campaign = await get_campaign(session, principal, campaign_id, for_update=True)
    if campaign.status not in EDITABLE:
        raise Conflict(
            f"A {campaign.status} campaign cannot be edited; pause it first.",
        )
    _may_edit(principal, campaign)
    await _apply(session, principal, campaign, data)
    campaign.updated_at = now
    if campaign.status == "scheduled":
        # A new schedule (or new content) takes effect through a new start job; the old
        # one finds its token stale and does nothing.
        await _check_ready(session, principal, campaign)
        await _schedule_start(session, campaign, now)
    await session.flush()
    return campaign


async def delete_campaign(session: AsyncSession, principal: Principal, campaign_id: str) -> None:
    campaign = await get_campaign(session, principal, campaign_id, for_update=True)
    if campaign.status == "sending":
        raise Conflict("The campaign is sending; pause or cancel it before deleting it.")
    _may_edit(principal, campaign)
    await repository.delete_campaign(session, campaign)


async def duplicate_campaign(
    session: AsyncSession, principal: Principal, campaign_id: str, now: dt.datetime
) -> Campaign:
    """A draft copy with every parameter and the message contents, owned by the caller."""
    original = await get_campaign(session, principal, campaign_id)
    copy = Campaign(
        tenant_id=original.tenant_id,
        id=new_id("campaign"),
        name=f"Copy of {original.name}"[:200],
        channels=list(original.channels),
        campaign_type=original.campaign_type,
        scheduled_local=original.scheduled_local,
        location_ids=list(original.location_ids),
        sms_content=original.sms_content,
        email_content=original.email_content,
        recipients=original.recipients,
        status="draft",
        created_by=principal.id,
        send_round=0,
        created_at=now,
        updated_at=now,
    )
    session.add(copy)
    await session.flush()
    await repository.copy_campaign_rows(session, original.tenant_id, original.id, copy.id)
    return copy


async def list_campaigns(
    session: AsyncSession, principal: Principal, filters: CampaignFilters, page: PageParams
) -> tuple[list[Campaign], str | None]:
    filters = await _with_zone(session, principal, filters)
    rows = await repository.list_campaigns(
        session, principal.tenant_id, principal.location_ids, filters, page
    )
    items = rows[: page.limit]
    cursor = encode_cursor([items[-1].id]) if len(rows) > page.limit else None
    return items, cursor


async def _with_zone(
    session: AsyncSession, principal: Principal, filters: CampaignFilters
) -> CampaignFilters:
    """Send dates are the location's calendar dates (UTC without a location filter)."""
    if filters.location_id is None:
        return filters
    location = await tenancy_repository.get_location(
        session, principal.tenant_id, filters.location_id, principal.location_ids
    )
    if location is None:
        raise _invalid("location_id", f"no location {filters.location_id!r}")
    return CampaignFilters(**{**filters.__dict__, "time_zone": location.timezone})


async def campaign_counts(
    session: AsyncSession, principal: Principal, filters: CampaignFilters
) -> CampaignCounts:
    filters = await _with_zone(session, principal, filters)
    counts = await repository.status_counts(
        session, principal.tenant_id, principal.location_ids, filters
    )
    return CampaignCounts(
        active=counts.get("scheduled", 0) + counts.get("sending", 0),
        completed=counts.get("completed", 0),
        paused=counts.get("paused", 0),
        draft=counts.get("draft", 0),
    )


# --- recipients -----------------------------------------------------------------------------


async def count_recipients(
    session: AsyncSession, principal: Principal, data: RecipientCountRequest, now: dt.datetime
) -> RecipientCountOut:
    """How many patients the recipients would reach, while composing (nothing saved)."""
    locations = await _locations(session, principal, data.location_ids, data.channels)
    recipients = data.recipients.model_dump(mode="json")
    await _check_recipients(session, principal, recipients)
    source = await recipient_source(session, principal.tenant_id, None, recipients, locations, now)
    _, by_channel = await repository.recipient_counts(
        session, source, principal.tenant_id, "", list(data.channels)
    )
    return RecipientCountOut(
        count=sum(by_channel.values()), location_ids=[loc.id for loc in locations]
    )


async def campaign_source(
    session: AsyncSession, principal: Principal, campaign: Campaign, now: dt.datetime
) -> SourceQuery:
    if campaign.recipients is None:
        raise _invalid("recipients", "choose the recipients first")
    locations = await _locations(session, principal, campaign.location_ids, campaign.channels)
    return await recipient_source(
        session, principal.tenant_id, campaign, campaign.recipients, locations, now
    )


async def list_recipients(
    session: AsyncSession,
    principal: Principal,
    campaign_id: str,
    search: str | None,
    page: PageParams,
    now: dt.datetime,
) -> tuple[list[RecipientOut], str | None]:
    """The review step's recipient list: searchable by name or patient id, each with
    whether it is excluded."""
    campaign = await get_campaign(session, principal, campaign_id)
    source = await campaign_source(session, principal, campaign, now)
    after = str(decode_cursor(page.cursor, 1)[0]) if page.cursor else None
    rows = await repository.list_would_be_recipients(
        session, source, principal.tenant_id, campaign.id, campaign.channels, search, page, after
    )
    items = [
        RecipientOut(
            patient_id=r.patient_id,
            first_name=r.first_name,
            last_name=r.last_name,
            location_id=r.location_id,
            channel=r.channel,
            excluded=r.excluded,
        )
        for r in rows[: page.limit]
    ]
    cursor = encode_cursor([items[-1].patient_id]) if len(rows) > page.limit else None
    return items, cursor


async def set_exclusions(
    session: AsyncSession, principal: Principal, campaign_id: str, data: ExclusionsIn
) -> None:
    campaign = await get_campaign(session, principal, campaign_id, for_update=True)
    if campaign.status not in EDITABLE:
        raise Conflict(f"A {campaign.status} campaign's recipients cannot change.")
    _may_edit(principal, campaign)
    ids = sorted(set(data.patient_ids))
    known = await repository.existing_patients(
        session, principal.tenant_id, ids, campaign.location_ids
    )
    errors = [
        FieldError(field=f"patient_ids[{data.patient_ids.index(pid)}]", message="no such patient")
        for pid in ids
        if pid not in known
    ]
    if errors:
        raise ValidationProblem("Unknown patients.", errors=errors)
    await repository.set_exclusions(session, principal.tenant_id, campaign.id, ids, data.excluded)


# --- submit and the lifecycle ----------------------------------------------------------------


async def _check_ready(session: AsyncSession, principal: Principal, campaign: Campaign) -> None:
    """Everything a send needs, each missing piece named."""
    errors = []
    if not campaign.channels:
        errors.append(FieldError(field="channels", message="choose email and/or SMS"))
    if "sms" in campaign.channels and not campaign.sms_content:
        errors.append(FieldError(field="sms", message="compose the text message"))
    if "email" in campaign.channels and not campaign.email_content:
        errors.append(FieldError(field="email", message="compose the email"))
    if not campaign.location_ids:
        errors.append(FieldError(field="location_ids", message="choose at least one location"))
    if campaign.recipients is None:
        errors.append(FieldError(field="recipients", message="choose the recipients"))
    if campaign.campaign_type == "scheduled" and campaign.scheduled_local is None:
        errors.append(FieldError(field="scheduled_for", message="choose the date and time"))
    if errors:
        raise ValidationProblem("The campaign is not ready to send.", errors=errors)
    await _locations(session, principal, campaign.location_ids, campaign.channels)


async def _schedule_start(session: AsyncSession, campaign: Campaign, now: dt.datetime) -> None:
    """Record the start job (through the jobs outbox: nothing depends on Redis alone) at
    the first location's send time; a new token makes any older start job a no-op."""
    locations = await tenancy_repository.locations_by_ids(
        session, campaign.tenant_id, list(campaign.location_ids)
    )
    instants = schedule_instants(campaign, locations)
    if instants:
        send_at = min(instants.values())
        if send_at <= now:
            raise _invalid("scheduled_for", "the date and time has passed")
    else:
        send_at = now
    campaign.send_at = send_at
    campaign.start_token = new_id("job")
    await jobs.enqueue(
        session,
        START_TASK,
        tenant_id=campaign.tenant_id,
        args={
            "tenant_id": campaign.tenant_id,
            "campaign_id": campaign.id,
            "send_round": campaign.send_round,
            "token": campaign.start_token,
        },
        run_at=send_at,
        dedupe_key=f"campaign-start:{campaign.start_token}",
    )


async def submit_campaign(
    session: AsyncSession, principal: Principal, campaign_id: str, now: dt.datetime
) -> Campaign:
    """Draft (or completed: a resend) -> scheduled; the messages go at the scheduled time,
    or at once for an instant campaign."""
    campaign = await get_campaign(session, principal, campaign_id, for_update=True)
    if campaign.status not in ("draft", "completed"):
        raise Conflict(f"A {campaign.status} campaign cannot be submitted.")
    _may_edit(principal, campaign)
    await _check_ready(session, principal, campaign)
    campaign.send_round += 1
    await _schedule_start(session, campaign, now)
    campaign.status = "scheduled"
    campaign.submitted_at = now
    campaign.started_at = None
    campaign.completed_at = None
    campaign.updated_at = now
    await session.flush()
    return campaign


async def pause_campaign(
    session: AsyncSession, principal: Principal, campaign_id: str, now: dt.datetime
) -> Campaign:
    """Scheduled or sending -> paused: nothing more goes until it is resumed. Messages
    already queued are held in the send ledger; one being handed to the provider right
    now finishes (its row lock makes the hold wait for it)."""
    campaign = await get_campaign(session, principal, campaign_id, for_update=True)
    if campaign.status not in ("scheduled", "sending"):
        raise Conflict(f"Only a scheduled or sending campaign can be paused ({campaign.status}).")
    campaign.status = "paused"
    campaign.start_token = None if campaign.started_at is None else campaign.start_token
    campaign.updated_at = now
    if campaign.started_at is not None:
        await hold_source(session, campaign.tenant_id, "campaign", source_id(campaign))
    await session.flush()
    return campaign


async def resume_campaign(
    session: AsyncSession, principal: Principal, campaign_id: str, now: dt.datetime
) -> Campaign:
    """Paused -> scheduled (not started yet: at its time, or now if that has passed) or
    -> sending (held messages queued again, the remaining recipients sent)."""
    campaign = await get_campaign(session, principal, campaign_id, for_update=True)
    if campaign.status != "paused":
        raise Conflict(f"Only a paused campaign can be resumed ({campaign.status}).")
    campaign.updated_at = now
    if campaign.started_at is None:
        locations = await tenancy_repository.locations_by_ids(
            session, campaign.tenant_id, list(campaign.location_ids)
        )
        instants = schedule_instants(campaign, locations)
        if instants and min(instants.values()) <= now:
            # Its time passed while paused: it starts now (each location's messages at
            # its own time or now, whichever is later).
            campaign.campaign_type = "instant"
        await _schedule_start(session, campaign, now)
        campaign.status = "scheduled"
    else:
        campaign.status = "sending"
        await continue_sending(session, campaign)
    await session.flush()
    return campaign


async def cancel_campaign(
    session: AsyncSession, principal: Principal, campaign_id: str, now: dt.datetime
) -> Campaign:
    """Scheduled, sending or paused -> cancelled: messages not yet handed to a provider
    are suppressed (reason `campaign_cancelled`), already sent ones stay sent."""
    campaign = await get_campaign(session, principal, campaign_id, for_update=True)
    if campaign.status not in ("scheduled", "sending", "paused"):
        raise Conflict(f"A {campaign.status} campaign cannot be cancelled.")
    campaign.status = "cancelled"
    campaign.cancelled_at = now
    campaign.updated_at = now
    campaign.start_token = None
    if campaign.started_at is not None:
        await cancel_source(session, campaign.tenant_id, "campaign", source_id(campaign))
    await session.flush()
    return campaign


# --- custom lists ---------------------------------------------------------------------------

CUSTOM_LIST_COLUMNS = ("First Name", "Last Name", "Email", "Mobile")
MAX_LIST_ROWS = 50_000


def custom_list_template() -> str:
    """The CSV a practice fills in: one header line, an example row."""
    return ",".join(CUSTOM_LIST_COLUMNS) + "\r\nJordan,Rivera,jordan@example.com,+15125550100\r\n"


def _parse_list(content: bytes) -> list[dict[str, Any]]:
    """Rows of the uploaded CSV; 422 naming each bad line (the header is line 1)."""
    try:
        text_content = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _invalid("file", "the CSV must be UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text_content))
    headers = {h.strip().lower(): h for h in reader.fieldnames or []}
    missing = [c for c in CUSTOM_LIST_COLUMNS if c.lower() not in headers]
    if missing:
        raise _invalid("file", f"missing columns: {', '.join(missing)} (see the template)")
    rows: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for line, raw in enumerate(reader, start=2):
        if len(rows) >= MAX_LIST_ROWS:
            raise _invalid("file", f"at most {MAX_LIST_ROWS} rows")
        value = {c: (raw.get(headers[c.lower()]) or "").strip() for c in CUSTOM_LIST_COLUMNS}
        if not any(value.values()):
            continue
        if not value["First Name"] or not value["Last Name"]:
            errors.append(FieldError(field=f"row {line}", message="first and last name needed"))
            continue
        email = mobile = None
        try:
            email = normalize_email(value["Email"]) if value["Email"] else None
            mobile = normalize_phone(value["Mobile"]) if value["Mobile"] else None
        except ValueError as exc:
            errors.append(FieldError(field=f"row {line}", message=str(exc)))
            continue
        if email is None and mobile is None:
            errors.append(FieldError(field=f"row {line}", message="an email or a mobile needed"))
            continue
        rows.append(
            {
                "line": line,
                "first_name": value["First Name"][:100],
                "last_name": value["Last Name"][:100],
                "email": email,
                "mobile": mobile,
            }
        )
    if errors:
        raise ValidationProblem("The custom list has errors; nothing was saved.", errors=errors)
    return rows


async def upload_custom_list(
    session: AsyncSession,
    principal: Principal,
    campaign_id: str,
    file_name: str | None,
    content: bytes,
    now: dt.datetime,
) -> CustomListOut:
    """Replace the campaign's recipients with an uploaded list (exactly one location).
    Each row is matched to a patient of that location by name and email or mobile;
    rows that match nobody are reported and not sent."""
    campaign = await get_campaign(session, principal, campaign_id, for_update=True)
    if campaign.status not in EDITABLE:
        raise Conflict(f"A {campaign.status} campaign's recipients cannot change.")
    _may_edit(principal, campaign)
    if len(campaign.location_ids) != 1:
        raise _invalid("location_ids", "a custom list needs exactly one location")
    location_id = campaign.location_ids[0]
    rows = _parse_list(content)
    unmatched = []
    for row in rows:
        row["patient_id"] = await repository.match_patient(
            session,
            principal.tenant_id,
            location_id,
            row["first_name"],
            row["last_name"],
            row["email"],
            row["mobile"],
        )
        if row["patient_id"] is None:
            unmatched.append(row["line"])
        row |= {"tenant_id": principal.tenant_id, "campaign_id": campaign.id}
    await repository.replace_list(session, principal.tenant_id, campaign.id, rows)
    campaign.recipients = CustomListRecipients(
        kind="custom_list",
        file_name=(file_name or "")[:300] or None,
        rows=len(rows),
        matched=len(rows) - len(unmatched),
    ).model_dump(mode="json")
    campaign.updated_at = now
    await session.flush()
    return CustomListOut(
        rows=len(rows), matched=len(rows) - len(unmatched), unmatched_lines=unmatched
    )


async def campaign_summary(
    session: AsyncSession, principal: Principal, campaign_id: str, now: dt.datetime
) -> CampaignSummary:
    """The review step: the campaign, its recipient count after exclusions (by channel)."""
    campaign = await get_campaign(session, principal, campaign_id)
    source = await campaign_source(session, principal, campaign, now)
    excluded, by_channel = await repository.recipient_counts(
        session, source, principal.tenant_id, campaign.id, list(campaign.channels)
    )
    return CampaignSummary(
        campaign=campaign_out(campaign),
        total_recipients=sum(by_channel.values()),
        excluded=excluded,
        by_channel=by_channel,
    )
