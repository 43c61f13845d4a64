"""Campaign sends end to end: through the jobs outbox, the send ledger, the local SMTP
server and the Twilio stand-in; with STOP mid-campaign, pause/resume mid-send, jobs run
twice, quiet hours and frequency caps."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import select, text

from api.campaigns.models import Campaign, CampaignRecipient
from api.core import statistics
from api.core.db import unit_of_work
from api.core.infra_models import Job
from api.messaging import batch
from api.messaging import repository as messaging_repository
from api.messaging.batch import deliver_batch
from api.messaging.models import Message
from api.messaging.throttle import key_for
from api.practice.models import CommunicationLog, OptOut, Writeback
from tests.campaigns.conftest import EMAIL, create_and_submit
from tests.messaging.support import event_types, rows

CHICAGO = ZoneInfo("America/Chicago")  # the practice's location


async def _patients(make_patient, practice, n: int, **fields):
    location = practice.locations[0]
    return [
        await make_patient(
            practice.tenant.id,
            location.id,
            first_name=f"Pat{i:03d}",
            mobile=f"+1512555{i:04d}",
            email=f"pat{i}@example.com",
            **fields,
        )
        for i in range(n)
    ]


async def test_both_channels_follow_preference_to_smtp_and_sms(
    client, providers, make_patient, campaign_jobs, smtp_server, twilio, sessions
):
    practice = providers
    texters = await _patients(make_patient, practice, 2, communication_preference="sms")
    readers = [
        await make_patient(
            practice.tenant.id,
            practice.locations[0].id,
            first_name="Riley",
            mobile="+15125559901",
            email="riley@example.com",
            communication_preference="email",
        )
    ]
    campaign = await create_and_submit(client, practice, channels=["sms", "email"], email=EMAIL)
    assert campaign["status"] == "scheduled" and campaign["send_round"] == 1
    await campaign_jobs.run_due()

    got = await client.get(f"/v1/campaigns/{campaign['id']}", headers=practice.headers)
    assert got.json()["status"] == "completed"
    _, mailbox = smtp_server
    assert [to for to, _ in mailbox.messages] == [["riley@example.com"]]
    assert sorted(s.form["To"] for s in twilio.sent) == sorted(p.mobile for p in texters)
    assert twilio.sent[0].form["Body"].startswith("Hi Pat00")

    results = await client.get(f"/v1/campaigns/{campaign['id']}/results", headers=practice.headers)
    channels = results.json()["channels"]
    assert channels["sms"]["recipients"] == 2 and channels["sms"]["sent"] == 2
    assert channels["email"]["recipients"] == 1
    assert channels["email"]["sent"] + channels["email"]["delivered"] == 1
    per_patient = await client.get(
        f"/v1/campaigns/{campaign['id']}/results/patients", headers=practice.headers
    )
    assert {(r["patient_id"], r["channel"]) for r in per_patient.json()["data"]} == {
        *((p.id, "sms") for p in texters),
        (readers[0].id, "email"),
    }
    # Each send left its trace: the communication log, a chart note, events.
    assert len(await rows(sessions, CommunicationLog)) == 3
    notes = await rows(sessions, Writeback, kind="chart_note")
    assert {n.payload["note"] for n in notes} == {
        "Campaign message sent by SMS",
        "Campaign message sent by email",
    }
    types = await event_types(sessions, practice.tenant.id)
    assert types.count("message.sent") == 3 and types.count("campaign.completed") == 1


async def test_stop_mid_campaign_and_a_job_run_twice_send_nothing_extra(
    client, providers, make_patient, campaign_jobs, twilio, sessions
):
    practice = providers
    patients = await _patients(make_patient, practice, 3)
    campaign = await create_and_submit(client, practice)
    # Start and record the messages, but do not deliver yet.
    await campaign_jobs.run_due(["campaigns.start", "campaigns.send_batch"])
    # The first patient texts STOP before their message leaves.
    async with unit_of_work(sessions, practice.tenant.id) as session:
        session.add(
            OptOut(
                tenant_id=practice.tenant.id,
                id="opt_stop_mid_campaign",
                location_id=practice.locations[0].id,
                external_id="sms-stop-1",
                patient_id=patients[0].id,
                channel="sms",
                opted_out_at=datetime.now(UTC),
                source="chairfill",
            )
        )
    # Every job that already ran is run again (a redelivered job): nothing happens twice.
    async with unit_of_work(sessions) as session:
        done = list((await session.execute(select(Job.id).where(Job.status == "done"))).scalars())
    for job_id in done:
        assert await campaign_jobs.run(job_id) is None
    await campaign_jobs.run_due()

    assert sorted(s.form["To"] for s in twilio.sent) == sorted(p.mobile for p in patients[1:])
    messages = await rows(sessions, Message)
    assert len(messages) == 3
    by_patient = {m.patient_id: m for m in messages}
    assert by_patient[patients[0].id].status == "suppressed"
    assert by_patient[patients[0].id].failure_reason == "opted_out"
    results = await client.get(
        f"/v1/campaigns/{campaign['id']}/results/patients?status=suppressed",
        headers=practice.headers,
    )
    assert [r["patient_id"] for r in results.json()["data"]] == [patients[0].id]


async def test_pause_mid_send_holds_and_resume_sends_the_rest_once(
    client, providers, make_patient, campaign_jobs, twilio, sessions, monkeypatch
):
    practice = providers
    monkeypatch.setattr("api.campaigns.sending.BATCH_SIZE", 2)
    monkeypatch.setattr("api.campaigns.sending.CHAINS", 1)
    monkeypatch.setattr("api.messaging.batch.BATCH_SIZE", 1)
    patients = await _patients(make_patient, practice, 5)
    campaign = await create_and_submit(client, practice)
    cid = campaign["id"]
    await campaign_jobs.run_due(["campaigns.start"])
    # One batch is recorded and one of its messages delivered, then the practice pauses.
    first_batch = await campaign_jobs.pending(["campaigns.send_batch"])
    await campaign_jobs.run(first_batch[0].id)
    sends = await campaign_jobs.pending(["messaging.send_batch"])
    await campaign_jobs.run(sends[0].id)
    paused = await client.post(f"/v1/campaigns/{cid}/pause", headers=practice.headers)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    await campaign_jobs.run_due()
    assert len(twilio.sent) == 1
    held = [m for m in await rows(sessions, Message) if m.status == "held"]
    assert len(held) == 1
    results = (await client.get(f"/v1/campaigns/{cid}/results", headers=practice.headers)).json()
    assert results["channels"]["sms"]["held"] == 1 and results["channels"]["sms"]["pending"] == 3

    resumed = await client.post(f"/v1/campaigns/{cid}/resume", headers=practice.headers)
    assert resumed.json()["status"] == "sending"
    # Resume twice is refused; nothing is queued twice.
    again = await client.post(f"/v1/campaigns/{cid}/resume", headers=practice.headers)
    assert again.status_code == 409
    await campaign_jobs.run_due()
    sent_to = [s.form["To"] for s in twilio.sent]
    assert sorted(sent_to) == sorted(p.mobile for p in patients)
    assert len(sent_to) == len(set(sent_to))
    final = await client.get(f"/v1/campaigns/{cid}", headers=practice.headers)
    assert final.json()["status"] == "completed"
    async with unit_of_work(sessions) as session:
        recipients = list((await session.execute(select(CampaignRecipient))).scalars())
    assert {r.status for r in recipients} == {"queued"} and len(recipients) == 5


async def test_quiet_hours_defer_to_the_local_morning(
    client, providers, make_patient, make_token, campaign_jobs, twilio, sessions
):
    practice = providers
    await _patients(make_patient, practice, 1)
    prefs = {"allow_clinical_sms": False, "quiet_hours": {"start": "21:00", "end": "08:00"}}
    put = await client.put("/v1/messaging/settings", json=prefs, headers=practice.headers)
    assert put.status_code == 200, put.text
    assert put.json()["quiet_hours"] == {"start": "21:00:00", "end": "08:00:00"}
    # 22:30 in Chicago (CST) on 2026-11-23: the text waits for 08:00 local = 14:00 UTC.
    evening = datetime(2026, 11, 24, 4, 30, tzinfo=UTC)
    with time_machine.travel(evening, tick=False):
        headers = {"Authorization": f"Bearer {await make_token(practice.tenant.id)}"}
        campaign = await create_and_submit(client, practice, headers=headers)
        await campaign_jobs.run_due()
        assert twilio.sent == []
        [message] = await rows(sessions, Message)
        assert message.status == "queued"
        assert message.deferred_until == datetime(2026, 11, 24, 14, tzinfo=UTC)
        status = await client.get(f"/v1/campaigns/{campaign['id']}", headers=headers)
        assert status.json()["status"] == "sending"
    with time_machine.travel(datetime(2026, 11, 24, 14, 0, 30, tzinfo=UTC), tick=False):
        await campaign_jobs.run_due()
        assert len(twilio.sent) == 1
        [campaign_row] = await rows(sessions, Campaign)
        assert campaign_row.status == "completed"


async def test_a_frequency_cap_spans_campaigns(
    client, providers, make_patient, make_token, campaign_jobs, twilio, sessions
):
    practice = providers
    [patient] = await _patients(make_patient, practice, 1)
    prefs = {
        "allow_clinical_sms": False,
        "frequency_caps": [{"channel": "sms", "limit": 1, "window_hours": 24}],
    }
    await client.put("/v1/messaging/settings", json=prefs, headers=practice.headers)
    first = await create_and_submit(client, practice, key="one")
    await campaign_jobs.run_due()
    second = await create_and_submit(client, practice, key="two", name="Second touch")
    await campaign_jobs.run_due()
    assert len(twilio.sent) == 1
    results = await client.get(f"/v1/campaigns/{second['id']}/results", headers=practice.headers)
    assert results.json()["channels"]["sms"]["frequency_capped"] == 1
    assert results.json()["status"] == "completed"
    # A day later the window has rolled: a resend of the first campaign goes out.
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=25), tick=False):
        headers = {"Authorization": f"Bearer {await make_token(practice.tenant.id)}"}
        edited = await client.patch(
            f"/v1/campaigns/{first['id']}", json={"name": "Resend"}, headers=headers
        )
        assert edited.status_code == 200
        resent = await client.post(
            f"/v1/campaigns/{first['id']}/submit", headers=headers | {"Idempotency-Key": "resend"}
        )
        assert resent.json()["send_round"] == 2
        await campaign_jobs.run_due()
    assert [s.form["To"] for s in twilio.sent] == [patient.mobile] * 2


async def test_scheduled_campaign_starts_at_each_locations_local_time(
    client, providers, make_patient, campaign_jobs, sessions
):
    practice = providers
    await _patients(make_patient, practice, 1)
    now = datetime.now(UTC)
    # 10:00 in Chicago two days from now, whichever of CST and CDT that day is in.
    day = (now.astimezone(CHICAGO) + timedelta(days=2)).date()
    send_at = datetime.combine(day, time(10), tzinfo=CHICAGO).astimezone(UTC)
    with time_machine.travel(now, tick=False):
        campaign = await create_and_submit(
            client,
            practice,
            campaign_type="scheduled",
            scheduled_for=f"{day.isoformat()}T10:00:00",
        )
        assert campaign["send_at"].startswith(send_at.strftime("%Y-%m-%dT%H:%M:%S"))
        assert await campaign_jobs.run_due() == 0
    async with unit_of_work(sessions) as session:
        [start] = (
            await session.execute(select(Job).where(Job.task == "campaigns.start"))
        ).scalars()
    assert start.run_at == send_at
    with time_machine.travel(send_at + timedelta(seconds=5), tick=False):
        await campaign_jobs.run_due()
        [campaign_row] = await rows(sessions, Campaign)
        assert campaign_row.status == "completed"


class _WorkerDied(Exception):
    """Stands for a worker killed after the providers took a batch, before it committed."""


async def test_a_batch_that_dies_after_the_provider_took_it_is_not_sent_again(
    client, providers, make_patient, campaign_jobs, twilio, sessions, settings
):
    practice = providers
    patients = await _patients(make_patient, practice, 3)
    campaign = await create_and_submit(client, practice)
    await campaign_jobs.run_due(["campaigns.start", "campaigns.send_batch"])
    [batch] = await campaign_jobs.pending(["messaging.send_batch"])
    try:
        async with unit_of_work(sessions, practice.tenant.id) as session:
            await deliver_batch(
                session,
                practice.tenant.id,
                batch.args["source_kind"],
                batch.args["source_id"],
                settings,
            )
            raise _WorkerDied
    except _WorkerDied:
        pass
    assert len(twilio.sent) == 3
    assert {m.status for m in await rows(sessions, Message)} == {"queued"}
    # The job runs again (the reconciler re-pushed it): the handoffs say the texts went.
    await campaign_jobs.run_due()
    assert sorted(s.form["To"] for s in twilio.sent) == sorted(p.mobile for p in patients)
    messages = await rows(sessions, Message)
    assert {m.status for m in messages} == {"sent"}
    assert all(m.provider_message_id for m in messages)
    assert len(await rows(sessions, CommunicationLog)) == 3
    [campaign_row] = await rows(sessions, Campaign)
    assert campaign_row.id == campaign["id"] and campaign_row.status == "completed"


async def test_a_batch_job_finding_every_send_lane_taken_comes_back_a_step_later(
    client, providers, make_patient, campaign_jobs, twilio, sessions, settings, monkeypatch
):
    """Batches of one source send at most SEND_LANES at a time; a job that finds them all
    taken sends nothing, locks none of its messages, and leaves one job for the next step."""
    monkeypatch.setattr(batch, "SEND_LANES", 1)
    practice = providers
    patients = await _patients(make_patient, practice, 3)
    await create_and_submit(client, practice)
    await campaign_jobs.run_due(["campaigns.start", "campaigns.send_batch"])
    [job] = await campaign_jobs.pending(["messaging.send_batch"])
    source = (practice.tenant.id, job.args["source_kind"], job.args["source_id"])
    now = datetime.now(UTC).replace(microsecond=250_000)
    async with unit_of_work(sessions, practice.tenant.id) as holder:
        # Another batch of the campaign is sending: it holds the only lane.
        assert await messaging_repository.take_send_lane(holder, *source, 1) == 0
        with time_machine.travel(now, tick=False):
            assert await campaign_jobs.run(job.id) == {
                "source_id": job.args["source_id"], "sent": 0, "waiting": "lanes"
            }  # fmt: skip
            # Another job finding the lane taken in the same second adds no second one.
            async with unit_of_work(sessions, practice.tenant.id) as session:
                await deliver_batch(session, *source, settings)
        [wake] = await campaign_jobs.pending(["messaging.send_batch"])
        step = batch.LANE_RETRY_SECONDS
        next_step = (int(now.timestamp()) // step + 1) * step
        assert wake.run_at == datetime.fromtimestamp(next_step, UTC)
        with time_machine.travel(wake.run_at, tick=False):
            await campaign_jobs.run(wake.id)
        [wake_again] = await campaign_jobs.pending(["messaging.send_batch"])
        assert wake_again.run_at == wake.run_at + timedelta(seconds=step)
        assert twilio.sent == []
        # None of the campaign's messages is locked by the jobs that found no lane.
        async with unit_of_work(sessions, practice.tenant.id) as session:
            free = await session.execute(select(Message.id).with_for_update(skip_locked=True))
            assert len(free.all()) == 3
    assert {m.status for m in await rows(sessions, Message)} == {"queued"}
    # The lane is free again: the next second's job sends the campaign (and the finish
    # watcher, a few seconds on, completes it).
    with time_machine.travel(wake_again.run_at, tick=False):
        await campaign_jobs.run_due()
    with time_machine.travel(wake_again.run_at + timedelta(seconds=30), tick=False):
        await campaign_jobs.run_due()
    assert sorted(s.form["To"] for s in twilio.sent) == sorted(p.mobile for p in patients)
    [campaign_row] = await rows(sessions, Campaign)
    assert campaign_row.status == "completed"


async def test_starting_and_recording_a_campaign_refreshes_stale_statistics(
    client, providers, make_patient, campaign_jobs, sessions, monkeypatch
):
    """Send batches update recipients and messages by key, planned from the tables'
    statistics: a campaign that made them stale has the tables analyzed (here, with the
    threshold lowered to a few rows)."""
    monkeypatch.setattr(statistics, "MIN_STALE_ROWS", 2)
    monkeypatch.setattr(statistics, "STALE_SHARE", 0.0)

    async def analyzed(table: str) -> int:
        async with unit_of_work(sessions) as session:
            count = await session.scalar(
                text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"),
                {"t": table},
            )
        return int(count or 0)

    before = {t: await analyzed(t) for t in ("campaign_recipients", "messages")}
    await _patients(make_patient, providers, 3)
    await create_and_submit(client, providers)
    await campaign_jobs.run_due(["campaigns.start", "campaigns.send_batch"])
    assert await analyzed("campaign_recipients") > before["campaign_recipients"]
    assert await analyzed("messages") > before["messages"]


async def test_a_throttled_campaign_still_sends_everything(
    client, providers, make_patient, campaign_jobs, twilio, sessions, redis
):
    """The practice's SMS rate holds the campaign back; nothing is dropped for it."""
    practice = providers
    patients = await _patients(make_patient, practice, 8)
    prefs = {"allow_clinical_sms": False, "send_rates": [{"channel": "sms", "per_second": 40}]}
    saved = await client.put("/v1/messaging/settings", json=prefs, headers=practice.headers)
    assert saved.status_code == 200, saved.text
    campaign = await create_and_submit(client, practice)
    await campaign_jobs.run_due()

    assert sorted(s.form["To"] for s in twilio.sent) == sorted(p.mobile for p in patients)
    assert {m.status for m in await rows(sessions, Message)} == {"sent"}
    got = await client.get(f"/v1/campaigns/{campaign['id']}", headers=practice.headers)
    assert got.json()["status"] == "completed"
    # The sends went through the practice's shared (Redis) rate, not around it.
    assert await redis.exists(key_for(practice.tenant.id, "sms"))


