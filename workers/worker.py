"""Worker startup: an RQ worker feeding the dispatcher (many sends in flight), and the sweeper beside it."""

from __future__ import annotations

import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, get_current_job
from rq.serializers import JSONSerializer

from relay.delivery import leases, queue
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.runner import run_delivery
from relay.runtime import Runtime
from workers import sweeper

log = logging.getLogger(__name__)
# SIGTERM to exit: sends in flight get this long to finish (process managers wait 10 s before SIGKILL).
SHUTDOWN_GRACE = 8.0


class RelayWorker(SimpleWorker):
    """An RQ worker that hands its Runtime to each job it runs, so no job reaches for a process global; a stop
    request (SIGTERM, SIGINT) also stops its dispatcher taking more."""

    def __init__(self, runtime: Runtime):
        super().__init__([runtime.settings.queue_name], connection=runtime.redis, serializer=JSONSerializer)
        self.runtime = runtime

    def perform_job(self, job, queue) -> bool:
        job.runtime = self.runtime
        return super().perform_job(job, queue)

    # RQ runs its registry clean-up and its suspension check outside the part of its loop that waits out a lost
    # Redis, so a Redis failover at that moment ended the worker ("found an unhandled exception, quitting"). Both
    # are tried again on the next turn of the loop, whose dequeue waits for Redis to come back.
    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("RQ maintenance put off, Redis unavailable: %s", exc)

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("suspension check put off, Redis unavailable: %s", exc)

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.runtime.dispatcher is not None:
            self.runtime.dispatcher.stopping.set()


def job_runtime() -> Runtime:
    """The Runtime of the worker running the current job."""
    return get_current_job().runtime


def send_fresh(runtime: Runtime) -> int:
    """Burst mode (no dispatcher): send what waits in intake's feed, one delivery after another, in this thread."""
    sent = 0
    while ids := queue.take_fresh(runtime.redis, runtime.settings.queue_name, None):
        for delivery_id in ids:
            run_delivery(runtime, delivery_id)
        sent += len(ids)
    return sent


def run(runtime: Runtime, burst: bool = False) -> None:
    # SimpleWorker runs jobs in-process: no fork per delivery. A job only hands its ids to the dispatcher,
    # whose threads send; RQ's scheduler is not used: retries are due times in the database (see sweeper).
    with runtime.sessions.begin() as session:
        orphans = leases.release_orphans(session)
    if orphans:
        log.info("gave back %d leases held by a worker of this host that is gone", orphans)
    runtime.dispatcher = None if burst else Dispatcher(runtime).start()
    worker = RelayWorker(runtime)
    stop = sweeper.start(runtime)
    try:
        # RQ's own job lines repeat the relay's one line per attempt; keep only its warnings unless debugging.
        level = runtime.settings.log_level if runtime.settings.log_level == "DEBUG" else "WARNING"
        if burst:
            send_fresh(runtime)
        worker.work(with_scheduler=False, burst=burst, logging_level=level, max_jobs=None)
    finally:
        stop.set()
        if runtime.dispatcher is not None:
            runtime.dispatcher.stop(SHUTDOWN_GRACE)
            runtime.dispatcher = None
        log.info("worker stopped")
