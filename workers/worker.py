"""Worker startup: an RQ worker with the scheduler, and the sweeper in a thread beside it."""

from __future__ import annotations

import logging

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from relay.ops import logredact
from relay.runtime import Runtime
from workers import context, sweeper


def run(runtime: Runtime, burst: bool = False) -> None:
    # SimpleWorker runs jobs in-process: no fork per delivery; every send is bounded by its own timeouts.
    logredact.install()
    context.set_runtime(runtime)
    worker = SimpleWorker([runtime.settings.queue_name], connection=runtime.redis, serializer=JSONSerializer)
    stop = sweeper.start(runtime)
    try:
        # RQ's own job lines repeat the relay's one line per attempt; keep only its warnings unless debugging.
        level = runtime.settings.log_level if runtime.settings.log_level == "DEBUG" else "WARNING"
        worker.work(with_scheduler=True, burst=burst, logging_level=level, max_jobs=None)
    finally:
        stop.set()
        logging.getLogger(__name__).info("worker stopped")
