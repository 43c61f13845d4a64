"""The practice's do-not-contact list stops marketing sends (campaigns, cadences) at the
ledger and again at send time, one at a time or in batches; a booking confirmation still
goes."""

from __future__ import annotations

from sqlalchemy import select

from api.core.db import unit_of_work
from api.messaging.batch import Recipient, record_many
from api.messaging.models import Message
from api.messaging.sending import MessageSource
from tests.messaging.support import SMS, send


async def test_listed_numbers_get_no_marketing(client, practice, sessions, settings, make_patient):
    tenant, main = practice.tenant.id, practice.locations[0].id
    listed = await make_patient(tenant, main, mobile="+15125550141", email="l@example.com")
    other = await make_patient(tenant, main, mobile="+15125550142", email="o@example.com")
    by_email = await make_patient(tenant, main, mobile="+15125550143", email="Keep.Out@Example.com")
    for entry in ({"phone": "(512) 555-0141"}, {"email": "keep.out@example.com"}):
        added = await client.post("/v1/do-not-contact", json=entry, headers=practice.headers)
        assert added.status_code == 201, added.text

    one = await send(sessions, settings, tenant, main, listed.id, source=("campaign", "cmp_1"))
    assert (one.message.status, one.message.failure_reason) == ("suppressed", "do_not_contact")
    ok = await send(sessions, settings, tenant, main, other.id, source=("campaign", "cmp_1"))
    assert ok.message.status == "queued"
    # Answers the patient asked for still go.
    booking = await send(sessions, settings, tenant, main, listed.id, source=("booking", "hld_1"))
    assert booking.message.status == "queued"

    async with unit_of_work(sessions, tenant) as session:
        recorded = await record_many(
            session,
            tenant_id=tenant,
            source=MessageSource("cadence", "enr_1:1"),
            recipients=[Recipient(main, p.id, SMS) for p in (listed, other, by_email)],
            settings=settings,
        )
    assert [r.message_id is not None for r in recorded] == [True, True, True]
    async with unit_of_work(sessions, tenant) as session:
        rows = {
            m.patient_id: (m.status, m.failure_reason)
            for m in (
                await session.execute(select(Message).where(Message.source_kind == "cadence"))
            ).scalars()
        }
    assert rows == {
        listed.id: ("suppressed", "do_not_contact"),
        other.id: ("queued", None),
        by_email.id: ("suppressed", "do_not_contact"),
    }


async def test_a_number_listed_after_queueing_is_stopped_at_send_time(
    client, practice, sessions, settings, make_patient, send_jobs
):
    tenant, main = practice.tenant.id, practice.locations[0].id
    patient = await make_patient(tenant, main, mobile="+15125550151")
    queued = await send(sessions, settings, tenant, main, patient.id, source=("cadence", "e:1"))
    assert queued.message.status == "queued"
    added = await client.post(
        "/v1/do-not-contact", json={"patient_id": patient.id}, headers=practice.headers
    )
    assert added.status_code == 201, added.text
    await send_jobs.run_due()
    async with unit_of_work(sessions, tenant) as session:
        message = (await session.execute(select(Message))).scalar_one()
    assert (message.status, message.failure_reason) == ("suppressed", "do_not_contact")
