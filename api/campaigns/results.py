"""What happened to a campaign's send, per patient and channel: queued, held, sent,
delivered, failed (with the reason), suppressed (opt-out, consent, frequency cap), and
whether the patient replied or opted out afterwards."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.campaigns import repository
from api.campaigns.schemas import CampaignResults, ChannelResults, PatientResultOut
from api.campaigns.service import get_campaign
from api.core.pagination import PageParams, decode_cursor, encode_cursor

_STATUSES = ("pending", "queued", "held", "sent", "delivered", "failed", "suppressed")


async def campaign_results(
    session: AsyncSession, principal: Principal, campaign_id: str, send_round: int | None
) -> CampaignResults:
    campaign = await get_campaign(session, principal, campaign_id)
    number = campaign.send_round if send_round is None else send_round
    rows = await repository.result_counts(session, principal.tenant_id, campaign.id, number)
    tallies: dict[str, dict[str, int]] = {
        channel: {"recipients": 0, "frequency_capped": 0, "replied": 0, "opted_out": 0}
        | dict.fromkeys(_STATUSES, 0)
        for channel in campaign.channels
    }
    for row in rows:
        tally = tallies.setdefault(
            row.channel,
            {"recipients": 0, "frequency_capped": 0, "replied": 0, "opted_out": 0}
            | dict.fromkeys(_STATUSES, 0),
        )
        n = int(row.n)
        tally["recipients"] += n
        tally[row.status] += n
        tally["frequency_capped"] += n if row.capped else 0
        tally["replied"] += n if row.replied else 0
        tally["opted_out"] += n if row.opted_out else 0
    return CampaignResults(
        campaign_id=campaign.id,
        status=campaign.status,
        send_round=number,
        channels={c: ChannelResults(**t) for c, t in tallies.items()},
    )


async def patient_results(
    session: AsyncSession,
    principal: Principal,
    campaign_id: str,
    send_round: int | None,
    status: str | None,
    page: PageParams,
) -> tuple[list[PatientResultOut], str | None]:
    campaign = await get_campaign(session, principal, campaign_id)
    number = campaign.send_round if send_round is None else send_round
    after = str(decode_cursor(page.cursor, 1)[0]) if page.cursor else None
    rows = await repository.patient_results(
        session, principal.tenant_id, campaign.id, number, page, after, status
    )
    items = [
        PatientResultOut(
            patient_id=r.patient_id,
            first_name=r.first_name,
            last_name=r.last_name,
            location_id=r.location_id,
            channel=r.channel,
            status=r.status,
            failure_reason=r.failure_reason,
            message_id=r.message_id,
            sent_at=r.sent_at,
            delivered_at=r.delivered_at,
            replied=bool(r.replied),
            opted_out=bool(r.opted_out),
        )
        for r in rows[: page.limit]
    ]
    cursor = encode_cursor([items[-1].patient_id]) if len(rows) > page.limit else None
    return items, cursor
