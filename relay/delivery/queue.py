"""The enqueue API: the only door into RQ for the rest of the relay."""

from __future__ import annotations

from collections.abc import Iterable

from redis import Redis
from rq import Queue, SimpleWorker
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

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


def not_queued(redis: Redis, name: str, deliveries: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (delivery id, attempts made) pairs with no job waiting in RQ for that attempt.

    A job a dead worker took off the queue and never started counts as not queued, and is taken out of
    RQ's intermediate list so that RQ's own clean-up does not later fail the job queued again."""
    jobs = Job.fetch_many([job_id(i, n) for i, n in deliveries], connection=redis, serializer=JSONSerializer)
    intermediate = queue(redis, name).intermediate_queue
    stranded = _stranded(intermediate)
    lost = [(i, n) for (i, n), job in zip(deliveries, jobs, strict=True)
            if job is None or job.id in stranded or job.get_status(refresh=False) not in WAITING]
    for jid in stranded.intersection(job_id(i, n) for i, n in lost):
        intermediate.remove(jid)
        redis.delete(intermediate.get_first_seen_key(jid))
    return lost


def _stranded(intermediate: IntermediateQueue) -> set[str]:
    """Jobs a worker took off the queue but never started: it died in between, and RQ still calls them queued.

    A live worker starts a job microseconds after taking it, so a job still there on a later pass is stranded;
    RQ's own clean-up would notice only after a minute and its next maintenance run (ten minutes by default).
    """
    return {jid for jid in intermediate.get_job_ids() if not intermediate.set_first_seen(jid)}


class Worker(SimpleWorker):
    """RQ's in-process worker (no fork per job); `on_stop` runs when a stop is requested (SIGTERM, SIGINT)."""

    on_stop = None

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.on_stop is not None:
            self.on_stop()


def worker(redis: Redis, name: str, on_stop=None) -> Worker:
    w = Worker([name], connection=redis, serializer=JSONSerializer)
    w.on_stop = on_stop
    return w
