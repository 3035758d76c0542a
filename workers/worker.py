"""Worker startup: an RQ worker feeding the dispatcher (many sends in flight), and the sweeper beside it."""

from __future__ import annotations

import logging

from relay.delivery import leases, queue
from relay.delivery.dispatcher import Dispatcher
from relay.ops import logredact
from relay.runtime import Runtime
from workers import context, sweeper

log = logging.getLogger(__name__)
# SIGTERM to exit: sends in flight get this long to finish (process managers wait 10 s before SIGKILL).
SHUTDOWN_GRACE = 8.0


def run(runtime: Runtime, burst: bool = False) -> None:
    # SimpleWorker runs jobs in-process: no fork per delivery. A job only hands its ids to the dispatcher,
    # whose threads send; RQ's scheduler is not used: retries are due times in the database (see sweeper).
    logredact.install()
    context.set_runtime(runtime)
    with runtime.sessions.begin() as session:
        orphans = leases.release_orphans(session)
    if orphans:
        log.info("gave back %d leases held by a worker of this host that is gone", orphans)
    dispatcher = None if burst else Dispatcher(runtime).start()
    runtime.dispatcher = dispatcher
    worker = queue.worker(runtime.redis, runtime.settings.queue_name,
                          on_stop=dispatcher.stopping.set if dispatcher is not None else None)
    stop = sweeper.start(runtime)
    try:
        # RQ's own job lines repeat the relay's one line per attempt; keep only its warnings unless debugging.
        level = runtime.settings.log_level if runtime.settings.log_level == "DEBUG" else "WARNING"
        worker.work(with_scheduler=False, burst=burst, logging_level=level, max_jobs=None)
    finally:
        stop.set()
        if dispatcher is not None:
            dispatcher.stop(SHUTDOWN_GRACE)
            runtime.dispatcher = None
        log.info("worker stopped")
