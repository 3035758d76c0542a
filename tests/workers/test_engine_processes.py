"""The delivery engine as real processes: SIGKILL with 200 sends in flight, SIGTERM, a worker with a skewed clock,
and due retries when a worker host dies (SQLite and PostgreSQL, real Redis, real HTTP on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rq import Worker
from sqlalchemy import update

from relay.delivery import leases, queue
from relay.models import Delivery
from tests.conftest import EVENTS_DIR
from tests.e2e.conftest import BIN, ROOT, cmdline, wait_for

pytestmark = pytest.mark.e2e
FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


@pytest.fixture(params=["sqlite", "postgresql"])
def relay_env(request) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    return {"RELAY_DATABASE_URL": request.getfixturevalue("fresh_pg_url")}


def version_of(req: dict) -> str:
    return req["path"].rsplit("v=", 1)[-1]


def webhook(relay, sink, **extra) -> None:
    resp = relay.call("POST", "/webhooks", json={
        "events": [{"name": "contract_published"}],
        "request": {"method": "POST", "url": sink.url + "/hook?v=${pactbroker.consumerVersionNumber}"}, **extra})
    assert resp.status_code == 201, resp.text


def send_events(relay, versions: list[str], threads: int = 4) -> None:
    body = json.loads((EVENTS_DIR / "contract_published.json").read_text())

    def post(chunk):
        for v in chunk:
            assert relay.call("POST", "/events", json={**body, "consumerVersionNumber": v}).status_code == 202

    workers = [threading.Thread(target=post, args=(versions[i::threads],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)


def deliveries(relay) -> list[dict]:
    return relay.call("GET", "/deliveries?limit=500").json()["deliveries"]


def worker_pids(relay) -> list[int]:
    return [p for p in relay.descendants() if "relay.ops.cli worker" in cmdline(p)]


def test_sigkill_with_200_sends_in_flight(relay_factory, relay_env, sink):
    """Every delivery arrives at least once; none is sent again after its 2xx was recorded; no lease is stuck."""
    first_seen: set[str] = set()

    def behaviour(n, req):  # the first send of each version hangs until the kill has landed
        v = version_of(req)
        hang = v not in first_seen
        first_seen.add(v)
        return 200, 110 if hang else 0

    sink.behaviour = behaviour
    relay = relay_factory(RELAY_SEND_CONCURRENCY="250", RELAY_HOST_CONCURRENCY="250", **relay_env).start(workers=1)
    webhook(relay, sink, maxInFlight=250, timeout={"read": 120})  # the hung sends outlast a loaded machine's posting
    versions = [f"5.0.{i}" for i in range(200)]
    send_events(relay, versions)
    wait_for(lambda: sink.now.get("", 0) >= 200, timeout=120, what=lambda: f"200 in flight ({sink.now})")
    (pid,) = worker_pids(relay)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: Counter(d["status"] for d in deliveries(relay)) == {"succeeded": 200}, timeout=120,
             what=lambda: f"all delivered: {Counter(d['status'] for d in deliveries(relay))}")
    time.sleep(2)  # anything sent again after success would arrive now
    arrived = Counter(version_of(r) for r in sink.requests)
    assert set(arrived) == set(versions) and max(arrived.values()) <= 2  # at least once; again only if killed
    for d in deliveries(relay):
        (attempt,) = d["attempts"]
        recorded = datetime.fromisoformat(attempt["at"]).timestamp()
        version = d["attempts"][0]["request"]["url"].rsplit("v=", 1)[-1]
        assert not [r for r in sink.requests if version_of(r) == version and r["at"] > recorded + 0.5]
    with relay_session(relay) as session:
        assert session.query(Delivery).filter(Delivery.lease_owner.is_not(None)).count() == 0


def test_sigterm_finishes_sends_in_flight_and_gives_back_the_rest(relay_factory, relay_env, sink):
    sink.behaviour = lambda n, req: (200, 2)
    relay = relay_factory(**relay_env).start(workers=1)
    webhook(relay, sink, maxInFlight=2)
    versions = [f"6.0.{i}" for i in range(10)]
    send_events(relay, versions, threads=1)
    wait_for(lambda: sink.now.get("", 0) == 2, timeout=60, what="two sends in flight, eight waiting")
    assert relay.stop(signal.SIGTERM) == 0
    with relay_session(relay) as session:
        rows = session.query(Delivery).all()
        assert all(d.lease_owner is None for d in rows)  # nothing keeps a lease after the stop
        done = [d for d in rows if d.status == "succeeded"]
        assert len(done) == len(sink.requests) >= 2  # what was in flight finished and was recorded
        assert all(d.attempts_made == 0 for d in rows if d.status == "pending")  # given back unspent
    relay.start(workers=1)
    wait_for(lambda: Counter(d["status"] for d in deliveries(relay)) == {"succeeded": 10}, timeout=90,
             what="the rest after the restart")
    assert sorted(version_of(r) for r in sink.requests) == sorted(versions)  # each exactly once


def test_due_retries_go_out_when_a_worker_host_dies(relay_factory, relay_env, sink):
    """The retry's time is in the database; whichever worker lives queues it (RQ's scheduler lock is not used)."""
    sink.behaviour = lambda n, req: (503, 0) if n <= 3 else (200, 0)
    relay = relay_factory(RELAY_RETRY_SCHEDULE="4 4 4", **relay_env).start(workers=3)
    webhook(relay, sink)
    send_events(relay, ["7.0.0", "7.0.1", "7.0.2"], threads=1)
    wait_for(lambda: len(sink.requests) >= 3, timeout=60, what="three first attempts (503)")
    failed_at = time.time()
    for pid in worker_pids(relay)[:2]:  # two of three worker hosts die, whichever held any lock
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: Counter(d["status"] for d in deliveries(relay)) == {"succeeded": 3}, timeout=60,
             what="the retries")
    assert max(r["at"] for r in sink.requests) - failed_at < 30  # seconds after their time, not RQ's 600 s


@pytest.mark.skipif(not FAKETIME.exists(), reason="needs Debian's faketime package (.ci/run installs it)")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_whose_clock_runs_90_s_ahead(runtime, api, sink, tmp_path):
    """Leases and due times are compared on the database's clock: a skewed worker neither takes a lease another
    worker holds nor sends a retry early. (SQLite is embedded: its clock is its one host's.)"""
    webhook_uuid = api.post("/webhooks", json={
        "events": [{"name": "contract_published"}],
        "request": {"method": "POST", "url": sink.url + "/hook?v=${pactbroker.consumerVersionNumber}"}}).json["uuid"]
    assert webhook_uuid
    event = json.loads((EVENTS_DIR / "contract_published.json").read_text())
    assert api.post("/events", json={**event, "consumerVersionNumber": "8.0.0"}).status_code == 202
    with runtime.sessions.begin() as session:
        (held,) = leases.claim(session, runtime.settings, [d.id for d in session.query(Delivery)])
        lease_until = session.get(Delivery, held.delivery_id).lease_until
    # The wall clock runs ahead, as on a host whose NTP is off; monotonic clocks (timeouts, waits) are not a
    # host's time of day and stay real.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RELAY_DATABASE_URL": runtime.settings.database_url,
           "RELAY_REDIS_URL": runtime.settings.redis_url, "RELAY_DATA_DIR": str(tmp_path / "skewed"),
           "RELAY_SECRET_KEY": runtime.settings.secret_key,
           "RELAY_ENCRYPTION_KEYS": ",".join(runtime.settings.encryption_keys),
           "RELAY_ALLOW_PRIVATE_NETWORKS": "true", "RELAY_LOG_FORMAT": "json",
           "LD_PRELOAD": str(FAKETIME), "FAKETIME": "+90s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    log = tmp_path / "skewed.log"
    proc = subprocess.Popen([BIN, "worker"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        (worker,) = wait_for(lambda: Worker.all(connection=runtime.redis), timeout=60, what="the skewed worker")
        assert worker.birth_date.timestamp() - time.time() > 80  # its clock really runs ahead
        queue.enqueue(runtime.redis, runtime.settings.queue_name, [(held.delivery_id, 0)])  # a redelivered job
        wait_for(lambda: runtime.redis.llen(f"rq:queue:{runtime.settings.queue_name}") == 0, what="job taken")
        time.sleep(3)  # several of its sweeper passes
        assert sink.requests == []  # the lease (30+ s left on the database clock) is not taken over
        with runtime.sessions.begin() as session:  # the holder failed it: a retry due in 30 s
            now = leases.db_now(session)
            session.execute(update(Delivery).values(status="retrying", attempts_made=1, lease_until=None,
                                                    lease_owner=None, next_attempt_at=now + timedelta(seconds=30)))
        queue.enqueue(runtime.redis, runtime.settings.queue_name, [(held.delivery_id, 1)])
        time.sleep(4)
        assert sink.requests == []  # not sent early: 30 s is not up on the database clock
        with runtime.sessions.begin() as session:
            session.execute(update(Delivery).values(next_attempt_at=leases.db_now(session)))
        wait_for(lambda: len(sink.requests) == 1, timeout=30, what="the retry once due")  # the worker does work
        assert lease_until > now
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class relay_session:
    """A database session on a relay's own database (the embedded SQLite file, or its PostgreSQL)."""

    def __init__(self, relay):
        from relay.config import Settings
        from relay.db import make_engine, make_sessionmaker

        env = {k: v for k, v in relay.env.items() if k.startswith("RELAY_")}
        settings = Settings.from_env(env)
        self.engine = make_engine(settings)
        self.session = make_sessionmaker(self.engine)()

    def __enter__(self):
        return self.session

    def __exit__(self, *exc):
        self.session.close()
        self.engine.dispose()
