"""A campaign can go to an audience: its current version's members (suppression already
applied), at the campaign's locations."""

from __future__ import annotations

from sqlalchemy import update

from api.core.db import unit_of_work
from api.tenancy.models import Location
from tests.audiences.conftest import make_audience, make_segment, person, rebuild


async def test_a_campaign_counts_an_audiences_current_members(
    client, practice, sessions, load, run_burst
):
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(Location)
            .where(Location.id == practice.locations[0].id)
            .values(sms_registration_complete=True)
        )
    await load(
        practice,
        "patients",
        [person("ana", 1), person("ben", 2), person("cy", 3, sms_consent=False)],
    )
    segment = await make_segment(client, practice)
    audience = await make_audience(client, practice, segment["id"])
    built = await rebuild(client, practice, audience["id"], run_burst)
    assert built["total"] == 2  # cy has no SMS consent: suppressed

    body = {
        "location_ids": [practice.locations[0].id],
        "channels": ["sms"],
        "recipients": {"kind": "audience", "audience_id": audience["id"]},
    }
    counted = await client.post(
        "/v1/campaigns/recipient-count", json=body, headers=practice.headers
    )
    assert counted.status_code == 200, counted.text
    assert counted.json()["count"] == 2

    missing = body | {"recipients": {"kind": "audience", "audience_id": "aud_missing"}}
    refused = await client.post(
        "/v1/campaigns/recipient-count", json=missing, headers=practice.headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "recipients.audience_id"
