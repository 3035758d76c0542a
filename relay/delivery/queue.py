"""The enqueue API: the only door into RQ for the rest of the relay."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from relay.runtime import Runtime

log = logging.getLogger(__name__)
JOB = "workers.jobs.deliver"


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
