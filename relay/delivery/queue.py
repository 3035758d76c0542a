"""The enqueue API: the only door into RQ for the rest of the relay."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

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
