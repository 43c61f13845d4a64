"""The daily reconciliation report: online bookings, written back, failed, exceptions,
in the location's time zone; and the daily job that stores it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from api.booking.report import enqueue_daily_reports
from api.core.clock import utcnow
from api.core.db import unit_of_work
from tests.booking.conftest import confirm, hold, push
from workers.runner import run_job


async def test_report_counts_bookings_write_backs_and_exceptions(
    client, mirror, sessions, worker_context
):
    for hour in (9, 11, 13):
        held = await hold(
            client,
            mirror.headers,
            mirror.location_id,
            mirror.types["exam"],
            mirror.at(hour),
            provider_id=mirror.providers["dr"],
        )
        assert held.status_code == 201, held.text
        if hour == 13:
            for external in ("d1", "d2"):
                await push(
                    sessions,
                    mirror.tenant_id,
                    mirror.location_id,
                    "patients",
                    [
                        {
                            "external_id": external,
                            "first_name": "Maria",
                            "last_name": "Rivera",
                            "birthdate": "1985-04-12",
                            "status": "active",
                            "mobile": "+15125550100",
                        }
                    ],
                )
        done = await confirm(client, mirror.headers, held.json()["id"])
        assert done.status_code in (200, 202), done.text

    claimed = await client.post(
        "/v1/sync/writebacks/claim",
        json={"location_id": mirror.location_id},
        headers=mirror.headers,
    )
    items = claimed.json()["data"]
    assert len(items) == 2
    lease = claimed.json()["lease_id"]
    ok = await client.post(
        f"/v1/sync/writebacks/{items[0]['id']}/ack",
        json={"lease_id": lease, "outcome": "succeeded", "pms_id": "4711"},
        headers=mirror.headers,
    )
    assert ok.status_code == 200, ok.text
    refused = await client.post(
        f"/v1/sync/writebacks/{items[1]['id']}/ack",
        json={"lease_id": lease, "outcome": "failed", "reason": "operatory closed"},
        headers=mirror.headers,
    )
    assert refused.status_code == 200, refused.text

    today = datetime.now(ZoneInfo("America/Chicago")).date()
    response = await client.get(
        f"/v1/locations/{mirror.location_id}/booking-report",
        params={"date": today.isoformat()},
        headers=mirror.headers,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["time_zone"] == "America/Chicago"
    assert (report["online_bookings"], report["written_back"], report["failed"]) == (2, 1, 1)
    assert (report["pending"], report["exceptions"]) == (0, 1)
    assert {i["outcome"] for i in report["items"]} == {"booked", "exception"}
    other_day = await client.get(
        f"/v1/locations/{mirror.location_id}/booking-report",
        params={"date": (today - timedelta(days=1)).isoformat()},
        headers=mirror.headers,
    )
    assert other_day.json()["online_bookings"] == 0
    bad = await client.get(
        f"/v1/locations/{mirror.location_id}/booking-report",
        params={"date": "yesterday"},
        headers=mirror.headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "date"

    # The nightly fan-out after the local day ended: one job per location, once.
    tomorrow = utcnow() + timedelta(days=1)
    async with unit_of_work(sessions) as session:
        assert await enqueue_daily_reports(session, tomorrow) == 2
    async with unit_of_work(sessions) as session:
        assert await enqueue_daily_reports(session, tomorrow) == 0
        job_id = (
            await session.execute(
                text(
                    "SELECT id FROM jobs WHERE task = 'booking.daily_report' "
                    "AND args->>'location_id' = :l"
                ),
                {"l": mirror.location_id},
            )
        ).scalar_one()
    await run_job({"chairfill": worker_context}, job_id)
    async with sessions() as session:
        stored = (
            await session.execute(
                text(
                    "SELECT report FROM booking_daily_reports "
                    "WHERE location_id = :l AND report_date = :d"
                ),
                {"l": mirror.location_id, "d": today},
            )
        ).scalar_one()
    assert stored["online_bookings"] == 2 and stored["exceptions"] == 1
