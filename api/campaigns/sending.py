"""Sending a campaign, as jobs (each one transaction, run by the job runner):

* `campaigns.start` (at the send time, from the jobs outbox): snapshot this round's
  recipients in SQL into `campaign_recipients`, mark the campaign sending, start the
  batch chains;
* `campaigns.send_batch`: claim up to BATCH_SIZE pending recipients (FOR UPDATE SKIP
  LOCKED, so chains and workers never share one), record their messages in the send
  ledger (api.messaging.batch.record_many: keyed (campaign round, patient, channel), so a
  job run twice finds the messages and records nothing new), enqueue the next batch; the
  messages go out through `messaging.send_batch` jobs (opt-outs, quiet hours and caps
  re-checked there, at send time);
* `campaigns.finish`: once no recipient is pending and no message queued or held, the
  campaign is completed (`campaign.completed`).

The recipient row and its message are written in the same transaction, so a killed
worker leaves either both or neither; the reconciler re-pushes the job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.campaigns import repository
from api.campaigns.models import Campaign
from api.campaigns.recipients import recipient_source
from api.core import jobs, statistics
from api.core.clock import utcnow
from api.core.settings import Settings
from api.engines.quiet_hours import wall_clock_instant
from api.events import record_event
from api.messaging.batch import Recipient, record_many, release_held, sweep_due
from api.messaging.schemas import EmailContent, SmsContent
from api.messaging.sending import MessageSource
from api.tenancy import repository as tenancy_repository
from api.tenancy.models import Location

BATCH_TASK = "campaigns.send_batch"
FINISH_TASK = "campaigns.finish"
BATCH_SIZE = 500
# Batch chains per campaign: workers (and their connections) share a campaign's work.
CHAINS = 2
# How soon a finish job looks again while messages are still queued.
FINISH_POLL = timedelta(seconds=5)


def source_id(campaign: Campaign, send_round: int | None = None) -> str:
    """The send ledger's source id of a round: each resend is a new key, so a patient may
    get the resent campaign, but never one round twice."""
    number = campaign.send_round if send_round is None else send_round
    return campaign.id if number <= 1 else f"{campaign.id}.r{number}"


def schedule_instants(campaign: Campaign, locations: Sequence[Location]) -> dict[str, dt.datetime]:
    """Each location's send instant: the campaign's local date and time in its own zone."""
    if campaign.campaign_type != "scheduled" or campaign.scheduled_local is None:
        return {}
    return {loc.id: wall_clock_instant(campaign.scheduled_local, loc.timezone) for loc in locations}


def _args(campaign: Campaign) -> dict[str, Any]:
    return {
        "tenant_id": campaign.tenant_id,
        "campaign_id": campaign.id,
        "send_round": campaign.send_round,
    }


async def _start_chains(session: AsyncSession, campaign: Campaign, now: dt.datetime) -> None:
    for _ in range(CHAINS):
        await jobs.enqueue(
            session, BATCH_TASK, tenant_id=campaign.tenant_id, args=_args(campaign), run_at=now
        )


async def _enqueue_finish(session: AsyncSession, campaign: Campaign, at: dt.datetime) -> None:
    await jobs.enqueue(
        session, FINISH_TASK, tenant_id=campaign.tenant_id, args=_args(campaign), run_at=at
    )


async def continue_sending(session: AsyncSession, campaign: Campaign) -> None:
    """A resumed campaign: its held messages queue again and the chains pick up the
    recipients not yet sent."""
    now = utcnow()
    await release_held(session, campaign.tenant_id, "campaign", source_id(campaign))
    if await repository.has_pending(session, campaign.tenant_id, campaign.id, campaign.send_round):
        await _start_chains(session, campaign, now)
    await _enqueue_finish(session, campaign, now + FINISH_POLL)


async def _campaign(
    session: AsyncSession, args: dict[str, Any], *, for_update: bool = False
) -> Campaign | None:
    campaign = await repository.get_campaign(
        session,
        args["tenant_id"],
        args["campaign_id"],
        None,
        for_update=for_update,
        shared=not for_update,
    )
    if campaign is None or campaign.send_round != args["send_round"]:
        return None
    return campaign


async def start_campaign(session: AsyncSession, args: dict[str, Any]) -> dict[str, Any]:
    campaign = await _campaign(session, args, for_update=True)
    if campaign is None or campaign.status != "scheduled":
        return {"skipped": campaign.status if campaign else "missing"}
    if campaign.start_token != args["token"]:
        return {"skipped": "rescheduled"}
    now = utcnow()
    locations = await tenancy_repository.locations_by_ids(
        session, campaign.tenant_id, list(campaign.location_ids)
    )
    source = await recipient_source(
        session, campaign.tenant_id, campaign, campaign.recipients or {}, locations, now
    )
    added = await repository.snapshot_recipients(
        session, source, campaign.tenant_id, campaign.id, campaign.send_round, campaign.channels
    )
    campaign.status = "sending"
    campaign.started_at = now
    campaign.updated_at = now
    await _start_chains(session, campaign, now)
    # A watcher from the start: if every chain's job dies with a killed worker, nothing
    # else would notice before arq's lease on those jobs lapses (job_timeout).
    await _enqueue_finish(session, campaign, now + FINISH_POLL)
    # Each recorded batch's recipients are updated by key (api/core/statistics.py).
    await statistics.refresh_when_stale(session, "campaign_recipients", added)
    return {"campaign_id": campaign.id, "recipients": added}


async def send_batch(
    session: AsyncSession, args: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    # A shared lock: pausing (which takes the row exclusively) waits for this batch, then
    # holds the messages it queued.
    campaign = await _campaign(session, args)
    if campaign is None or campaign.status != "sending":
        return {"skipped": campaign.status if campaign else "missing"}
    recipients = await repository.claim_pending(
        session, campaign.tenant_id, campaign.id, campaign.send_round, BATCH_SIZE
    )
    locations = await tenancy_repository.locations_by_ids(
        session, campaign.tenant_id, list(campaign.location_ids)
    )
    instants = schedule_instants(campaign, locations)
    contents: dict[str, SmsContent | EmailContent] = {}
    if campaign.sms_content:
        contents["sms"] = SmsContent.model_validate(campaign.sms_content)
    if campaign.email_content:
        contents["email"] = EmailContent.model_validate(campaign.email_content)
    # Recorded in the send ledger in one go; the recipient rows and their messages commit
    # together, so a batch run twice finds both and records nothing new.
    outcomes = await record_many(
        session,
        tenant_id=campaign.tenant_id,
        source=MessageSource("campaign", source_id(campaign)),
        recipients=[
            Recipient(
                location_id=r.location_id,
                patient_id=r.patient_id,
                content=contents[r.channel],
                not_before=instants.get(r.location_id),
            )
            for r in recipients
        ],
        settings=settings,
        purpose="marketing",
    )
    await repository.mark_recipients(
        session,
        campaign.tenant_id,
        campaign.id,
        campaign.send_round,
        [
            # A message that cannot be made for this patient (e.g. too long once filled
            # in) does not stop the others; the results say why.
            (o.patient_id, "queued" if o.message_id else "unsendable", o.message_id, o.problem)
            for o in outcomes
        ],
    )
    unsendable = sum(1 for o in outcomes if o.message_id is None)
    now = utcnow()
    if len(recipients) == BATCH_SIZE:
        await jobs.enqueue(
            session, BATCH_TASK, tenant_id=campaign.tenant_id, args=_args(campaign), run_at=now
        )
    else:
        await _enqueue_finish(session, campaign, now)
    return {"campaign_id": campaign.id, "queued": len(recipients) - unsendable}


async def finish_campaign(session: AsyncSession, args: dict[str, Any]) -> dict[str, Any]:
    campaign = await _campaign(session, args, for_update=True)
    if campaign is None or campaign.status != "sending":
        return {"skipped": campaign.status if campaign else "missing"}
    pending = await repository.pending_count(
        session, campaign.tenant_id, campaign.id, campaign.send_round
    )
    now = utcnow()
    if pending:
        if args.get("pending") == pending:
            # No batch took a recipient since the last look: the chains' jobs went with
            # a killed worker (arq hands them out again only when its lease lapses). A
            # new link picks up; should a chain be alive after all, it only shares the
            # work (claims skip what another holds).
            await jobs.enqueue(
                session, BATCH_TASK, tenant_id=campaign.tenant_id, args=_args(campaign), run_at=now
            )
        await jobs.enqueue(
            session,
            FINISH_TASK,
            tenant_id=campaign.tenant_id,
            args=_args(campaign) | {"pending": pending},
            run_at=now + FINISH_POLL,
        )
        return {"campaign_id": campaign.id, "waiting": "recipients", "pending": pending}
    unfinished, latest = await repository.unfinished_messages(
        session, campaign.tenant_id, source_id(campaign)
    )
    if unfinished:
        # Messages still queued (deferred to a scheduled time or past quiet hours): look
        # again once they are due, and sweep what is due now, so a batch job lost with a
        # killed worker never leaves messages stranded.
        await _enqueue_finish(session, campaign, max(latest or now, now) + FINISH_POLL)
        await sweep_due(session, campaign.tenant_id, "campaign", source_id(campaign))
        return {"campaign_id": campaign.id, "waiting": unfinished}
    campaign.status = "completed"
    campaign.completed_at = now
    campaign.updated_at = now
    counts = await repository.result_counts(
        session, campaign.tenant_id, campaign.id, campaign.send_round
    )
    totals: dict[str, int] = {}
    for row in counts:
        totals[row.status] = totals.get(row.status, 0) + int(row.n)
    await record_event(
        session,
        tenant_id=campaign.tenant_id,
        type="campaign.completed",
        location_id=campaign.location_ids[0] if len(campaign.location_ids) == 1 else None,
        occurred_at=now,
        data={
            "campaign_id": campaign.id,
            "name": campaign.name,
            "send_round": campaign.send_round,
            "location_ids": list(campaign.location_ids),
            "channels": list(campaign.channels),
            "recipients": sum(totals.values()),
            "sent": totals.get("sent", 0) + totals.get("delivered", 0),
            "delivered": totals.get("delivered", 0),
            "failed": totals.get("failed", 0),
            "suppressed": totals.get("suppressed", 0),
            "completed_at": now.isoformat(),
        },
    )
    return {"campaign_id": campaign.id, "completed": True}
