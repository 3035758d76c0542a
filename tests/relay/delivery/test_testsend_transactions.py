"""Issue 23 #2: no network call runs inside a database transaction (a Test send never holds SQLite's write lock)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from relay.delivery.attempt import attempt
from relay.models import Webhook
from tests.conftest import sample_event
from tests.e2e.conftest import wait_for


class HeldTarget:
    """A loopback target that keeps every request waiting until `release` is set (at most 60 s)."""

    def __init__(self):
        self.arrived = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with target.lock:
                    target.arrived += 1
                target.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held():
    target = HeldTarget()
    yield target
    target.close()


def test_intake_and_other_test_sends_go_on_while_a_test_send_waits_on_its_target(app, api, tokens, held):
    assert api.post("/secrets", json={"name": "HookToken", "value": "s3cr3t-value"}).status_code == 201
    hook = api.post("/webhooks", json={"events": [{"name": "contract_published"}], "request": {
        "method": "POST", "url": held.url, "headers": {"X-Token": "${user.HookToken}"},
        "body": {"consumer": "${pactbroker.consumerName}"}}})
    assert hook.status_code == 201, hook.json
    results: list[tuple[int, dict]] = []

    def execute():
        client = app.test_client()  # a request of its own, as a second browser tab would be
        resp = client.post(f"/webhooks/{hook.json['uuid']}/execute",
                           headers={"Authorization": f"Bearer {tokens['write']}"})
        results.append((resp.status_code, resp.json))

    sends = [threading.Thread(target=execute) for _ in range(3)]
    for send in sends:
        send.start()
    # Three Test sends reach the target at once: none waits for another's transaction.
    wait_for(lambda: held.arrived == 3, timeout=60, what=lambda: f"3 test sends in flight (saw {held.arrived})")
    event = api.post("/events", json=sample_event("contract_published"),
                     headers={"Authorization": f"Bearer {tokens['intake']}"})
    assert event.status_code == 202, event.json
    assert results == [] and held.arrived == 3, "the event was accepted only after the test sends had finished"
    held.release.set()
    for send in sends:
        send.join(60)
    assert [(status, body["success"]) for status, body in results] == [(200, True)] * 3
    audit = api.get("/audit?type=webhook.executed").json["events"]
    assert len(audit) == 3


def test_a_send_refuses_to_start_inside_an_open_transaction(runtime, held):
    hook = Webhook(uuid="in-a-transaction", kind="request", events=["contract_published"],
                   config={"method": "POST", "url": held.url})
    held.release.set()
    with runtime.sessions() as session, session.begin():
        session.get(Webhook, "no-such-webhook")  # the transaction is open
        with pytest.raises(RuntimeError, match="transaction"):
            attempt(session, runtime, hook, sample_event("contract_published"), "d-1")
    assert held.arrived == 0
