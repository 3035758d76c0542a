"""Worker startup: an RQ worker with the scheduler, and the sweeper in a thread beside it."""

from __future__ import annotations

import logging

from rq import SimpleWorker, get_current_job
from rq.serializers import JSONSerializer

from relay.runtime import Runtime
from workers import sweeper


class RelayWorker(SimpleWorker):
    """An RQ worker that hands its Runtime to each job it runs, so no job reaches for a process global."""

    def __init__(self, runtime: Runtime):
        super().__init__([runtime.settings.queue_name], connection=runtime.redis, serializer=JSONSerializer)
        self.runtime = runtime

    def perform_job(self, job, queue) -> bool:
        job.runtime = self.runtime
        return super().perform_job(job, queue)


def job_runtime() -> Runtime:
    """The Runtime of the worker running the current job."""
    return get_current_job().runtime


def run(runtime: Runtime, burst: bool = False) -> None:
    # SimpleWorker runs jobs in-process: no fork per delivery; every send is bounded by its own timeouts.
    worker = RelayWorker(runtime)
    stop = sweeper.start(runtime)
    try:
        # RQ's own job lines repeat the relay's one line per attempt; keep only its warnings unless debugging.
        level = runtime.settings.log_level if runtime.settings.log_level == "DEBUG" else "WARNING"
        worker.work(with_scheduler=True, burst=burst, logging_level=level, max_jobs=None)
    finally:
        stop.set()
        logging.getLogger(__name__).info("worker stopped")
