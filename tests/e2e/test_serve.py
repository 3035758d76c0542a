"""`pact-relay serve` end to end: real processes, embedded Redis, every sample event, faults survived."""

import json
import os
import signal

import pytest
import redis

from tests.conftest import EVENTS_DIR, sample_events
from tests.e2e.conftest import alive, cmdline, wait_for

pytestmark = pytest.mark.e2e
ALL_EVENTS = [{"name": name} for name in sample_events()]


def create_webhook(relay, sink, events=ALL_EVENTS):
    resp = relay.call("POST", "/webhooks", json={
        "description": "e2e sink", "events": events,
        "request": {"method": "POST", "url": sink.url + "/hook/${pactbroker.eventName}",
                    "headers": {"Content-Type": "application/json", "X-Token": "${user.sinkToken}"},
                    "body": {"event": "${pactbroker.eventName}", "consumer": "${pactbroker.consumerName}",
                             "provider": "${pactbroker.providerName}", "pact": "${pactbroker.pactUrl}",
                             "version": "${pactbroker.consumerVersionNumber}"}}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def statuses(relay):
    return [d["status"] for d in relay.call("GET", "/deliveries?limit=500").json()["deliveries"]]


@pytest.fixture(params=["sqlite", "postgresql"])
def relay(request, relay_factory):
    if request.param == "sqlite":
        return relay_factory().start()  # the embedded default: no database settings at all
    return relay_factory(RELAY_DATABASE_URL=request.getfixturevalue("fresh_pg_url")).start()


def test_every_sample_event_arrives_at_the_sink(relay, sink):
    secret = relay.call("POST", "/secrets", json={"name": "sinkToken", "value": "s1nk-t0ken-value"})
    assert secret.status_code == 201
    create_webhook(relay, sink)
    sent = {}
    for path in sorted(EVENTS_DIR.glob("*.json")):
        event = json.loads(path.read_text())
        resp = relay.call("POST", "/events", json=event)
        assert resp.status_code == 202 and resp.json()["deliveries"] == 1
        sent[event["eventName"]] = event
    wait_for(lambda: len(sink.requests) == len(sent), what="all deliveries at the sink")
    for req in sink.requests:
        body = json.loads(req["body"])
        event = sent[body["event"]]
        assert req["path"] == f"/hook/{event['eventName']}"
        assert req["headers"]["X-Token"] == "s1nk-t0ken-value"
        assert body == {"event": event["eventName"], "consumer": event["consumerName"],
                        "provider": event["providerName"], "pact": event["pactUrl"],
                        "version": event["consumerVersionNumber"]}
    wait_for(lambda: statuses(relay) == ["succeeded"] * len(sent), what="deliveries recorded as succeeded")
    assert "s1nk-t0ken-value" not in relay.call("GET", "/deliveries").text
    assert "s1nk-t0ken-value" not in relay.log.read_text()


def test_worker_sigkilled_mid_send_is_delivered_later(relay, sink):
    sink.behaviour = lambda n, req: (200, 5 if n == 1 else 0)  # the first send hangs while we kill
    relay.call("POST", "/secrets", json={"name": "sinkToken", "value": "x-value"})
    create_webhook(relay, sink)
    assert relay.call("POST", "/events", json=json.loads((EVENTS_DIR / "contract_published.json").read_text())) \
        .status_code == 202
    wait_for(lambda: len(sink.requests) == 1, what="first send in flight")
    workers = [p for p in relay.descendants() if "relay.ops.cli worker" in cmdline(p)]
    assert len(workers) >= 2  # two workers, and the RQ scheduler one of them forked
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: statuses(relay) == ["succeeded"], timeout=40, what="delivery after the kill")
    assert len(sink.requests) == 2  # at least once: the killed attempt, then the one that was recorded
    (delivery,) = relay.call("GET", "/deliveries").json()["deliveries"]
    assert len(delivery["attempts"]) == 1


def test_redis_flushed_and_every_process_restarted_loses_nothing(relay_factory, sink):
    relay = relay_factory().start()
    sink.behaviour = lambda n, req: (503, 0)
    relay.call("POST", "/secrets", json={"name": "sinkToken", "value": "x-value"})
    create_webhook(relay, sink)
    for i in range(5):
        event = json.loads((EVENTS_DIR / "contract_published.json").read_text())
        event["consumerVersionNumber"] = f"1.0.{i}"
        assert relay.call("POST", "/events", json=event).status_code == 202
    wait_for(lambda: len(sink.requests) >= 5, what="first attempts (503)")
    redis.Redis(unix_socket_path=str(relay.env["RELAY_DATA_DIR"] + "/redis.sock")).flushall()
    assert relay.stop() == 0
    sink.behaviour = lambda n, req: (200, 0)
    relay = relay_factory().start()  # same data dir: same database, fresh embedded Redis
    wait_for(lambda: statuses(relay) == ["succeeded"] * 5, timeout=40, what="all five delivered after restart")
    versions = {json.loads(r["body"])["version"] for r in sink.requests if r is not None}
    assert versions == {f"1.0.{i}" for i in range(5)}


def test_sigterm_stops_every_process(relay_factory):
    relay = relay_factory().start()
    tree = relay.descendants()
    names = " ".join(cmdline(p) for p in tree)
    assert "gunicorn" in names and "relay.ops.cli worker" in names and "valkey-server" in names
    assert relay.stop(signal.SIGINT) == 0
    wait_for(lambda: not any(alive(p) for p in tree), timeout=10, what="no orphan processes")


def test_ctrl_c_in_a_terminal_stops_in_order_without_errors(relay_factory):
    """A terminal sends SIGINT to the whole foreground group; Redis must still outlive the workers."""
    relay = relay_factory().start()
    tree = relay.descendants()
    os.killpg(relay.proc.pid, signal.SIGINT)
    assert relay.proc.wait(30) == 0
    wait_for(lambda: not any(alive(p) for p in tree), timeout=10, what="no orphan processes")
    log = relay.log.read_text()
    assert "Traceback" not in log and "cannot reach Redis" not in log, log[-3000:]


def test_sigkill_of_the_supervisor_leaves_no_orphans(relay_factory):
    relay = relay_factory().start()
    tree = relay.descendants()
    relay.proc.kill()
    relay.proc.wait()
    wait_for(lambda: not any(alive(p) for p in tree), timeout=20, what="children gone with their parent")
