"""Processes killed under load: every worker, the web server mid-burst; and metrics and logs across processes."""

import json
import os
import signal
import time
from collections import Counter

import pytest

from tests.e2e.conftest import cmdline, wait_for
from tests.reliability.tools import Broker, arrivals, deliveries, metric_value, signed_webhook, versions_arrived

pytestmark = pytest.mark.e2e


def workers_of(relay) -> list[int]:
    return [p for p in relay.descendants() if "relay.ops.cli worker" in cmdline(p)]


def test_all_workers_killed_and_restarted_under_load(relay_factory, sink):
    """150 events; every worker process SIGKILLed twice while sends are in flight."""
    relay = relay_factory().start(workers=3)
    sink.behaviour = lambda n, req: (200, 0.05)  # keep sends in flight when the kill lands
    signed_webhook(relay, sink.url + "/hook")
    versions = [f"1.0.{i}" for i in range(150)]
    broker = Broker(relay)
    sending = broker.send_many(versions, threads=3)
    killed = 0
    in_flight: list[set[str]] = []  # per kill: sends that reached the target but were not recorded yet
    for after in (20, 80):
        wait_for(lambda a=after: len(sink.requests) >= a, timeout=120, what=f"{after} arrivals")
        for pid in workers_of(relay):
            os.kill(pid, signal.SIGKILL)
            killed += 1
        # Every worker is dead now, so nothing more is recorded until they restart: what arrived and is not
        # succeeded was in flight when the kill landed (a worker keeps many sends in flight).
        time.sleep(1)  # let sends already on the wire land; restarted workers only make this set larger
        in_flight.append(set(arrivals(sink)) - {d["id"] for d in deliveries(relay, "succeeded")})
    sending.join(180)
    assert not sending.is_alive() and broker.unexpected == [] and set(broker.accepted) == set(versions)
    wait_for(lambda: len(deliveries(relay, "succeeded")) == 150, timeout=180,
             what=lambda: f"all 150 delivered; statuses {Counter(d['status'] for d in deliveries(relay))}")
    assert versions_arrived(sink) == set(versions)  # lost: 0
    seen = arrivals(sink)
    assert set(seen) == {d["id"] for d in deliveries(relay)}
    repeats = sum(n - 1 for n in seen.values())
    # A repeat only where a worker died mid-send (in flight at a kill), or where a send outlived its (3 s) lease
    # on a loaded machine: the late worker's attempt is then counted as lease-lost and not recorded.
    lease_lost = metric_value(relay.call("GET", "/metrics").text, "pact_relay_delivery_attempts_total",
                              result="lease-lost")
    assert repeats <= sum(len(ids) for ids in in_flight) + lease_lost
    assert all(len(d["attempts"]) == 1 for d in deliveries(relay))  # one recorded attempt each
    print(f"\nworkers killed: {killed}; lease lost: {lease_lost:.0f}; events 150; arrived {len(seen)}; "
          f"repeats {repeats}; lost 0")


def test_web_server_killed_during_an_intake_burst(relay_factory, sink):
    """200 events from 4 broker threads that retry the same body; gunicorn SIGKILLed twice mid-burst."""
    relay = relay_factory().start(web_workers=2)
    signed_webhook(relay, sink.url + "/hook")
    broker = Broker(relay)
    versions = [f"2.0.{i}" for i in range(200)]
    sending = broker.send_many(versions, threads=4)
    for after in (40, 120):
        wait_for(lambda a=after: len(broker.accepted) >= a, timeout=120, what=f"{after} accepted")
        (master,) = [p for p in relay.descendants() if "gunicorn" in cmdline(p) and _parent(p) == relay.proc.pid]
        os.kill(master, signal.SIGKILL)
        for worker in [p for p in relay.descendants() if "gunicorn" in cmdline(p)]:
            os.kill(worker, signal.SIGKILL)  # the whole web server dies at once, mid-request
    sending.join(240)
    assert not sending.is_alive() and broker.unexpected == []
    assert set(broker.accepted) == set(versions)
    assert len(set(broker.accepted.values())) == 200  # each body stored once, whatever the retries
    wait_for(lambda: len(deliveries(relay, "succeeded")) == 200, timeout=120, what="all 200 delivered")
    assert versions_arrived(sink) == set(versions)
    assert len(arrivals(sink)) == 200
    failures = {k: v for k, v in broker.answers.items() if k not in (200, 202)}
    print(f"\nbroker answers: {dict(broker.answers)}; refused or cut and retried: {sum(failures.values())}")


def _parent(pid: int) -> int:
    from pathlib import Path

    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def test_metrics_add_up_across_processes_and_logs_follow_a_delivery(relay_factory, sink):
    """2 web processes and 2 workers; every scrape, whichever process answers, counts the same."""
    relay = relay_factory(RELAY_LOG_LEVEL="INFO", RELAY_LOG_FORMAT="json").start(workers=2, web_workers=2)
    hook = signed_webhook(relay, sink.url + "/hook")
    broker = Broker(relay, retry=False)
    for i in range(30):
        assert broker.send(f"3.0.{i}") == 202
    assert broker.send("3.0.0") == 200  # a repeat
    wait_for(lambda: len(deliveries(relay, "succeeded")) == 30, timeout=60, what="30 delivered")
    # A sender counts its attempt just after the group commit that recorded it: wait for the last count.
    wait_for(lambda: metric_value(relay.call("GET", "/metrics").text, "pact_relay_delivery_attempts_total",
                                  result="succeeded") == 30, timeout=30, what="the last attempt counted")
    for _ in range(6):  # several scrapes, answered by either web process
        text = relay.call("GET", "/metrics").text
        assert metric_value(text, "pact_relay_events_received_total", outcome="stored") == 30
        assert metric_value(text, "pact_relay_events_received_total", outcome="duplicate") == 1
        assert metric_value(text, "pact_relay_delivery_attempts_total", result="succeeded") == 30
        assert metric_value(text, "pact_relay_delivery_attempt_duration_seconds_count") == 30
        assert metric_value(text, "pact_relay_deliveries", integration="request", status="succeeded") == 30
        assert metric_value(text, "pact_relay_events_stored", event_name="contract_published") == 30
        assert metric_value(text, "pact_relay_deliveries_due") == 0
        assert metric_value(text, "pact_relay_up", component="database") == 1
    assert "sign" not in text and "whsec_" not in text
    delivery = deliveries(relay)[0]
    lines = [json.loads(line) for line in relay.log.read_text().splitlines() if line.startswith("{")]
    about = [entry for entry in lines if delivery["id"] in json.dumps(entry)]
    event_line = next(e for e in about if e["logger"] == "relay.web.api.events")
    attempt_line = next(e for e in about if e["logger"] == "relay.delivery.runner")
    assert event_line["event_id"] == attempt_line["event_id"] == delivery["event"]
    assert attempt_line["webhook"] == hook["uuid"] and attempt_line["status"] == "succeeded"
    assert event_line["pid"] != attempt_line["pid"]  # followed across processes by its ids
    assert relay.admin_token() not in relay.log.read_text()
