"""Targets that hang past the timeout, reset connections, answer slowly, or stay down beyond the schedule."""

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Sink, wait_for
from tests.reliability.tools import Broker, ResetServer, arrivals, deliveries, signed_webhook

pytestmark = pytest.mark.e2e


def by_webhook(relay, uuid):
    return [d for d in deliveries(relay) if d["webhook"] == uuid]


def test_misbehaving_targets(relay_factory, sink):
    # The breaker pauses the down target at its seventh failure, the last of the schedule, so the run does not
    # wait out cool-downs (30 s, then 60 s) that tests/relay/delivery/test_breaker.py covers.
    relay = relay_factory(RELAY_BREAKER_FAILURES="7").start(workers=3)
    # hangs 3 s twice (read timeout 1 s), then answers at once
    sink.behaviour = lambda n, req: (200, 3 if n <= 2 else 0)
    hanging = signed_webhook(relay, sink.url + "/hang", timeout={"read": 1})
    resets = ResetServer(resets=2)
    resetting = signed_webhook(relay, resets.url + "/reset")
    slow_sink = Sink()
    slow_sink.behaviour = lambda n, req: (200, 0.5)  # slow, but within the timeout
    slow = signed_webhook(relay, slow_sink.url + "/slow", timeout={"read": 5})
    down_port = free_port()
    down = signed_webhook(relay, f"http://127.0.0.1:{down_port}/down")
    try:
        assert Broker(relay, retry=False).send("8.0.0") == 202

        def settled():
            ds = deliveries(relay)
            return len(ds) == 4 and all(d["status"] in ("succeeded", "failed") for d in ds)

        wait_for(settled, timeout=120, what="every delivery settled")

        (d,) = by_webhook(relay, hanging["uuid"])
        assert d["status"] == "succeeded" and len(d["attempts"]) == 3
        assert [a["error"] for a in d["attempts"][:2]] == ["timed out: ReadTimeout"] * 2
        assert arrivals(sink)[d["id"]] == 3  # each repeat is explained by a timed-out attempt

        (d,) = by_webhook(relay, resetting["uuid"])
        assert d["status"] == "succeeded" and len(d["attempts"]) == 3 and resets.served == 1
        assert all(a["error"].startswith("connection failed") for a in d["attempts"][:2])

        (d,) = by_webhook(relay, slow["uuid"])
        assert d["status"] == "succeeded" and len(d["attempts"]) == 1
        assert d["attempts"][0]["duration_ms"] >= 500

        (d,) = by_webhook(relay, down["uuid"])
        assert d["status"] == "failed" and len(d["attempts"]) == 7  # the whole schedule, then failed
        assert all(a["error"].startswith("connection failed") for a in d["attempts"])
        back = Sink(port=down_port)  # the target comes back: replay
        try:
            # Seven failures in a row paused the target (the circuit breaker); a person resumes it, then replays.
            assert relay.call("GET", f"/webhooks/{down['uuid']}").json()["state"] == "paused"
            assert relay.call("POST", f"/webhooks/{down['uuid']}/resume").status_code == 200
            replay = relay.call("POST", f"/deliveries/{d['id']}/replay")
            assert replay.status_code == 202
            wait_for(lambda: relay.call("GET", f"/deliveries/{replay.json()['id']}").json()["status"] == "succeeded",
                     timeout=60, what="replay delivered")
            assert len(back.requests) == 1 and back.requests[0]["path"] == "/down"
        finally:
            back.close()
    finally:
        resets.close()
        slow_sink.close()
