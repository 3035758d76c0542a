"""Redis and the database taken away under load: intake keeps its promises and everything recovers by itself."""

import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests

from tests.conftest import PG_ADMIN_URL, free_port, start_redis
from tests.e2e.conftest import wait_for
from tests.reliability.tools import Broker, TcpProxy, arrivals, deliveries, signed_webhook, versions_arrived

pytestmark = pytest.mark.e2e
# How long each dependency stays away; RELIABILITY_OUTAGE=30 for the full 30 seconds.
OUTAGE = float(os.environ.get("RELIABILITY_OUTAGE", "8"))


def test_redis_stopped_under_load(relay_factory, sink, tmp_path):
    port = free_port()
    redis = start_redis(port, tmp_path)
    relay = relay_factory(RELAY_REDIS_URL=f"redis://127.0.0.1:{port}/0").start()
    signed_webhook(relay, sink.url + "/hook")
    broker = Broker(relay, retry=False)
    assert all(broker.send(f"4.0.{i}") == 202 for i in range(20))
    wait_for(lambda: len(sink.requests) >= 20, timeout=60, what="first 20 delivered")
    redis.terminate()
    redis.wait(10)
    during, started = [], time.monotonic()
    while time.monotonic() - started < OUTAGE:  # a steady trickle while Redis is away
        during.append(broker.send(f"4.1.{len(during)}"))
        time.sleep(0.1)
    assert set(during) == {202}, broker.answers  # intake never depends on Redis
    ready = requests.get(f"{relay.url}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("unavailable")
    redis = start_redis(port, tmp_path)  # back, and empty: the sweeper re-enqueues from the database
    try:
        total = 20 + len(during)
        wait_for(lambda: len(deliveries(relay, "succeeded")) == total, timeout=150, what=f"all {total} delivered")
        assert versions_arrived(sink) == set(broker.accepted)
        print(f"\nRedis down {OUTAGE:.0f}s: sent {total}, accepted {total}, arrived {len(arrivals(sink))}, lost 0")
    finally:
        relay.stop()
        redis.terminate()


@pytest.fixture
def proxied_pg(fresh_pg_url):
    """The fresh database, reached through a proxy the test can cut."""
    proxy = TcpProxy(("127.0.0.1", 5432))
    yield proxy, fresh_pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    proxy.cut()


def test_database_unavailable_answers_503_stores_nothing_and_recovers(relay_factory, sink, proxied_pg):
    proxy, url = proxied_pg
    relay = relay_factory(RELAY_DATABASE_URL=url).start()
    signed_webhook(relay, sink.url + "/hook")
    broker = Broker(relay, retry=False)
    token = relay.admin_token()
    assert all(broker.send(f"5.0.{i}") == 202 for i in range(20))
    proxy.cut()
    refused = []
    for i in range(20):
        resp = requests.post(f"{relay.url}/events", data=broker.body(f"5.1.{i}"), timeout=30,
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        refused.append((resp.status_code, resp.headers.get("Retry-After")))
    assert {status for status, _ in refused} == {503}
    assert all(after and after.isdigit() for _, after in refused)
    time.sleep(OUTAGE)
    proxy.restore()
    # No restart: the relay's pools reconnect by themselves. Nothing from the outage was half stored:
    wait_for(lambda: relay.call("GET", "/deliveries?limit=500").status_code == 200, timeout=60, what="recovery")
    assert len(deliveries(relay)) == 20
    # ...so the broker's retries of the refused bodies are new events (202), not repeats (200).
    assert all(broker.send(f"5.1.{i}") == 202 for i in range(20))
    wait_for(lambda: len(deliveries(relay, "succeeded")) == 40, timeout=120, what="all 40 delivered")
    assert versions_arrived(sink) == {f"5.{a}.{i}" for a in (0, 1) for i in range(20)}


def test_database_connections_cut_under_load_recover_without_restart(relay_factory, sink, proxied_pg):
    """Every connection dropped twice (as a PostgreSQL restart does) while a broker keeps sending and retrying."""
    proxy, url = proxied_pg
    relay = relay_factory(RELAY_DATABASE_URL=url).start(workers=2, web_workers=2)
    signed_webhook(relay, sink.url + "/hook")
    broker = Broker(relay)
    versions = [f"6.0.{i}" for i in range(150)]
    sending = broker.send_many(versions, threads=3)
    for after in (30, 90):
        wait_for(lambda a=after: len(broker.accepted) >= a, timeout=120, what=f"{after} accepted")
        proxy.cut()
        time.sleep(OUTAGE / 2)
        proxy.restore()
    sending.join(240)
    assert not sending.is_alive() and broker.unexpected == []
    assert set(broker.accepted) == set(versions) and len(set(broker.accepted.values())) == 150
    wait_for(lambda: len(deliveries(relay, "succeeded")) == 150, timeout=180, what="all 150 delivered")
    assert versions_arrived(sink) == set(versions)
    print(f"\nbroker answers: {dict(broker.answers)}; arrived {len(arrivals(sink))} of 150; lost 0")


def pg_cluster(action: str) -> None:
    version = next(Path("/etc/postgresql").iterdir()).name
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True,
                   capture_output=True, timeout=120)


@pytest.mark.slow
def test_real_postgresql_restart_under_load(relay_factory, sink, fresh_pg_url):
    """SLOW, opt-in (`-m slow`, never with -n): stops the shared PostgreSQL server, then starts it again."""
    relay = relay_factory(RELAY_DATABASE_URL=fresh_pg_url).start()
    signed_webhook(relay, sink.url + "/hook")
    broker = Broker(relay)
    versions = [f"7.0.{i}" for i in range(100)]
    sending = broker.send_many(versions, threads=2)
    wait_for(lambda: len(broker.accepted) >= 30, timeout=120, what="30 accepted")
    try:
        pg_cluster("stop")
        time.sleep(OUTAGE)
    finally:
        pg_cluster("start")
        wait_for(lambda: _pg_up(), timeout=60, what="PostgreSQL back")
    sending.join(240)
    assert not sending.is_alive() and broker.unexpected == []
    assert set(broker.accepted) == set(versions) and len(set(broker.accepted.values())) == 100
    wait_for(lambda: len(deliveries(relay, "succeeded")) == 100, timeout=180, what="all 100 delivered")
    assert versions_arrived(sink) == set(versions)
    print(f"\nPostgreSQL restarted: broker answers {dict(broker.answers)}; lost 0")


def _pg_up() -> bool:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=2).close()
        return True
    except psycopg.Error:
        return False
