"""Scheduled rebuilds: each location when its local clock reaches the segment's rebuild
time (DST included), daily or weekly, run by the real worker through the jobs outbox;
a location with stale PMS data is refused with an event and nothing half-built."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from api.audiences.schedule import enqueue_due_rebuilds, last_slot
from api.core.db import unit_of_work
from tests.audiences.conftest import make_audience, make_segment, person

UTC = dt.UTC


def at(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_).replace(tzinfo=UTC)


async def _backdate(sessions, tenant_id: str, audience_id: str) -> None:
    """The audience existed before the slots the test walks through."""
    async with unit_of_work(sessions, tenant_id) as session:
        await session.execute(
            text("UPDATE audiences SET created_at = '2026-01-01T00:00:00Z' WHERE id = :a"),
            {"a": audience_id},
        )


async def _fan_out(sessions, now: dt.datetime) -> int:
    async with unit_of_work(sessions) as session:
        return await enqueue_due_rebuilds(session, now)


async def _jobs(sessions, tenant_id: str) -> list[tuple[str, str]]:
    async with unit_of_work(sessions, tenant_id) as session:
        rows = await session.execute(
            text(
                "SELECT dedupe_key, status FROM jobs WHERE task = 'audiences.rebuild' "
                "ORDER BY dedupe_key"
            )
        )
        return [(r.dedupe_key, r.status) for r in rows]


def test_last_slot_follows_the_local_clock_across_dst():
    eleven = dt.time(23, 0)
    # Sunday 2026-03-08, DST began at 02:00 in the US: Chicago is UTC-5 that evening.
    slot = last_slot(at("2026-03-09T04:10:00"), "America/Chicago", eleven, "daily", 0)
    assert slot.isoformat() == "2026-03-08T23:00:00-05:00"
    slot = last_slot(at("2026-03-09T03:59:00"), "America/Chicago", eleven, "daily", 0)
    assert slot.isoformat() == "2026-03-07T23:00:00-06:00"
    # A time missing on the spring-forward day is read with the earlier offset.
    slot = last_slot(at("2026-03-08T12:00:00"), "America/Chicago", dt.time(2, 30), "daily", 0)
    assert slot.astimezone(UTC).isoformat() == "2026-03-08T08:30:00+00:00"
    # Weekly on Mondays: the Monday before, until the Monday's time has come.
    slot = last_slot(at("2026-03-10T03:30:00"), "America/Chicago", eleven, "weekly", 0)
    assert slot.date() == dt.date(2026, 3, 2)
    slot = last_slot(at("2026-03-10T04:00:00"), "America/Chicago", eleven, "weekly", 0)
    assert slot.date() == dt.date(2026, 3, 9)


async def test_daily_rebuild_per_location_time_zone(client, practice, load, sessions, run_burst):
    chicago, new_york = practice.locations
    assert (chicago.timezone, new_york.timezone) == ("America/Chicago", "America/New_York")
    await load(practice, "patients", [person("c1", 1), person("c2", 2)], location=0)
    await load(practice, "patients", [person("n1", 3)], location=1)
    segment = await make_segment(client, practice, location_ids=[])
    audience = await make_audience(client, practice, segment["id"])
    await _backdate(sessions, practice.tenant.id, audience["id"])

    # 23:10 in New York, 22:10 in Chicago: New York's 23:00 has come; Chicago's latest
    # is the evening before (a missed slot is caught up once).
    assert await _fan_out(sessions, at("2026-03-09T03:10:00")) == 2
    assert await _fan_out(sessions, at("2026-03-09T03:40:00")) == 0
    keys = [k for k, _ in await _jobs(sessions, practice.tenant.id)]
    assert keys == sorted(
        [
            f"audiences.rebuild:{audience['id']}:{chicago.id}:2026-03-07",
            f"audiences.rebuild:{audience['id']}:{new_york.id}:2026-03-08",
        ]
    )
    # An hour later it is 23:10 in Chicago.
    assert await _fan_out(sessions, at("2026-03-09T04:10:00")) == 1

    assert await run_burst("default") == 3
    assert {s for _, s in await _jobs(sessions, practice.tenant.id)} == {"done"}
    async with unit_of_work(sessions, practice.tenant.id) as session:
        versions = (
            await session.execute(
                text(
                    "SELECT location_ids, trigger, added, total FROM audience_versions "
                    "ORDER BY version"
                )
            )
        ).all()
    assert len(versions) == 3 and {v.trigger for v in versions} == {"scheduled"}
    assert all(len(v.location_ids) == 1 for v in versions)
    assert versions[-1].total == 3
    assert sum(v.added for v in versions) == 3
    current = (await client.get(f"/v1/audiences/{audience['id']}", headers=practice.headers)).json()
    assert (current["version"], current["total"]) == (3, 3)


async def test_weekly_cadence(client, practice, load, sessions):
    await load(practice, "patients", [person("c1", 1)])
    segment = await make_segment(
        client, practice, refresh_cadence="weekly", refresh_weekday=0, refresh_local_time="23:00"
    )
    audience = await make_audience(client, practice, segment["id"])
    await _backdate(sessions, practice.tenant.id, audience["id"])
    assert await _fan_out(sessions, at("2026-03-09T03:10:00")) == 1  # Monday Mar 2's
    assert await _fan_out(sessions, at("2026-03-09T23:00:00")) == 0  # Monday, 18:00 local
    assert await _fan_out(sessions, at("2026-03-10T04:00:00")) == 1  # Monday 23:00 CDT
    assert await _fan_out(sessions, at("2026-03-14T04:00:00")) == 0  # Friday: nothing new
    dates = [k.rsplit(":", 1)[1] for k, _ in await _jobs(sessions, practice.tenant.id)]
    assert dates == ["2026-03-02", "2026-03-09"]


async def test_nothing_before_the_audience_existed(client, practice, load, sessions):
    await load(practice, "patients", [person("c1", 1)])
    segment = await make_segment(client, practice)
    await make_audience(client, practice, segment["id"])
    # The audience was created now: a slot from last spring is not due for it.
    assert await _fan_out(sessions, at("2026-03-09T05:10:00")) == 0


async def test_stale_location_is_refused_with_an_event(client, practice, load, sessions, run_burst):
    chicago, new_york = practice.locations
    await load(practice, "patients", [person("c1", 1)], location=0)
    # New York's bridge last synced three days ago (threshold: 24 hours).
    old = dt.datetime.now(UTC) - dt.timedelta(days=3)
    await load(practice, "patients", [person("n1", 2)], location=1, watermark=old)
    segment = await make_segment(client, practice, location_ids=[])
    audience = await make_audience(client, practice, segment["id"])
    await _backdate(sessions, practice.tenant.id, audience["id"])
    assert await _fan_out(sessions, at("2026-03-09T04:10:00")) == 2
    assert await run_burst("default") == 2

    async with unit_of_work(sessions, practice.tenant.id) as session:
        events = (
            await session.execute(
                text("SELECT type, location_id, data FROM events ORDER BY occurred_at, id")
            )
        ).all()
        members = (
            (await session.execute(text("SELECT location_id FROM audience_members")))
            .scalars()
            .all()
        )
        versions = (
            await session.execute(text("SELECT version, location_ids FROM audience_versions"))
        ).all()
    types = sorted(e.type for e in events)
    assert types == ["audience.rebuild_refused", "audience.updated"]
    refused = next(e for e in events if e.type == "audience.rebuild_refused")
    assert refused.location_id == new_york.id
    assert refused.data["reason"] == "stale_data"
    assert refused.data["stale_locations"][0]["location_id"] == new_york.id
    assert refused.data["stale_locations"][0]["threshold_minutes"] == 24 * 60
    assert "older than" in refused.data["detail"]
    # Chicago was built; nothing of New York was written.
    assert members == [chicago.id]
    assert [(v.version, v.location_ids) for v in versions] == [(1, [chicago.id])]
    # The refused job is done, not failed: retrying cannot make the data fresher.
    assert {s for _, s in await _jobs(sessions, practice.tenant.id)} == {"done"}
