"""The cursor helpers: round trips, forged cursors (422 naming `cursor`), and keyset
pages over a timestamp key with ties, against the real database."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.core.db import unit_of_work
from api.core.errors import ValidationProblem
from api.core.infra_models import Job
from api.core.pagination import PageParams, decode_cursor, encode_cursor, keyset, page_of


def _raw_cursor(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_cursor_round_trip():
    at = datetime(2026, 3, 8, 8, 30, 0, 123456, tzinfo=UTC)
    cursor = encode_cursor([at, 42, "loc_01J"])
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert decode_cursor(cursor, 3) == [at.isoformat(), 42, "loc_01J"]
    assert datetime.fromisoformat(decode_cursor(cursor, 3)[0]) == at


@pytest.mark.parametrize(
    "cursor",
    ["!!garbage", "", _raw_cursor({"id": "x"}), _raw_cursor(["a", "b"]), "bm90IGpzb24"],
)
def test_invalid_cursor_is_a_422_naming_cursor(cursor):
    with pytest.raises(ValidationProblem) as caught:
        decode_cursor(cursor, 1)
    assert caught.value.status == 422
    assert [e.field for e in caught.value.errors] == ["cursor"]


@pytest.mark.parametrize(
    "values",
    [["not a time", "job_1"], [{"a": 1}, "job_1"], [None, "job_1"], ["2026-01-01T00:00:00Z", 7]],
)
def test_forged_cursor_values_are_a_422_not_a_database_error(values):
    params = PageParams(limit=10, cursor=_raw_cursor(values))
    with pytest.raises(ValidationProblem) as caught:
        keyset(select(Job), [Job.run_at, Job.id], params)
    assert [e.field for e in caught.value.errors] == ["cursor"]


def test_last_page_has_no_cursor():
    params = PageParams(limit=3)
    assert page_of(["a", "b", "c"], ["id"], params) == (["a", "b", "c"], None)


async def test_keyset_pages_over_a_timestamp_key_with_ties(sessions):
    base = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # the US DST change day, in UTC
    times = [base, base, base + timedelta(microseconds=1), base + timedelta(hours=1), base]
    async with unit_of_work(sessions) as session:
        for i, run_at in enumerate(times):
            session.add(
                Job(
                    id=f"job_{i:02d}",
                    tenant_id=None,
                    task="maintenance.purge_expired",
                    queue="default",
                    args={},
                    status="done",
                    run_at=run_at,
                    attempts=0,
                )
            )
    expected = [j for _, j in sorted((t, f"job_{i:02d}") for i, t in enumerate(times))]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = PageParams(limit=2, cursor=cursor)
        async with unit_of_work(sessions) as session:
            stmt = keyset(select(Job), [Job.run_at, Job.id], params)
            rows = list((await session.execute(stmt)).scalars())
        items, cursor = page_of(rows, ["run_at", "id"], params)
        seen += [job.id for job in items]
        pages += 1
        if cursor is None:
            break
        assert isinstance(json.loads(base64.urlsafe_b64decode(cursor + "==="))[0], str)
    assert seen == expected and pages == 3
