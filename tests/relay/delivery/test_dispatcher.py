"""The dispatcher on real Redis, a real database and real HTTP: sends in flight, fleet-wide limits, isolation."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from relay.delivery import queue
from relay.delivery.dispatcher import Dispatcher
from relay.models import Delivery
from relay.runtime import Runtime
from tests.conftest import make_settings, sample_event
from tests.e2e.conftest import Sink, wait_for
from workers.worker import RelayWorker


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def workers(tmp_path, database_url, redis_url):
    """Start worker-process stand-ins (own Runtime, own dispatcher) sharing the database and Redis."""
    started: list[Runtime] = []

    def start(**settings) -> Runtime:
        rt = Runtime(make_settings(tmp_path, database_url, redis_url, **settings))
        rt.dispatcher = Dispatcher(rt).start()
        started.append(rt)
        return rt

    yield start
    for rt in started:
        rt.dispatcher.stop(5)
        rt.engine.dispose()


def feed(rt: Runtime) -> None:
    """What the worker's RQ loop does: take queued jobs; each hands its ids to the dispatcher. (Fresh deliveries
    reach a started dispatcher from intake's feed by themselves.)"""
    RelayWorker(rt).work(burst=True, logging_level="WARNING")


def hook(api, url, **extra) -> str:
    resp = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}],
                                       "request": {"method": "POST", "url": url}, **extra})
    assert resp.status_code == 201, resp.json
    return resp.json["uuid"]


def send(api, version: str, **overrides) -> None:
    resp = api.post("/events", json={**sample_event("provider_verification_failed"),
                                     "consumerVersionNumber": version, **overrides})
    assert resp.status_code == 202, resp.json


def statuses(runtime) -> dict[str, list[Delivery]]:
    with runtime.sessions() as session:
        out: dict[str, list[Delivery]] = {}
        for d in session.scalars(select(Delivery)):
            out.setdefault(d.status, []).append(d)
        return out


def test_many_sends_in_flight_within_the_host_limit(api, runtime, sink, workers):
    # A send that arrives alone is held 2 s, long enough on a loaded machine for others to join it.
    sink.behaviour = lambda n, req: (200, 2.0 if sink.now.get("", 0) == 0 else 0.2)
    for i in range(24):
        hook(api, f"{sink.url}/hook/{i}")
    send(api, "1.0.0")
    rt = workers(send_concurrency=16, host_concurrency=6)
    feed(rt)
    wait_for(lambda: len(statuses(runtime).get("succeeded", [])) == 24, timeout=60, what="24 delivered")
    assert len(sink.requests) == 24
    assert 2 <= sink.most[""] <= 6  # many in flight at once, never more than the host's limit


def test_the_target_limit_holds_across_workers(api, runtime, sink, workers):
    sink.behaviour = lambda n, req: (200, 0.1)
    uuid = hook(api, f"{sink.url}/hook", maxInFlight=3)
    assert api.get(f"/webhooks/{uuid}").json["maxInFlight"] == 3
    workers(send_concurrency=8), workers(send_concurrency=8)
    for i in range(30):  # both take from intake's feed as the events come: both send to the one target at once
        send(api, f"2.0.{i}")
    wait_for(lambda: len(statuses(runtime).get("succeeded", [])) == 30, timeout=60, what="30 delivered")
    assert len(sink.requests) == 30
    assert sink.most["/hook"] <= 3


def test_a_duplicated_job_is_sent_once_by_two_workers(api, runtime, sink, workers):
    sink.behaviour = lambda n, req: (200, 0.05)
    hook(api, f"{sink.url}/hook?v=${{pactbroker.consumerVersionNumber}}")
    for i in range(30):
        send(api, f"3.0.{i}")
    ids = [(d.id, 0) for d in statuses(runtime)["pending"]]
    queue.enqueue(runtime.redis, runtime.settings.queue_name, ids)  # every job twice: Redis redelivered it
    queue.enqueue(runtime.redis, runtime.settings.queue_name, ids)
    first, second = workers(send_concurrency=16), workers(send_concurrency=16)
    feed(first)
    feed(second)
    wait_for(lambda: len(statuses(runtime).get("succeeded", [])) == 30, timeout=60, what="30 delivered")
    versions = sorted(r["path"].split("v=")[1] for r in sink.requests)
    assert versions == sorted(f"3.0.{i}" for i in range(30))  # each once


def test_a_dead_target_waits_on_itself(api, runtime, sink, workers):
    sink.behaviour = lambda n, req: (200, 3.0) if req["path"].startswith("/dead") else (200, 0)
    hook(api, f"{sink.url}/dead", consumer={"name": "Dead"}, timeout={"read": 2}, maxInFlight=2)
    hook(api, f"{sink.url}/healthy", consumer={"name": "Healthy"})
    for i in range(12):
        send(api, f"4.0.{i}", consumerName="Dead")
    rt = workers(send_concurrency=8, slot_wait=0.5)
    feed(rt)
    # Reached, not "busy now": on a slow machine its few sends may already have timed out and paused it.
    wait_for(lambda: sink.most.get("/dead"), timeout=60, what="the dead target reached")
    for i in range(5):
        send(api, f"4.1.{i}", consumerName="Healthy")
    feed(rt)
    wait_for(lambda: sum(r["path"] == "/healthy" for r in sink.requests) == 5, timeout=30, what="healthy sent")
    dead = [d for ds in statuses(runtime).values() for d in ds if d.event.consumer == "Dead"]
    assert len(dead) == 12 and sum(d.attempts_made for d in dead) < 12  # the healthy did not wait for them all
    assert sink.most["/dead"] <= 2
    waited = [d for d in dead if d.attempts_made == 0 and d.status == "pending"]
    assert waited  # waiting for a slot spent no attempt


def test_the_feed_waits_while_rq_is_suspended(api, runtime, sink, workers):
    from rq.suspension import resume, suspend

    hook(api, f"{sink.url}/hook")
    suspend(runtime.redis)  # what `rq suspend` does: an operator holds every worker
    workers(send_concurrency=4)
    send(api, "9.0.0")
    time.sleep(2.5)  # more than the dispatcher's second between looks at the flag
    assert sink.requests == [] and runtime.redis.llen(queue.feed(runtime.settings.queue_name)) == 1
    resume(runtime.redis)
    wait_for(lambda: len(statuses(runtime).get("succeeded", [])) == 1, timeout=30, what="sent after resume")


def test_a_stopped_dispatcher_holds_nothing_from_the_feed(api, runtime, sink, workers, drain):
    """stop() returns only once the feed's last read has ended and anything it took is back in Redis: a worker
    that stopped must not keep a fresh delivery another worker (here a burst drain) would send."""
    hook(api, f"{sink.url}/hook")
    workers(send_concurrency=2).dispatcher.stop(5)
    send(api, "10.0.0")
    drain()
    assert len(sink.requests) == 1