async def test_chains_lost_with_a_killed_worker_are_picked_up_by_the_watcher(
    client, providers, make_patient, campaign_jobs, twilio, sessions
):
    """Both chains' jobs die with their worker before recording anyone (arq would hand
    them out again only when its lease lapses): the campaign's watcher sees no progress
    between two looks and starts a new link, and everyone gets their text once."""
    practice = providers
    patients = await _patients(make_patient, practice, 3)
    campaign = await create_and_submit(client, practice)
    await campaign_jobs.run_due(["campaigns.start"])
    chains = await campaign_jobs.pending(["campaigns.send_batch"])
    assert len(chains) == 2
    async with unit_of_work(sessions) as session:
        for job in await session.scalars(select(Job).where(Job.id.in_([j.id for j in chains]))):
            job.status = "done"  # gone with the worker: nobody runs them
    for look in (1, 2):
        [watcher] = await campaign_jobs.pending(["campaigns.finish"])
        result = await campaign_jobs.run(watcher.id)
        assert result["pending"] == 3, look
    # The second look saw the same 3 pending: a new link is due now.
    assert len(await campaign_jobs.pending(["campaigns.send_batch"])) == 1
    await campaign_jobs.run_due(["campaigns.send_batch", "messaging.send_batch"])
    assert sorted(s.form["To"] for s in twilio.sent) == sorted(p.mobile for p in patients)
    # The watcher (and the link's own finish) close the campaign.
    outcomes = [await campaign_jobs.run(j.id) for j in await campaign_jobs.pending()]
    assert any(o and o.get("completed") for o in outcomes)
    got = await client.get(f"/v1/campaigns/{campaign['id']}", headers=practice.headers)
    assert got.json()["status"] == "completed"
