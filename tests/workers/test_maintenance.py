"""`maintenance.purge_expired` through a real worker, and the nightly fan-out."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.core import jobs
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import IdempotencyRecord, Job
from api.core.settings import Settings
from api.maintenance import service
from api.oauth2.models import AuthorizationCode, OAuthToken
from api.oauth2.tokens import mint_token
from workers.runner import WorkerContext
from workers.settings import WORKER_SETTINGS
from workers.tasks import maintenance as maintenance_tasks

DAY = timedelta(days=1)


async def seed_tokens_codes_and_keys(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tenant_id: str
) -> None:
    """Per tenant: 3 expired tokens/codes/keys to purge and 3 live ones to keep."""
    now = utcnow()
    long_ago = now - 60 * DAY
    async with unit_of_work(sessions, tenant_id) as session:

        def token(issued, with_refresh: bool) -> OAuthToken:
            return mint_token(
                tenant_id=tenant_id,
                client_id="cli_x",
                scopes=[],
                location_ids=None,
                now=issued,
                config=settings.oauth,
                with_refresh=with_refresh,
            ).row

        session.add(token(long_ago, with_refresh=False))  # access expired: purge
        session.add(token(long_ago, with_refresh=True))  # refresh expired too: purge
        session.add(token(now - 2 * DAY, with_refresh=True))  # refresh still valid: keep
        session.add(token(now, with_refresh=False))  # live: keep
        for index, expires_at in enumerate((now - DAY, now + DAY)):
            session.add(
                AuthorizationCode(
                    tenant_id=tenant_id,
                    id=f"acd_{tenant_id}_{index}",
                    code_hash=f"{tenant_id}{index}".ljust(64, "0"),
                    client_id="cli_x",
                    user_id="usr_x",
                    redirect_uri="https://app.example/cb",
                    scopes=[],
                    location_ids=[],
                    code_challenge="x" * 43,
                    code_challenge_method="S256",
                    expires_at=expires_at,
                )
            )
        for key, expires_at in (("old", now - DAY), ("new", now + DAY)):
            session.add(
                IdempotencyRecord(
                    tenant_id=tenant_id,
                    principal_id="cli_x",
                    key=key,
                    fingerprint="f" * 64,
                    status="completed",
                    locked_until=now,
                    expires_at=expires_at,
                )
            )


async def counts(sessions: async_sessionmaker[AsyncSession], tenant_id: str) -> tuple[int, ...]:
    async with unit_of_work(sessions) as session:
        return tuple(
            [
                (
                    await session.execute(
                        select(func.count()).select_from(model).where(model.tenant_id == tenant_id)
                    )
                ).scalar_one()
                for model in (OAuthToken, AuthorizationCode, IdempotencyRecord)
            ]
        )


async def test_purge_job_deletes_only_its_tenants_expired_rows(
    sessions, settings: Settings, worker_context: WorkerContext, make_tenant, run_burst
) -> None:
    tenant = await make_tenant("Bright Smiles Dental")
    other = await make_tenant("Other Family Dentistry")
    for t in (tenant, other):
        await seed_tokens_codes_and_keys(sessions, settings, t.id)
    assert await counts(sessions, tenant.id) == (4, 2, 2)

    async with unit_of_work(sessions) as session:
        job = await jobs.enqueue(session, service.PURGE_TASK, tenant_id=tenant.id)
    assert await run_burst("default") == 1

    async with unit_of_work(sessions) as session:
        row = await session.get(Job, job.id)
    assert row is not None and row.status == "done" and row.finished_at is not None
    assert await counts(sessions, tenant.id) == (2, 1, 1)
    # The other tenant's expired rows wait for that tenant's own job.
    assert await counts(sessions, other.id) == (4, 2, 2)


async def test_purge_service_returns_counts_and_is_idempotent(
    sessions, settings: Settings, make_tenant
) -> None:
    tenant = await make_tenant()
    await seed_tokens_codes_and_keys(sessions, settings, tenant.id)

    async with unit_of_work(sessions, tenant.id) as session:
        first = await service.purge_expired(session, tenant.id)
    async with unit_of_work(sessions, tenant.id) as session:
        second = await service.purge_expired(session, tenant.id)

    assert first.as_dict() == {
        "oauth_tokens": 2,
        "authorization_codes": 1,
        "idempotency_records": 1,
    }
    assert second.as_dict() == {
        "oauth_tokens": 0,
        "authorization_codes": 0,
        "idempotency_records": 0,
    }


async def test_nightly_fan_out_enqueues_one_job_per_tenant_per_day(
    sessions, redis, worker_context: WorkerContext, make_tenant
) -> None:
    tenants = [await make_tenant("A Dental"), await make_tenant("B Dental")]
    ctx = {"chairfill": worker_context}

    assert await maintenance_tasks.enqueue_nightly_purges(ctx) == 2
    # The cron firing again the same day (a second worker, a restart) adds nothing.
    assert await maintenance_tasks.enqueue_nightly_purges(ctx) == 0

    async with unit_of_work(sessions) as session:
        rows = list((await session.execute(select(Job))).scalars())
    today = utcnow().date()
    assert sorted((r.tenant_id, r.task, r.dedupe_key) for r in rows) == sorted(
        (t.id, service.PURGE_TASK, f"{service.PURGE_TASK}:{t.id}:{today.isoformat()}")
        for t in tenants
    )
    assert [await worker_context.queue.is_known(r.id) for r in rows] == [True, True]

    # Another day is another job.
    async with unit_of_work(sessions) as session:
        assert await service.enqueue_nightly_purges(session, date(2031, 1, 2)) == 2


def test_worker_settings_per_queue() -> None:
    assert set(WORKER_SETTINGS) == set(jobs.QUEUES)
    default = WORKER_SETTINGS["default"]
    assert default.queue_name == jobs.queue_name("default")
    assert [f.name for f in default.functions] == [
        t for t, q in jobs.TASKS.items() if q == "default"
    ]
    crons = {c.name: c for c in default.cron_jobs}
    # The reconciler runs every minute (no minute or hour set), the fan-out nightly.
    assert crons["cron.reconcile_jobs"].minute is None
    assert crons["cron.reconcile_jobs"].hour is None
    assert (crons["cron.nightly_purges"].hour, crons["cron.nightly_purges"].minute) == (3, 15)
    for queue, cls in WORKER_SETTINGS.items():
        assert cls.keep_result == 0
        if queue != "default":
            assert cls.cron_jobs == []
