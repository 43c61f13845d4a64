"""Suppression after the rule: every reason counted on its own in the preview, each
switchable, and the same reasons applied (in SQL) when the audience is built."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tests.audiences.conftest import make_audience, make_segment, person, rebuild

CHICAGO = ZoneInfo("America/Chicago")


async def _load_practice(load, practice, client) -> None:
    now = dt.datetime.now(dt.UTC)
    await load(
        practice,
        "patients",
        [
            person("ok", 1),
            person("old_contact", 2),
            person("opted", 3),
            person("opted_address", 4),
            person("no_consent", 5, sms_consent=False),
            person("no_mobile", 6, mobile=None),
            person("inactive", 7, status="inactive"),
            person("deceased", 8, status="deceased"),
            person("collections", 9),
            person("seen", 10),
            person("contacted", 11),
            person("listed", 12),
            person("twice", 13, status="archived", mobile=None),
        ],
    )
    await load(
        practice,
        "opt-outs",
        [
            {
                "external_id": "O1",
                "patient_external_id": "opted",
                "channel": "sms",
                "opted_out_at": now.isoformat(),
            },
            # By address only, for every channel (a number the PMS flagged).
            {
                "external_id": "O2",
                "contact_value": "+15125550004",
                "channel": "all",
                "opted_out_at": now.isoformat(),
            },
            # Email only: does not suppress an SMS audience.
            {
                "external_id": "O3",
                "patient_external_id": "ok",
                "channel": "email",
                "opted_out_at": now.isoformat(),
            },
        ],
    )
    await load(
        practice,
        "ledger",
        [
            {
                "external_id": "L1",
                "guarantor_external_id": "collections",
                "balance": "900",
                "in_collections": True,
            }
        ],
    )
    today_nine = dt.datetime.combine(now.astimezone(CHICAGO).date(), dt.time(9), CHICAGO)
    await load(
        practice,
        "appointments",
        [
            {
                "external_id": "A1",
                "patient_external_id": "seen",
                "start_at": today_nine.isoformat(),
                "end_at": (today_nine + dt.timedelta(hours=1)).isoformat(),
                "status": "completed",
            }
        ],
    )
    await load(
        practice,
        "communications",
        [
            {
                "external_id": "C1",
                "patient_external_id": "contacted",
                "channel": "phone",
                "direction": "outbound",
                "contacted_at": (now - dt.timedelta(days=3)).isoformat(),
            },
            {
                "external_id": "C2",
                "patient_external_id": "old_contact",
                "channel": "sms",
                "direction": "outbound",
                "contacted_at": (now - dt.timedelta(days=20)).isoformat(),
            },
            # The patient wrote to us: not "contacted by the practice".
            {
                "external_id": "C3",
                "patient_external_id": "ok",
                "channel": "sms",
                "direction": "inbound",
                "contacted_at": now.isoformat(),
            },
        ],
    )
    listed = await client.post(
        "/v1/do-not-contact",
        json={"phone": "(512) 555-0012", "note": "asked at the front desk"},
        headers=practice.headers,
    )
    assert listed.status_code == 201, listed.text


async def test_preview_counts_each_reason_separately(client, practice, load):
    await _load_practice(load, practice, client)
    segment = await make_segment(client, practice, location_ids=[practice.locations[0].id])
    body = {"segment_id": segment["id"], "channel": "sms"}
    response = await client.post("/v1/audiences/preview", json=body, headers=practice.headers)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["matched"] == 13
    assert preview["suppressed"] == {
        "do_not_contact": 1,
        "opted_out": 3,  # by patient, by address ("all"), no SMS consent
        "inactive": 3,  # inactive, deceased, archived
        "in_collections": 1,
        "no_contact": 2,
        "seen_today": 1,
        "contacted_recently": 1,
    }
    # ok and old_contact (contacted 20 days ago, outside the 14-day default).
    assert preview["count"] == 2
    assert preview["data_as_of"] is not None

    narrower = body | {"suppression": {"contacted_within_days": 2, "inactive": False}}
    response = await client.post("/v1/audiences/preview", json=narrower, headers=practice.headers)
    switched = response.json()
    assert switched["suppressed"]["inactive"] is None
    assert switched["suppressed"]["contacted_recently"] == 0
    # + contacted (3 days ago) and inactive/deceased; `twice` still has no mobile.
    assert switched["count"] == 5

    off = {k: False for k in preview["suppressed"]}
    response = await client.post(
        "/v1/audiences/preview", json=body | {"suppression": off}, headers=practice.headers
    )
    assert response.json()["count"] == 13
    assert set(response.json()["suppressed"].values()) == {None}

    email = await client.post(
        "/v1/audiences/preview", json=body | {"channel": "email"}, headers=practice.headers
    )
    # Email: `ok` opted out of email; opted (SMS only) and opted_address (an opt-out of
    # that phone number, not of the person's email) are reachable by email.
    counts = email.json()["suppressed"]
    assert counts["opted_out"] == 1 and counts["no_contact"] == 0
    assert counts["do_not_contact"] == 1  # the list is every channel


async def test_the_build_applies_suppression_and_says_why_people_leave(
    client, practice, load, run_burst
):
    await _load_practice(load, practice, client)
    segment = await make_segment(client, practice, location_ids=[practice.locations[0].id])
    audience = await make_audience(client, practice, segment["id"])
    saved_preview = await client.get(
        f"/v1/audiences/{audience['id']}/preview", headers=practice.headers
    )
    assert saved_preview.json()["count"] == 2

    built = await rebuild(client, practice, audience["id"], run_burst)
    assert (built["version"], built["total"]) == (1, 2)
    members = await client.get(f"/v1/audiences/{audience['id']}/members", headers=practice.headers)
    assert sorted(m["first_name"] for m in members.json()["data"]) == ["Ok", "Old_Contact"]

    # `ok` opts out by STOP-like PMS record; `old_contact` is put on the list by email.
    now = dt.datetime.now(dt.UTC).isoformat()
    await load(
        practice,
        "opt-outs",
        [{"external_id": "O4", "patient_external_id": "ok", "channel": "sms", "opted_out_at": now}],
    )
    listed = await client.post(
        "/v1/do-not-contact", json={"email": "OLD_CONTACT@Example.com"}, headers=practice.headers
    )
    assert listed.json()["email"] == "old_contact@example.com"
    again = await rebuild(client, practice, audience["id"], run_burst)
    assert (again["version"], again["total"]) == (2, 0)
    changes = await client.get(
        f"/v1/audiences/{audience['id']}/changes",
        params={"since_version": 1},
        headers=practice.headers,
    )
    reasons = {c["first_name"]: (c["change"], c["reason"]) for c in changes.json()["data"]}
    assert reasons == {
        "Ok": ("removed", "suppressed:opted_out"),
        "Old_Contact": ("removed", "suppressed:do_not_contact"),
    }

    # The PMS lifts `ok`'s opt-out (the row is deleted there): `ok` comes back, and the
    # changes say it is because the suppression ended, not because the rule now matches.
    await load(practice, "opt-outs", [], deletes=["O4"])
    third = await rebuild(client, practice, audience["id"], run_burst)
    assert (third["version"], third["total"]) == (3, 1)
    back = await client.get(
        f"/v1/audiences/{audience['id']}/changes",
        params={"since_version": 2},
        headers=practice.headers,
    )
    assert [(c["first_name"], c["change"], c["reason"]) for c in back.json()["data"]] == [
        ("Ok", "added", "no_longer_suppressed")
    ]
    # Since version 1 nothing changed for `ok`: only old_contact's removal remains.
    net = await client.get(
        f"/v1/audiences/{audience['id']}/changes",
        params={"since_version": 1},
        headers=practice.headers,
    )
    assert [(c["first_name"], c["change"]) for c in net.json()["data"]] == [
        ("Old_Contact", "removed")
    ]
