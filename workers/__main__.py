"""`python -m workers [--queue Q ...]`: the arq workers of the given queues (default: all)
in one process, sharing one context, stopped together on SIGINT or SIGTERM.

`chairfill worker` and `chairfill up` start this as a process of its own: the API package
never imports the workers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal

import structlog

from api.core.jobs import QUEUES
from api.core.logging import configure_logging
from api.core.settings import Settings, get_settings
from workers.runner import WorkerContext
from workers.settings import create_worker, cron_jobs_for, functions_for

log = structlog.get_logger(__name__)

# How long running jobs may take to finish after a stop signal.
GRACE_SECONDS = 20


async def run_workers(queues: list[str], settings: Settings) -> None:
    # arq refuses a worker with nothing to run; a queue gets one once a task uses it.
    idle = [q for q in queues if not functions_for(q) and not cron_jobs_for(q)]
    queues = [q for q in queues if q not in idle]
    if idle:
        log.info("queues_without_tasks", queues=idle)
    if not queues:
        raise SystemExit(f"no tasks are registered on the queues {', '.join(idle)}")
    context = await WorkerContext.start(settings)
    workers = [create_worker(queue, settings, context) for queue in queues]
    # As the API does once started (api/main.py): what start-up built lives as long as
    # the process, so the collector's full passes walk only what jobs leave behind (a
    # connector's first run allocates millions of rows' objects).
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(worker.main()) for worker in workers]
    log.info("workers_started", queues=queues)
    try:
        stopper = asyncio.create_task(stop.wait())
        # Leave when asked to, or when a worker dies (then the others stop too).
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
    finally:
        for worker in workers:
            worker.allow_pick_jobs = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Let running jobs finish; what is still running then is cancelled (its
        # transaction rolls back and the row stays pending for a later run).
        running = [t for w in workers for t in w.tasks.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=GRACE_SECONDS)
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker.close()
        await context.close()
        log.info("workers_stopped", queues=queues)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise SystemExit(f"a worker stopped unexpectedly: {task.exception()!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--queue", action="append", choices=QUEUES, dest="queues")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(run_workers(args.queues or list(QUEUES), settings))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux and macOS, with uvicorn[standard]): a worker
    spends most of its time in socket I/O (POSTs, Postgres, Redis), which uvloop does with
    less CPU; the stock loop elsewhere."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    main()
