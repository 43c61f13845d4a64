"""Segments and audiences at 100,000 and 1,000,000 patients.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python -m bench.segments.run \\
        [--patients 100000 1000000] [--repeat 3] [--rebuild]

For each size, on the demo generator's practice (scratch database
`cf_bench_segments_<patients>`, loaded once and reused; `--rebuild` loads it again), in
one run and behind the tenant's row-level security like the API:

* the five standard segments (the built-in templates due_for_recall, lapsed,
  open_treatment_plan, new_patient, balance_and_due): the compiled rule and the
  hand-written SQL (bench/segments/handwritten.py) side by side, best of `--repeat`
  timings of `SELECT count(*)` over each, their ratio and the totals (the counts must
  agree, or the run stops);
* a full audience build per segment (rule + the seven suppressions + writing every
  member and the version), as the `audiences.rebuild` job runs it;
* the diff: after ~3% of patients change SMS consent (some leave, some join), the
  second build and `GET /changes?since_version=1`'s work (the counts and the first page
  of 1,000), then reading every page of the changes.

The builds commit (as the jobs do, with ANALYZE in between standing in for autovacuum
after the first build); the bench's segments, audiences and the consent flip are undone
at the end, so the database stays as loaded. Targets: the five rules in under 1 s in all
at 100,000 patients and under 10 s at 1,000,000; compiled SQL within 1.5x of hand-written.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository as audience_repository
from api.audiences.models import Audience
from api.audiences.rebuild import rebuild_audience
from api.audiences.suppression import Suppression
from api.core.db import session_maker, unit_of_work
from api.core.ids import new_id
from api.engines.rules import LocationDay, compile_rule, parse_rule
from api.practice.models import LocationSyncState
from api.segments.models import Segment
from api.segments.templates import TEMPLATES_BY_KEY
from api.tenancy.models import Location
from bench.segments.handwritten import HANDWRITTEN
from bench.segments.practice import TODAY, ensure_practice

STANDARD = ("due_for_recall", "lapsed", "open_treatment_plan", "new_patient", "balance_and_due")
# The nightly build of TODAY, 23:00 at the demo practice (America/Chicago).
EVALUATE_AT = dt.datetime.combine(TODAY, dt.time(23), ZoneInfo("America/Chicago"))
TARGET_TOTAL = {100_000: 1.0, 1_000_000: 10.0}
TARGET_RATIO = 1.5
# Patients whose id ends in 0 (~3%) flip SMS consent: some members leave, some join. Its
# own inverse, so the clean-up runs it again (marked so it runs only once).
FLIP = (
    "UPDATE patients SET sms_consent = NOT sms_consent, "
    "preferred_name = CASE WHEN preferred_name = 'bench-flip' THEN NULL ELSE 'bench-flip' END "
    "WHERE tenant_id = :t AND right(id, 1) = '0'"
)
UNDO_FLIP = (
    "UPDATE patients SET sms_consent = NOT sms_consent, preferred_name = NULL "
    "WHERE tenant_id = :t AND preferred_name = 'bench-flip'"
)


async def best_of(repeat: int, run: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await run()
        best = min(best, time.perf_counter() - started)
    return best, result


async def scalar(session: AsyncSession, sql: str, params: dict[str, Any]) -> Any:
    return (await session.execute(text(sql), params)).scalar_one()


async def rules_side_by_side(
    session: AsyncSession, location: Location, repeat: int
) -> list[tuple[str, int, float, float]]:
    """(segment, matches, compiled seconds, hand-written seconds) per standard segment."""
    rows = []
    day = LocationDay(location.id, TODAY, location.timezone)
    for key in STANDARD:
        compiled = compile_rule(
            parse_rule(TEMPLATES_BY_KEY[key].rule), tenant_id=location.tenant_id, locations=[day]
        )
        compiled_sql = f"SELECT count(*) FROM ({compiled.sql}) m"
        hand_sql = f"SELECT count(*) FROM ({HANDWRITTEN[key]}) h"
        hand_params = {
            "tenant_id": location.tenant_id,
            "location_id": location.id,
            "today": TODAY,
            "tz": location.timezone,
        }

        async def run_compiled(sql: str = compiled_sql, params: Any = compiled.params) -> Any:
            return await scalar(session, sql, params)

        async def run_hand(sql: str = hand_sql, params: Any = hand_params) -> Any:
            return await scalar(session, sql, params)

        compiled_s, compiled_n = await best_of(repeat, run_compiled)
        hand_s, hand_n = await best_of(repeat, run_hand)
        if compiled_n != hand_n:
            raise SystemExit(f"{key}: compiled matched {compiled_n}, hand-written {hand_n}")
        rows.append((key, compiled_n, compiled_s, hand_s))
    return rows


async def audience_builds(
    session: AsyncSession, location: Location
) -> tuple[list[tuple[str, int, float]], dict[str, Audience]]:
    """Build an SMS audience of each standard segment (version 1 each), in the caller's
    transaction, as the `audiences.rebuild` job does."""
    state = await session.get(LocationSyncState, (location.tenant_id, location.id))
    assert state is not None and state.data_as_of is not None
    # The loaded practice's watermark is when it was loaded: judge freshness from then.
    now = state.data_as_of + dt.timedelta(minutes=1)
    builds = []
    audiences: dict[str, Audience] = {}
    for key in STANDARD:
        template = TEMPLATES_BY_KEY[key]
        segment = Segment(
            tenant_id=location.tenant_id,
            id=new_id("segment"),
            name=f"bench: {template.name}",
            rule=template.rule,
            location_ids=[],
            template=key,
            refresh_cadence=template.refresh_cadence,
            refresh_local_time=dt.time(23),
            refresh_weekday=0,
            created_at=now,
            updated_at=now,
        )
        audience = Audience(
            tenant_id=location.tenant_id,
            id=new_id("audience"),
            segment_id=segment.id,
            name=template.name,
            channel="sms",
            suppression=Suppression().model_dump(),
            version=0,
            total=0,
            location_data_as_of={},
            created_at=now,
            updated_at=now,
        )
        session.add(segment)
        await session.flush()
        session.add(audience)
        await session.flush()
        started = time.perf_counter()
        outcome = await rebuild_audience(
            session,
            tenant_id=location.tenant_id,
            audience_id=audience.id,
            location_ids=None,
            trigger="manual",
            now=now,
            evaluate_at=EVALUATE_AT,
        )
        builds.append((key, outcome.total, time.perf_counter() - started))
        audiences[key] = audience

    return builds, audiences


async def rebuild_and_diff(
    session: AsyncSession, location: Location, audience_id: str
) -> dict[str, Any]:
    """~3% of patients flip their SMS consent; build version 2 and read the changes."""
    state = await session.get(LocationSyncState, (location.tenant_id, location.id))
    assert state is not None and state.data_as_of is not None
    now = state.data_as_of + dt.timedelta(minutes=1)
    flipped = await session.execute(text(FLIP), {"t": location.tenant_id})
    started = time.perf_counter()
    second = await rebuild_audience(
        session,
        tenant_id=location.tenant_id,
        audience_id=audience_id,
        location_ids=None,
        trigger="manual",
        now=now,
        evaluate_at=EVALUATE_AT,
    )
    rebuild_s = time.perf_counter() - started
    common: dict[str, Any] = {
        "tenant_id": location.tenant_id,
        "audience_id": audience_id,
        "since": 1,
        "to_version": 2,
        "visible": None,
    }
    started = time.perf_counter()
    added, removed = await audience_repository.change_counts(session, **common)
    first_page = await audience_repository.changes_page(session, **common, after=None, limit=1000)
    diff_s = time.perf_counter() - started
    started = time.perf_counter()
    pages, seen, after = 0, 0, None
    while True:
        page = await audience_repository.changes_page(session, **common, after=after, limit=1000)
        pages += 1
        seen += len(page)
        if len(page) < 1000:
            break
        after = page[-1].patient_id
    all_pages_s = time.perf_counter() - started
    assert seen == added + removed, (seen, added, removed)
    return {
        "flipped": getattr(flipped, "rowcount", 0),
        "members_before": second.total - second.added + second.removed,
        "added": added,
        "removed": removed,
        "rebuild_s": rebuild_s,
        "diff_s": diff_s,
        "first_page": len(first_page),
        "all_pages_s": all_pages_s,
        "pages": pages,
    }


async def bench_size(database_url: str, repeat: int) -> None:
    sessions = session_maker(database_url)
    async with unit_of_work(sessions) as session:
        location = (await session.execute(select(Location))).scalars().one()
        patients = await scalar(
            session, "SELECT count(*) FROM patients WHERE deleted_at IS NULL", {}
        )
    print(f"\n{patients:,} patients (one location, {location.timezone}, today {TODAY})")
    async with unit_of_work(sessions, location.tenant_id) as session:
        rules = await rules_side_by_side(session, location, repeat)
    print(f"  {'segment':<22} {'matches':>9} {'compiled':>10} {'hand-written':>13} {'ratio':>6}")
    for key, n, compiled_s, hand_s in rules:
        ratio = compiled_s / hand_s
        print(
            f"  {key:<22} {n:>9,} {compiled_s * 1000:>8.0f} ms "
            f"{hand_s * 1000:>10.0f} ms {ratio:>6.2f}"
        )
    total_c = sum(r[2] for r in rules)
    total_h = sum(r[3] for r in rules)
    print(
        f"  {'total (five rules)':<22} {'':>9} {total_c * 1000:>8.0f} ms "
        f"{total_h * 1000:>10.0f} ms {total_c / total_h:>6.2f}"
    )
    # Builds and the diff commit like the jobs do (autovacuum analyzes the new members in
    # between, as it would after a first build), then everything is undone.
    try:
        async with unit_of_work(sessions, location.tenant_id) as session:
            builds, audiences = await audience_builds(session, location)
        async with unit_of_work(sessions) as session:
            await session.execute(text("ANALYZE audience_members"))
        async with unit_of_work(sessions, location.tenant_id) as session:
            diff = await rebuild_and_diff(session, location, audiences["due_for_recall"].id)
    finally:
        async with unit_of_work(sessions) as session:
            await session.execute(text(UNDO_FLIP), {"t": location.tenant_id})
            await session.execute(text("DELETE FROM segments WHERE name LIKE 'bench: %'"))
    print(f"  {'audience build (v1)':<22} {'members':>9} {'time':>10}")
    for key, total, seconds in builds:
        print(f"  {key:<22} {total:>9,} {seconds * 1000:>8.0f} ms")
    print(f"  {'total (five builds)':<22} {'':>9} {sum(b[2] for b in builds) * 1000:>8.0f} ms")
    print(
        f"  diff: {diff['flipped']:,} patients changed SMS consent; due_for_recall "
        f"{diff['members_before']:,} members -> +{diff['added']:,} / -{diff['removed']:,}"
    )
    print(f"    second build (v2)                    {diff['rebuild_s'] * 1000:>8.0f} ms")
    print(
        f"    changes since v1: counts + first {diff['first_page']:,}  "
        f"{diff['diff_s'] * 1000:>8.0f} ms"
    )
    print(
        f"    every page of changes ({diff['pages']} x 1,000)      "
        f"{diff['all_pages_s'] * 1000:>8.0f} ms"
    )
    target = TARGET_TOTAL.get(patients)
    worst = max(r[2] / r[3] for r in rules)
    verdict = []
    if target is not None:
        ok = "met" if total_c < target else "NOT met"
        verdict.append(f"five rules < {target:g} s: {ok} ({total_c:.2f} s)")
    ok = "met" if worst <= TARGET_RATIO else "NOT met"
    verdict.append(f"compiled within {TARGET_RATIO}x of hand-written: {ok} (worst {worst:.2f}x)")
    print("  targets: " + "; ".join(verdict))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="Timings per query (best kept)")
    parser.add_argument("--rebuild", action="store_true", help="Load the practices again")
    args = parser.parse_args()
    admin_url = os.environ["DATABASE_URL"]
    for patients in args.patients:
        url = ensure_practice(admin_url, patients, rebuild=args.rebuild)
        asyncio.run(bench_size(url, args.repeat))


if __name__ == "__main__":
    main()
