"""The enqueue API: the only door into RQ for the rest of the relay."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from redis import Redis
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from relay.runtime import Runtime

log = logging.getLogger(__name__)
JOB = "workers.jobs.deliver"
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def job_id(delivery_id: str, attempts_made: int) -> str:
    """One job id per attempt, so the sweeper can tell whether an attempt is already queued."""
    return f"{delivery_id}_{attempts_made}"


def queue(redis: Redis, name: str) -> Queue:
    return Queue(name, connection=redis, serializer=JSONSerializer)


def enqueue(redis: Redis, name: str, deliveries: Iterable[tuple[str, int]], job_timeout: float = 60) -> int:
    """Queue (delivery id, attempts made) pairs for an attempt now, in one round trip."""
    q = queue(redis, name)
    jobs = [Queue.prepare_data(JOB, args=(delivery_id,), job_id=job_id(delivery_id, made),
                               timeout=int(job_timeout), result_ttl=0, failure_ttl=3600)
            for delivery_id, made in deliveries]
    if not jobs:
        return 0
    q.enqueue_many(jobs)  # one pipeline for all of them
    return len(jobs)


def enqueue_later(redis: Redis, name: str, delivery_id: str, attempts_made: int, delay: float,
                  job_timeout: float = 60) -> None:
    queue(redis, name).enqueue_in(timedelta(seconds=delay), JOB, delivery_id,
                                  job_id=job_id(delivery_id, attempts_made), job_timeout=int(job_timeout),
                                  result_ttl=0, failure_ttl=3600)


def enqueue_fresh(runtime: Runtime, delivery_ids: list[str]) -> None:
    """Queue fresh deliveries after their commit; if Redis is away the sweeper sends them later."""
    try:
        enqueue(runtime.redis, runtime.settings.queue_name, [(d, 0) for d in delivery_ids],
                runtime.settings.lease_seconds)
    except Exception as exc:
        log.warning("%d deliveries stored, enqueue failed (%s); the sweeper will send them",
                    len(delivery_ids), type(exc).__name__)


def not_waiting(redis: Redis, name: str, due: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The due (delivery id, attempts made) pairs with no job waiting in RQ, ready to be queued again.

    Jobs of these that a dead worker left stranded are taken out of RQ's intermediate queue first, or RQ's own
    clean-up would later fail the job put back."""
    if not due:
        return []
    jobs = Job.fetch_many([job_id(i, n) for i, n in due], connection=redis, serializer=JSONSerializer)
    intermediate = queue(redis, name).intermediate_queue
    stranded = _stranded(intermediate)
    lost = [(i, n) for (i, n), job in zip(due, jobs, strict=True)
            if job is None or job.id in stranded or job.get_status(refresh=False) not in WAITING]
    for stranded_id in stranded.intersection(job_id(i, n) for i, n in lost):
        intermediate.remove(stranded_id)
        redis.delete(intermediate.get_first_seen_key(stranded_id))
    return lost


def _stranded(intermediate: IntermediateQueue) -> set[str]:
    """Jobs a worker took off the queue but never started: it died in between, and RQ still calls them queued.

    A live worker starts a job microseconds after taking it, so a job still there on a later pass is stranded;
    RQ's own clean-up would notice only after a minute and its next maintenance run (ten minutes by default).
    """
    return {job_id for job_id in intermediate.get_job_ids() if not intermediate.set_first_seen(job_id)}


def depth(redis: Redis, name: str) -> tuple[int, int]:
    """Jobs waiting in Redis: (queued now, scheduled for later), read in one round trip."""
    q = queue(redis, name)
    pipe = redis.pipeline()
    pipe.llen(q.key)
    pipe.zcard(q.scheduled_job_registry.key)
    queued, scheduled = pipe.execute()
    return queued, scheduled
