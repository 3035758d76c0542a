"""Queues every delivery that is due but not queued: retries, deferrals, Redis flushed, worker killed, enqueue failed.

Every worker runs it each `sweep_interval`; a short Redis lock makes one pass per interval across the fleet, and
whichever worker is alive takes the next one, so due work never waits on one host (RQ's scheduler lock did)."""

from __future__ import annotations

import logging
import threading

from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import delete

from relay.delivery import leases, queue
from relay.intake.events import DEDUP_WINDOW
from relay.models import IdempotencyKey
from relay.runtime import Runtime

log = logging.getLogger(__name__)
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
BATCH = 1000
LOCK = "pact-relay:sweeper"


def sweep(runtime: Runtime) -> int:
    """One pass; returns how many deliveries were put on the queue. Due is decided on the database's clock."""
    settings = runtime.settings
    with runtime.sessions() as session:
        due = leases.due(session, settings.sweep_grace, BATCH)
    if not due:
        return 0
    jobs = Job.fetch_many([queue.job_id(i, n) for i, n in due], connection=runtime.redis,
                          serializer=JSONSerializer)
    intermediate = queue.queue(runtime.redis, settings.queue_name).intermediate_queue
    stranded = _stranded(intermediate)
    lost = [(i, n) for (i, n), job in zip(due, jobs, strict=True)
            if job is None or job.id in stranded or job.get_status(refresh=False) not in WAITING]
    if lost:
        for job_id in stranded.intersection(queue.job_id(i, n) for i, n in lost):
            intermediate.remove(job_id)  # or RQ's own clean-up would later fail the job we put back
            runtime.redis.delete(intermediate.get_first_seen_key(job_id))
        queue.enqueue(runtime.redis, settings.queue_name, lost, leases.longest(settings))
        log.info("sweeper queued %d due deliveries", len(lost))
    return len(lost)


def _stranded(intermediate: IntermediateQueue) -> set[str]:
    """Jobs a worker took off the queue but never started: it died in between, and RQ still calls them queued.

    A live worker starts a job microseconds after taking it, so a job still there on a later pass is stranded;
    RQ's own clean-up would notice only after a minute and its next maintenance run (ten minutes by default).
    """
    return {job_id for job_id in intermediate.get_job_ids() if not intermediate.set_first_seen(job_id)}


def prune(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < leases.db_now(session) - DEDUP_WINDOW))


def run_forever(runtime: Runtime, stop: threading.Event) -> None:
    """Sweep every interval; a Redis lock keeps to one sweeper per interval across processes."""
    interval = runtime.settings.sweep_interval
    passes = 0
    while not stop.wait(interval):
        try:
            if not runtime.redis.set(LOCK, "1", nx=True, px=int(interval * 1000 * 0.9)):
                continue
            sweep(runtime)
            passes += 1
            if passes % 720 == 1:
                prune(runtime)
        except Exception as exc:  # Redis or the database away: try again next interval
            log.warning("sweep failed: %s: %s", type(exc).__name__, exc)


def start(runtime: Runtime) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(runtime, stop), name="sweeper", daemon=True).start()
    return stop
