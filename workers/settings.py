"""arq WorkerSettings, one per queue (`sends`, `webhooks`, `sync`, `default`).

Every task name of api.core.jobs.TASKS becomes an arq function on its queue, all backed by
the one runner (workers/runner.py). Crons run on the default queue only. `keep_result=0`:
arq stores no result, so a job id pushed again (by the reconciler) is never refused.

Start them with `chairfill worker` (all queues, one process) or arq itself, e.g.
`arq workers.settings.DefaultWorkerSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.worker import Function, Worker

from api.core import jobs
from api.core.settings import Settings, get_settings
from workers.runner import WorkerContext, run_job
from workers.tasks import audiences, booking, cadences, maintenance, sync, webhooks

# arq's own try limit stays out of the way: the runner's ladder, counted in Postgres,
# decides when a job has failed.
ARQ_MAX_TRIES = 1000
JOB_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class QueueConcurrency:
    max_jobs: int
    poll_delay: float


QUEUE_CONCURRENCY: dict[str, QueueConcurrency] = {
    "sends": QueueConcurrency(max_jobs=200, poll_delay=0.05),
    # Each job is a deliverer sending a batch at a time (workers.tasks.webhooks).
    "webhooks": QueueConcurrency(max_jobs=webhooks.CONCURRENT_JOBS, poll_delay=0.05),
    "sync": QueueConcurrency(max_jobs=10, poll_delay=0.5),
    "default": QueueConcurrency(max_jobs=10, poll_delay=0.5),
}


def functions_for(queue: str) -> list[Function]:
    return [
        func(run_job, name=task) for task, task_queue in jobs.TASKS.items() if task_queue == queue
    ]


def cron_jobs_for(queue: str) -> list[CronJob]:
    if queue != "default":
        return []
    return [
        # Every minute: anything recorded but lost from Redis is pushed again.
        cron(maintenance.reconcile_jobs, name="cron.reconcile_jobs", second=7, run_at_startup=True),
        # 03:15 UTC: one purge per tenant, deduplicated per tenant and day.
        cron(maintenance.enqueue_nightly_purges, name="cron.nightly_purges", hour=3, minute=15),
        # Every minute: an Open Dental sync job for each configured location that is due.
        cron(sync.enqueue_opendental_syncs, name="cron.opendental_syncs", second=37),
        # Every minute: expire lapsed booking holds (booking.expired), per tenant.
        cron(booking.enqueue_hold_expiries, name="cron.booking_hold_expiries", second=17),
        # Hourly: each location's booking report for its local yesterday (once per day).
        cron(booking.enqueue_daily_reports, name="cron.booking_daily_reports", minute=5),
        # Every minute: each tenant with active enrollments gets a cadence dispatch (exits
        # recorded, due steps run).
        cron(cadences.enqueue_ticks, name="cron.cadence_ticks", second=52),
        # Hourly: continuous enrollment from the cadences' segments.
        cron(cadences.enqueue_enrollments, name="cron.cadence_enrollments", minute=25),
        # Every minute: audience rebuilds whose local time (per location) has come.
        cron(audiences.enqueue_due_rebuilds, name="cron.audience_rebuilds", second=47),
    ]


async def on_startup(ctx: dict[str, Any]) -> None:
    # A context handed in by `chairfill worker` (shared by its queues) is used as is.
    if "chairfill" not in ctx:
        ctx["chairfill"] = await WorkerContext.start(get_settings())
        ctx["chairfill_owned"] = True


async def on_shutdown(ctx: dict[str, Any]) -> None:
    if ctx.pop("chairfill_owned", False):
        await ctx.pop("chairfill").close()


def _redis_settings() -> RedisSettings:
    url = get_settings().redis_url
    return RedisSettings.from_dsn(url) if url else RedisSettings()


def _settings_class(queue: str) -> type:
    attributes: dict[str, Any] = {
        "__doc__": f"arq settings for the {queue!r} queue.",
        "queue_name": jobs.queue_name(queue),
        "functions": functions_for(queue),
        "cron_jobs": cron_jobs_for(queue),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "keep_result": 0,
        "max_tries": ARQ_MAX_TRIES,
        "job_timeout": JOB_TIMEOUT_SECONDS,
        "redis_settings": _redis_settings(),
        "max_jobs": QUEUE_CONCURRENCY[queue].max_jobs,
        "poll_delay": QUEUE_CONCURRENCY[queue].poll_delay,
    }
    return type(f"{queue.capitalize()}WorkerSettings", (), attributes)


SendsWorkerSettings = _settings_class("sends")
WebhooksWorkerSettings = _settings_class("webhooks")
SyncWorkerSettings = _settings_class("sync")
DefaultWorkerSettings = _settings_class("default")

WORKER_SETTINGS: dict[str, type] = {
    "sends": SendsWorkerSettings,
    "webhooks": WebhooksWorkerSettings,
    "sync": SyncWorkerSettings,
    "default": DefaultWorkerSettings,
}


def create_worker(
    queue: str,
    settings: Settings,
    context: WorkerContext,
    *,
    burst: bool = False,
    with_cron: bool = True,
    poll_delay: float | None = None,
) -> Worker:
    """An arq Worker for one queue, sharing `context` (settings, sessions, job queue).

    Signals are left to the caller, which stops every queue's worker together."""
    assert settings.redis_url, "REDIS_URL is required"
    concurrency = QUEUE_CONCURRENCY[queue]
    return Worker(
        functions=functions_for(queue),
        queue_name=jobs.queue_name(queue),
        cron_jobs=cron_jobs_for(queue) if with_cron else None,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        keep_result=0,
        max_tries=ARQ_MAX_TRIES,
        job_timeout=JOB_TIMEOUT_SECONDS,
        burst=burst,
        max_jobs=concurrency.max_jobs,
        poll_delay=concurrency.poll_delay if poll_delay is None else poll_delay,
        handle_signals=False,
        ctx={"chairfill": context},
    )
