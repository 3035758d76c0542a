"""The first Slack message and GitHub status of a failed verification carry why it failed: the first send waits for
the broker's answer up to the broker timeout, a lost read is asked for again, and a down broker holds nothing."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from integrations import github as gh
from relay.delivery import details, queue
from relay.models import Delivery, Event
from tests.integrations.fakes import app_key_pem, serve_github, serve_slack
from tests.relay.broker.test_explain import failed_event as explained_event
from tests.relay.broker.test_explain import fixture, serve_result, served_pact
from workers import sweeper
from workers.worker import RelayWorker, send_fresh


@pytest.fixture
def broker_timeout() -> float:
    return 10.0  # the bound of the wait: long enough that a loaded machine never reaches it unless a test means to


FIRST = "body $.age: Expected '73' (String) to be equal to 73 (Integer)"


def subscribe(api, target) -> None:
    serve_slack(target)
    serve_github(target)
    api.post("/secrets", json={"name": "slackHook", "value": target.url_for("/services/T/B/X")})
    for config in ({"slack": {"webhook_url": "${user.slackHook}"}},
                   {"github": {"repository": "acme/matching", "token": "ghp_token", "base_url": target.url_for("")}}):
        created = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}], **config})
        assert created.status_code == 201, created.json


def sent(target) -> dict[str, dict]:
    """The Slack message and the GitHub status the target received, by kind."""
    out = {}
    for request, _ in target.log:
        kind = "slack" if request.path.startswith("/services/") else "github"
        assert kind not in out, "sent twice"
        out[kind] = json.loads(request.get_data())
    return out


def failed_event(base: str) -> dict:
    return {**explained_event(base), "consumerVersionNumber": "9fceb02"}  # a commit GitHub can take a status for


def slack_text(message: dict) -> str:
    return json.dumps(message)


def lose_the_read(runtime, event_id: str) -> None:
    """As if Redis had been away when intake asked for the read: no job, no mark."""
    queue.queue(runtime.redis, runtime.settings.queue_name).empty()
    runtime.redis.delete(queue.EXPLAINING + event_id)


def waiting(runtime) -> list[Delivery]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Delivery)))


def test_the_first_slack_message_and_status_carry_the_first_mismatch(api, httpserver, target, drain, broker_url):
    serve_result(httpserver, fixture("rust.json"), served_pact())
    subscribe(api, target)
    assert api.as_role("intake").post("/events", json=failed_event(broker_url)).status_code == 202
    drain()
    messages = sent(target)
    assert "Mismatches (4)" in slack_text(messages["slack"]) and FIRST in slack_text(messages["slack"])
    assert messages["github"]["state"] == "failure"
    assert messages["github"]["description"] == f"a request for an alligator: {FIRST} (+3 more)"
    deliveries = api.get("/deliveries").json["deliveries"]
    assert {d["status"] for d in deliveries} == {"succeeded"}
    assert all(len(d["attempts"]) == 1 for d in
               (api.get(f"/deliveries/{d['id']}").json for d in deliveries)), "waiting spent no attempt"


def test_the_wait_is_bounded_by_the_broker_timeout(api, httpserver, target, runtime, broker_url):
    serve_result(httpserver, fixture("rust.json"), served_pact())
    subscribe(api, target)
    api.as_role("intake").post("/events", json=failed_event(broker_url))
    send_fresh(runtime)  # the read has not run: both deliveries wait, nothing sent
    assert target.log == []
    with runtime.sessions() as session:
        received = session.scalar(select(Event.received_at))
    rows = waiting(runtime)
    assert len(rows) == 2
    for row in rows:
        assert row.status == "pending" and row.attempts_made == 0 and row.reason == details.WAITING
        assert received < row.next_attempt_at <= received + timedelta(seconds=runtime.settings.broker_timeout)


@pytest.mark.parametrize("broker_url", ["down"], indirect=True)
def test_a_broker_that_is_down_lets_the_message_go_at_once_saying_so(api, target, drain, broker_url):
    subscribe(api, target)
    api.as_role("intake").post("/events", json=failed_event(broker_url))
    drain()  # no sweeper in a burst: the refused read itself released the waiting deliveries
    messages = sent(target)
    assert "details unavailable: cannot reach the broker (ConnectionError)" in slack_text(messages["slack"])
    assert messages["github"]["description"].startswith("Pact verification by")


@pytest.mark.parametrize("broker_timeout", [1.0])
def test_a_read_never_done_lets_the_message_go_after_the_bound_saying_so(api, httpserver, target, runtime,
                                                                         broker_url):
    serve_result(httpserver, fixture("rust.json"), served_pact())
    subscribe(api, target)
    event = api.as_role("intake").post("/events", json=failed_event(broker_url)).json["event"]
    # A worker took the read and died: the job is gone, its mark not yet expired.
    queue.queue(runtime.redis, runtime.settings.queue_name).empty()
    send_fresh(runtime)
    assert runtime.redis.exists(queue.EXPLAINING + event)
    deadline = time.monotonic() + 30
    while len(target.log) < 2 and time.monotonic() < deadline:  # the sweeper queues them once due
        sweeper.sweep(runtime)
        RelayWorker(runtime).work(burst=True, logging_level="WARNING")
        time.sleep(0.05)
    messages = sent(target)
    assert "not read from the Pact Broker within 1 s" in slack_text(messages["slack"])
    assert messages["github"]["state"] == "failure"


def test_a_read_lost_at_intake_is_asked_for_by_the_waiting_delivery(api, httpserver, target, runtime, drain,
                                                                    broker_url):
    serve_result(httpserver, fixture("rust.json"), served_pact())
    subscribe(api, target)
    event = api.as_role("intake").post("/events", json=failed_event(broker_url)).json["event"]
    lose_the_read(runtime, event)
    drain()
    assert FIRST in slack_text(sent(target)["slack"])


def test_the_sweeper_asks_again_for_a_lost_read(api, httpserver, runtime, drain, broker_url):
    serve_result(httpserver, fixture("rust.json"), served_pact())
    event = api.as_role("intake").post("/events", json=failed_event(broker_url)).json["event"]
    lose_the_read(runtime, event)
    assert details.lost_reads(runtime, patience=0) == 1
    assert details.lost_reads(runtime, patience=0) == 0  # asked for: not again while that read may run
    drain()
    (pair,) = api.get("/status").json["pairs"]
    assert pair["verification"]["failure"]["mismatchCount"] == 4
    assert details.lost_reads(runtime, patience=0) == 0  # read: nothing lost


INSTALLATION_TOKEN = "ghs_fakeinstallationtoken"  # what serve_github grants


def test_the_check_run_lists_every_failing_interaction_and_no_attempt_shows_a_secret(api, httpserver, target,
                                                                                       drain, broker_url):
    pem = app_key_pem()
    gh._tokens.clear()
    serve_result(httpserver, fixture("ruby.json"), served_pact())
    serve_github(target)
    assert api.post("/secrets", json={"name": "AppKey", "value": pem}).status_code in (200, 201)
    created = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}], "github": {
        "repository": "acme/matching", "app_id": "4242", "private_key": "${user.AppKey}", "installation_id": "77",
        "check_run": True, "base_url": target.url_for("")}})
    assert created.status_code == 201, created.json
    assert api.as_role("intake").post("/events", json=failed_event(broker_url)).status_code == 202
    drain()
    (run,) = [json.loads(r.get_data()) for r, _ in target.log if r.path.endswith("/check-runs")]
    assert (run["conclusion"], run["output"]["title"]) == ("failure", "3 failing interactions, 4 mismatches")
    summary = run["output"]["summary"]
    for text in ("### 1. a request for an alligator", "### 2. a request for a missing alligator",
                 "### 3. a request for all alligators", "Provider states: there are alligators",
                 "(keys present are: name, firstName, age) at $", "expected 404 but was 200 (expected 404, actual 200)",
                 'Expected 73 but got "73" at $.age', "(keys present are: nom)"):
        assert text in summary
    (delivery,) = api.get("/deliveries").json["deliveries"]
    shown = api.get(f"/deliveries/{delivery['id']}").json
    assert delivery["status"] == "succeeded" and len(shown["attempts"]) == 1
    recorded = json.dumps(shown)
    assert "check-runs" in recorded and "check run pact/" in recorded
    key_body = "".join(pem.strip().splitlines()[1:-1])
    assert INSTALLATION_TOKEN not in recorded and key_body[:40] not in recorded and "PRIVATE KEY" not in recorded
