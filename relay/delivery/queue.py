"""The enqueue API: the only door into RQ for the rest of the relay."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from redis import Redis
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.suspension import is_suspended

from relay.runtime import Runtime

log = logging.getLogger(__name__)
JOB = "workers.jobs.deliver"
EXPLAIN_JOB = "workers.jobs.explain"
EXPLAIN_TIMEOUT = 60
EXPLAINING = "pact-relay:explain:"  # + event id: the broker reads after it were asked for
READ_DONE = "pact-relay:read:"  # + event id: they are done
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# Fresh deliveries skip RQ: an RQ job cost a third of a millisecond of CPU to create, about what all the rest of
# a new event cost. Intake appends their ids to the queue's feed, a Redis list whose entries each carry the ids of
# one or more events, and every worker's dispatcher takes entries from it. This sorted set (delivery id -> when
# queued) tells the sweeper they are queued; a mark older than FRESH_PATIENCE no longer does (a worker died between
# taking an entry and unmarking it) and is dropped. Retries, deferrals and what the sweeper finds go through RQ.
FRESH = "pact-relay:fresh"
FRESH_PATIENCE = 60.0


def feed(name: str) -> str:
    return f"pact-relay:feed:{name}"


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


def enqueue_explain(runtime: Runtime, event_id: str) -> bool:
    """Ask a worker to read why this event's verification failed (relay.broker.explain); never delays deliveries,
    which are queued separately. Marks the event as asked for (explain_asked). False when Redis is away: the
    first delivery waiting for the details, or the sweeper, asks again."""
    job = Queue.prepare_data(EXPLAIN_JOB, args=(event_id,), job_id=f"explain_{event_id}", timeout=EXPLAIN_TIMEOUT,
                             result_ttl=0, failure_ttl=3600)
    patience = EXPLAIN_TIMEOUT + 4 * runtime.settings.broker_timeout  # queued, then the result and the pact read
    try:
        queue(runtime.redis, runtime.settings.queue_name).enqueue_many([job])
        runtime.redis.set(EXPLAINING + event_id, "1", px=int(patience * 1000))
    except Exception as exc:
        log.warning("event %s: cannot ask for its verification details (%s)", event_id, type(exc).__name__)
        return False
    return True


def mark_read(redis: Redis, event_id: str) -> None:
    """The broker reads after this event are done (found or not): its waiting first sends may go."""
    redis.set(READ_DONE + event_id, "1", ex=3600)


def read_done(redis: Redis, event_id: str) -> bool:
    return bool(redis.exists(READ_DONE + event_id))


def explain_asked(redis: Redis, event_ids: list[str]) -> list[bool]:
    """Whether a read of each event's verification result was asked for lately (queued or under way): one that
    was not, or whose mark expired (a worker died mid-read), was lost."""
    if not event_ids:
        return []
    return [mark is not None for mark in redis.mget([EXPLAINING + i for i in event_ids])]


def enqueue_fresh(runtime: Runtime, delivery_ids: list[str]) -> None:
    """Queue fresh deliveries after their commit; if Redis is away the sweeper sends them later."""
    runtime.cache(FreshBatches).add(runtime, delivery_ids)


class FreshBatches:
    """The fresh deliveries of every request of a process, queued by whichever request finishes first.

    One entry of the feed carries the deliveries of every event that came in while the previous entry was being
    queued: alone an event's deliveries go out at once, under load many events share one round trip. No thread
    of its own and no timer: the ids wait only while another request is already queueing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._busy = False

    def add(self, runtime: Runtime, delivery_ids: list[str]) -> None:
        with self._lock:
            self._pending.extend(delivery_ids)
            if self._busy:
                return
            self._busy = True
        try:
            while True:
                with self._lock:
                    batch, self._pending = self._pending, []
                    if not batch:
                        self._busy = False
                        return
                _queue_fresh(runtime, batch)
        except BaseException:
            with self._lock:
                self._busy = False
            raise


def _queue_fresh(runtime: Runtime, delivery_ids: list[str]) -> None:
    try:
        enqueue_batch(runtime.redis, runtime.settings.queue_name, delivery_ids)
    except Exception as exc:
        log.warning("%d deliveries stored, enqueue failed (%s); the sweeper will send them",
                    len(delivery_ids), type(exc).__name__)


def enqueue_batch(redis: Redis, name: str, delivery_ids: list[str], front: bool = False) -> None:
    """Fresh deliveries as one entry of the queue's feed (at its head with `front`), each id marked in FRESH so
    the sweeper knows it is queued; one round trip."""
    pipe = redis.pipeline(transaction=False)
    (pipe.lpush if front else pipe.rpush)(feed(name), " ".join(delivery_ids))
    pipe.zadd(FRESH, dict.fromkeys(delivery_ids, time.time()))
    pipe.execute()


def take_fresh(redis: Redis, name: str, wait: float | None) -> list[str]:
    """The next entry of the feed (waiting up to `wait` seconds; None: not at all), its marks removed."""
    if wait is None:
        entry = redis.lpop(feed(name))
    else:
        popped = redis.blpop([feed(name)], timeout=wait)
        entry = popped[1] if popped else None
    if not entry:
        return []
    ids = entry.decode().split()
    redis.zrem(FRESH, *ids)  # taken: from now on their leases, not their marks, tell the sweeper about them
    return ids


def suspended(redis: Redis) -> bool:
    """Whether RQ's workers are suspended (`rq suspend`): the feed waits with them."""
    return bool(is_suspended(redis))


def not_waiting(redis: Redis, name: str, due: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The due (delivery id, attempts made) pairs with no job waiting in RQ, ready to be queued again.

    Jobs of these that a dead worker left stranded are taken out of RQ's intermediate queue first, or RQ's own
    clean-up would later fail the job put back."""
    if not due:
        return []
    pipe = redis.pipeline()
    pipe.zremrangebyscore(FRESH, "-inf", time.time() - FRESH_PATIENCE)
    pipe.zmscore(FRESH, [i for i, _ in due])
    marks = pipe.execute()[1]
    due = [pair for pair, mark in zip(due, marks, strict=True) if mark is None]
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
    """What waits in Redis: (queued now: RQ jobs and fresh deliveries, scheduled for later), in one round trip."""
    q = queue(redis, name)
    pipe = redis.pipeline()
    pipe.llen(q.key)
    pipe.zcard(FRESH)
    pipe.zcard(q.scheduled_job_registry.key)
    jobs, fresh, scheduled = pipe.execute()
    return jobs + fresh, scheduled
