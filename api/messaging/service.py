"""Plain operations of the messaging API: previews, the ledger and sandbox reads, tenant
preferences. Sending lives in sending.py, replies in inbound.py."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.core.clock import utcnow
from api.core.errors import NotFound
from api.core.pagination import PageParams, page_of
from api.core.settings import Settings
from api.engines import templates as engine
from api.messaging import repository, templates
from api.messaging.models import Message, MessagingPreferences, SandboxMessage
from api.messaging.schemas import (
    EmailPreview,
    FrequencyCap,
    PreferencesIn,
    PreferencesOut,
    PreviewOut,
    PreviewRequest,
    QuietHoursIn,
    SendRate,
    SendRequest,
    SmsPreview,
    VariableOut,
)
from api.messaging.sending import MessageSource, SendOutcome, send_message
from api.messaging.unsubscribe import UnsubscribeTarget, unsubscribe_url


def list_variables() -> list[VariableOut]:
    return [
        VariableOut(name=v.name, description=v.description, clinical=v.clinical, sample=v.sample)
        for v in engine.VARIABLES.values()
    ]


async def allow_clinical_sms(session: AsyncSession, tenant_id: str) -> bool:
    preferences = await repository.preferences(session, tenant_id)
    return bool(preferences and preferences.allow_clinical_sms)


async def preview(
    session: AsyncSession, principal: Principal, request: PreviewRequest, settings: Settings
) -> PreviewOut:
    """Render for a patient of the caller's tenant (or the built-in sample): nothing is
    saved or sent. The same checks as a send: unknown or refused variables are a 422."""
    tenant_id = principal.tenant_id
    content = request.content
    used = templates.check(content, await allow_clinical_sms(session, tenant_id))
    patient = None
    if request.patient_id is not None:
        patient = await repository.get_patient(session, tenant_id, request.patient_id)
        if patient is None or not principal.can_see_location(patient.location_id):
            raise NotFound(f"There is no patient {request.patient_id}.")
    location_id = request.location_id or (patient.location_id if patient else None)
    if location_id is not None:
        location = await repository.get_location(session, tenant_id, location_id)
        if location is None or not principal.can_see_location(location_id):
            raise NotFound(f"There is no location {location_id}.")
    else:
        location = await repository.first_location(session, tenant_id, principal.location_ids)
    values = templates.sample_values(location, settings)
    if patient is not None and location is not None:
        values |= await templates.patient_values(session, patient, location, used)
    footer = None
    if content.channel == "email":
        target = UnsubscribeTarget(tenant_id, patient.id if patient else "sample", "email")
        url = unsubscribe_url(settings, target)
        footer = (
            templates.footer_for(location, url)
            if location
            else engine.Footer(lines=(), unsubscribe_url=url)
        )
    rendered = templates.render(content, values, used, footer)
    out = PreviewOut(
        channel=content.channel,
        sample_patient=patient is None,
        variables_used=rendered.variables_used,
    )
    if rendered.sms is not None:
        out.sms = SmsPreview(
            text=rendered.text,
            characters=rendered.sms.characters,
            max_characters=engine.SMS_MAX_CHARACTERS,
            encoding=rendered.sms.encoding,
            segments=rendered.sms.segments,
            non_gsm_characters=list(rendered.sms.non_gsm_characters),
        )
    else:
        out.email = EmailPreview(
            subject=rendered.subject or "", html=rendered.html or "", text=rendered.text
        )
    return out


async def send_manual(
    session: AsyncSession,
    principal: Principal,
    request: SendRequest,
    settings: Settings,
    source_id: str,
) -> SendOutcome:
    if not principal.can_see_location(request.location_id):
        raise NotFound(f"There is no location {request.location_id}.")
    return await send_message(
        session,
        tenant_id=principal.tenant_id,
        location_id=request.location_id,
        patient_id=request.patient_id,
        content=request.content,
        source=MessageSource("manual", source_id),
        settings=settings,
        purpose=request.purpose,
    )


async def list_messages(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    filters: dict[str, str | None],
) -> tuple[list[Message], str | None]:
    rows = await repository.list_messages(
        session, principal.tenant_id, principal.location_ids, page, filters
    )
    return page_of(rows, ["id"], page)


async def get_message(session: AsyncSession, principal: Principal, message_id: str) -> Message:
    message = await repository.get_message(
        session, principal.tenant_id, message_id, principal.location_ids
    )
    if message is None:
        raise NotFound(f"There is no message {message_id}.")
    return message


async def list_sandbox(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    channel: str | None,
    to_address: str | None,
) -> tuple[list[SandboxMessage], str | None]:
    rows = await repository.list_sandbox(session, principal.tenant_id, page, channel, to_address)
    return page_of(rows, ["id"], page)


def _preferences_out(row: MessagingPreferences | None) -> PreferencesOut:
    if row is None:
        return PreferencesOut(allow_clinical_sms=False, updated_at=None)
    quiet = None
    if row.quiet_hours_start is not None and row.quiet_hours_end is not None:
        quiet = QuietHoursIn(start=row.quiet_hours_start, end=row.quiet_hours_end)
    return PreferencesOut(
        allow_clinical_sms=row.allow_clinical_sms,
        frequency_caps=[FrequencyCap.model_validate(c) for c in row.frequency_caps or []],
        quiet_hours=quiet,
        send_rates=[SendRate.model_validate(r) for r in row.send_rates or []],
        updated_at=row.updated_at,
    )


async def get_preferences(session: AsyncSession, tenant_id: str) -> PreferencesOut:
    return _preferences_out(await repository.preferences(session, tenant_id))


async def put_preferences(
    session: AsyncSession, tenant_id: str, data: PreferencesIn
) -> PreferencesOut:
    row = await repository.preferences(session, tenant_id)
    if row is None:
        row = MessagingPreferences(tenant_id=tenant_id)
        session.add(row)
    row.allow_clinical_sms = data.allow_clinical_sms
    row.frequency_caps = [c.model_dump() for c in data.frequency_caps]
    row.quiet_hours_start = data.quiet_hours.start if data.quiet_hours else None
    row.quiet_hours_end = data.quiet_hours.end if data.quiet_hours else None
    row.send_rates = [r.model_dump() for r in data.send_rates]
    row.updated_at = utcnow()
    await session.flush()
    return _preferences_out(row)
