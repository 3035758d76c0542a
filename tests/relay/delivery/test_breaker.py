"""The circuit breaker on a real worker: a failing target pauses, waits without spending attempts, probes, resumes."""


from sqlalchemy import select
from werkzeug import Response

from relay.delivery.runner import DEFERRED, run_delivery
from relay.models import utcnow
from tests.conftest import Since


def failing_target(httpserver, relay, status=503):
    httpserver.expect_request("/hook").respond_with_data("down", status=status)
    return relay.hook({"request": {"method": "POST", "url": httpserver.url_for("/hook")}})


def paused_then_back(httpserver, relay, events: int) -> dict:
    """`events` deliveries to a target that fails until it has paused, and answers 200 from then on."""
    hook = failing_target(httpserver, relay)
    for _ in range(events):
        relay.event()
    relay.drain()
    httpserver.clear()
    httpserver.expect_request("/hook").respond_with_data("back")
    return hook


def test_five_failures_pause_the_target_and_later_deliveries_wait_without_spending_attempts(relay, httpserver):
    hook = failing_target(httpserver, relay)
    since = Since()
    for _ in range(7):
        relay.event()
    relay.drain()
    assert len(httpserver.log) == 5  # today all seven go out to the dead target
    sent, waiting = relay.deliveries(hook)[:5], relay.deliveries(hook)[5:]
    assert all(d["status"] == "retrying" and len(d["attempts"]) == 1 for d in sent)
    assert all(d["status"] == "pending" and d["attempts"] == [] for d in waiting)
    assert all(d["reason"].startswith("target paused after 5 consecutive failures: HTTP 503") for d in waiting)
    doc = relay.webhook(hook)
    assert doc["state"] == "paused"
    assert doc["paused"]["reason"] == "5 consecutive failures; last: HTTP 503 from target"
    assert since.later_by(doc["paused"]["nextProbeAt"], 30)
    listed = relay.api.get("/webhooks").json["webhooks"]
    assert [w["state"] for w in listed] == ["paused"]
    metrics = relay.api.get("/metrics").get_data(as_text=True)
    assert f'pact_relay_webhook_paused{{webhook="{hook["uuid"]}"}} 1.0' in metrics
    assert "pact_relay_webhooks_paused 1.0" in metrics


def test_a_successful_probe_resumes_and_releases_what_waited(relay, httpserver):
    hook = paused_then_back(httpserver, relay, 7)
    relay.all_due()
    first = relay.deliveries(hook)[0]
    assert run_delivery(relay.runtime, first["id"]) == DEFERRED  # cool-down not over yet: no probe
    assert httpserver.log == []
    relay.probe_due(hook)
    relay.all_due()
    assert run_delivery(relay.runtime, first["id"]) == "succeeded"  # the probe
    assert relay.webhook(hook)["state"] == "active"
    relay.drain()  # the two that waited were released onto the queue
    statuses = [d["status"] for d in relay.deliveries(hook)]
    assert statuses == ["succeeded", "retrying", "retrying", "retrying", "retrying", "succeeded", "succeeded"]
    assert len(httpserver.log) == 3


def test_a_failed_probe_doubles_the_cool_down_and_only_one_probe_goes_at_a_time(relay, httpserver, runtime):
    from relay.delivery import breaker
    from relay.models import TargetState

    hook = failing_target(httpserver, relay, status=502)
    for _ in range(6):
        relay.event()
    relay.drain()
    relay.probe_due(hook)
    relay.all_due()
    with runtime.sessions.begin() as session:
        assert breaker.check(session, hook["uuid"], utcnow(), 60).probe
        assert not breaker.check(session, hook["uuid"], utcnow(), 60).go  # the probe lease is taken
        session.execute(TargetState.__table__.update().values(probe_until=None))
    first = relay.deliveries(hook)[0]
    since = Since()
    assert run_delivery(runtime, first["id"]) == "retrying"
    with runtime.sessions() as session:
        state = session.scalar(select(TargetState))
    assert state.paused_since is not None and state.cooldown == 60 and state.failures == 6
    assert since.later_by(state.next_probe_at, 60)


def test_4xx_answers_do_not_pause(relay, httpserver):
    hook = failing_target(httpserver, relay, status=404)
    for _ in range(7):
        relay.event()
    relay.drain()
    assert len(httpserver.log) == 7 and relay.webhook(hook)["state"] == "active"


def test_resume_by_hand_is_audited_and_sends_what_waited(relay, httpserver):
    hook = paused_then_back(httpserver, relay, 6)
    assert relay.api.as_role("read").post(f"/webhooks/{hook['uuid']}/resume").status_code == 403
    resumed = relay.api.as_role("write").post(f"/webhooks/{hook['uuid']}/resume")
    assert resumed.status_code == 200 and resumed.json["state"] == "active" and "paused" not in resumed.json
    relay.drain()
    assert len(httpserver.log) == 1 and relay.deliveries(hook)[-1]["status"] == "succeeded"
    (entry,) = [e for e in relay.api.get("/audit").json["events"] if e["type"] == "webhook.resumed"]
    assert entry["payload"]["uuid"] == hook["uuid"] and entry["payload"]["wasPaused"] is True
    assert relay.api.post("/webhooks/nosuchwebhook1234567/resume").status_code == 404


def test_one_senders_values_that_make_the_target_answer_500_never_pause_it_for_others(relay, httpserver):
    """Issue 23 #15: six events whose values made a shared target answer 500 paused it, and every other sender's
    deliveries waited 30 s or more. A target that answers is up: a 500 is about the request, which the sender chose."""
    def answer(request):
        poisoned = b"poison" in request.get_data()
        return Response("boom" if poisoned else "ok", status=500 if poisoned else 200)

    httpserver.expect_request("/hook").respond_with_handler(answer)
    hook = relay.hook({"request": {"method": "POST", "url": httpserver.url_for("/hook"),
                                   "body": {"v": "${pactbroker.consumerVersionNumber}"}}})
    for n in range(6):
        relay.event(consumerVersionNumber=f"poison-{n}")
    relay.drain()
    relay.event(consumerVersionNumber="1.0.0")  # another sender's event
    relay.drain()
    assert relay.webhook(hook)["state"] == "active"
    *poisoned, other = relay.deliveries(hook)
    assert [d["status"] for d in poisoned] == ["retrying"] * 6  # each still retried on its own schedule
    assert other["status"] == "succeeded" and len(other["attempts"]) == 1


def test_a_500_neither_resumes_a_paused_target_nor_clears_its_failures(relay, httpserver, runtime):
    hook = failing_target(httpserver, relay)  # 503: the target says it is down
    for _ in range(6):
        relay.event()
    relay.drain()
    assert relay.webhook(hook)["state"] == "paused"
    httpserver.clear()
    httpserver.expect_request("/hook").respond_with_data("boom", status=500)
    relay.probe_due(hook)
    relay.all_due()
    run_delivery(runtime, relay.deliveries(hook)[0]["id"])  # the probe gets a 500: still no sign of health
    assert relay.webhook(hook)["state"] == "paused"
