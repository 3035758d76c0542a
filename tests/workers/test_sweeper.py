"""The sweeper puts back what Redis lost and leaves alone what is still queued."""

import time
from datetime import timedelta

from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import update

from relay.delivery.queue import FRESH, FRESH_PATIENCE, feed, queue, take_fresh
from relay.models import Delivery, utcnow
from tests.conftest import sample_event
from workers.sweeper import prune, sweep


def setup_delivery(api, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                "request": {"method": "POST", "url": httpserver.url_for("/hook")}})
    return api.post("/events", json=sample_event("contract_published")).json["event"]


def age(runtime, seconds=60):
    with runtime.sessions.begin() as session:
        session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=seconds)))


def queued(runtime):
    """What waits in Redis: RQ jobs and the ids in intake's feed."""
    name = runtime.settings.queue_name
    entries = runtime.redis.lrange(feed(name), 0, -1)
    return runtime.redis.llen(f"rq:queue:{name}") + sum(len(e.split()) for e in entries)


def test_flushall_loses_nothing(api, runtime, httpserver, drain):
    setup_delivery(api, httpserver)
    runtime.redis.flushdb()
    drain()
    assert httpserver.log == []
    age(runtime)
    assert sweep(runtime) == 1
    drain()
    assert len(httpserver.log) == 1
    assert api.get("/deliveries").json["deliveries"][0]["status"] == "succeeded"
    assert sweep(runtime) == 0


def test_still_queued_is_not_enqueued_twice(api, runtime, httpserver):
    setup_delivery(api, httpserver)
    age(runtime)
    assert queued(runtime) == 1
    assert sweep(runtime) == 0
    assert queued(runtime) == 1


def test_not_yet_due_or_leased_is_left_alone(api, runtime, httpserver):
    setup_delivery(api, httpserver)
    runtime.redis.flushdb()
    assert sweep(runtime) == 0  # inside the grace period
    with runtime.sessions.begin() as session:
        session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=60),
                                                lease_until=utcnow() + timedelta(seconds=30), lease_owner="w"))
    assert sweep(runtime) == 0  # a live worker holds it


def test_a_worker_killed_mid_send_is_recovered_when_its_lease_ends(api, runtime, httpserver, drain):
    setup_delivery(api, httpserver)
    runtime.redis.flushdb()  # the job died with its worker
    with runtime.sessions.begin() as session:
        session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=60),
                                                lease_until=utcnow() - timedelta(seconds=1), lease_owner="dead"))
    assert sweep(runtime) == 1
    drain()
    assert len(httpserver.log) == 1


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_put_back(api, runtime, httpserver, drain):
    setup_delivery(api, httpserver)
    assert len(take_fresh(runtime.redis, runtime.settings.queue_name, None)) == 1  # taken, its worker died
    age(runtime)
    assert sweep(runtime) == 1  # now an RQ job of its own
    rq_queue = queue(runtime.redis, runtime.settings.queue_name)
    # What a worker does first: move the job to RQ's intermediate list. Then it is SIGKILLed.
    job, _ = Queue.dequeue_any([rq_queue], timeout=None, connection=runtime.redis, serializer=JSONSerializer)
    assert queued(runtime) == 0 and job.get_status() == "queued"
    assert sweep(runtime) == 0  # first sight: a live worker may be about to start it
    assert sweep(runtime) == 1  # still not started on the next pass: stranded
    assert rq_queue.intermediate_queue.get_job_ids() == [] and queued(runtime) == 1
    drain()
    assert len(httpserver.log) == 1
    assert api.get("/deliveries").json["deliveries"][0]["status"] == "succeeded"
    assert sweep(runtime) == 0


def test_fresh_ids_a_dead_worker_took_off_the_feed_are_queued_after_the_patience(api, runtime, httpserver, drain):
    setup_delivery(api, httpserver)
    (delivery_id,) = runtime.redis.lpop(feed(runtime.settings.queue_name)).decode().split()  # then SIGKILLed
    age(runtime)
    assert sweep(runtime) == 0  # still marked: a live worker may be about to lease it
    runtime.redis.zadd(FRESH, {delivery_id: time.time() - FRESH_PATIENCE - 1})
    assert sweep(runtime) == 1 and runtime.redis.zcard(FRESH) == 0
    drain()
    assert len(httpserver.log) == 1


def test_prune_removes_old_idempotency_keys(api, runtime, httpserver):
    from relay.models import IdempotencyKey

    setup_delivery(api, httpserver)
    with runtime.sessions.begin() as session:
        session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    prune(runtime)
    with runtime.sessions() as session:
        assert session.query(IdempotencyKey).count() == 0
    # the same body is a new event once its key has expired
    assert api.post("/events", json=sample_event("contract_published")).status_code == 202
