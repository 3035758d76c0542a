"""Rate limits: a target's 429, GitHub's and Slack's limit answers hold back every send with the same credential
and host, on every worker; a webhook's own rateLimit paces it. Nothing fails for it."""

import json

from werkzeug import Response

from relay.delivery.runner import DEFERRED, run_delivery
from relay.models import utcnow
from tests.conftest import Since
from tests.integrations.fakes import serve_slack


def test_a_429_holds_every_send_with_the_same_credential_and_host(relay, httpserver):
    httpserver.expect_ordered_request("/a").respond_with_response(Response("slow down", 429,
                                                                           headers={"Retry-After": "120"}))
    relay.api.post("/secrets", json={"name": "apiKey", "value": "k-123456789"})
    request = {"method": "POST", "headers": {"X-Api-Key": "${user.apiKey}"}}
    first = relay.hook({"request": {**request, "url": httpserver.url_for("/a")}})
    second = relay.hook({"request": {**request, "url": httpserver.url_for("/b")}})
    since = Since()
    relay.event()
    relay.drain()
    assert [r.path for r, _ in httpserver.log] == ["/a"]  # today /b is sent into the limit as well
    (held,) = relay.deliveries(second)
    assert held["status"] == "pending" and held["attempts"] == []
    assert held["reason"].startswith("waiting: rate limited by the target for 1")
    assert since.later_by(held["nextAttemptAt"], 120)
    (limited,) = relay.deliveries(first)
    assert limited["status"] == "retrying" and since.later_by(limited["nextAttemptAt"], 120)


def test_another_credential_on_the_same_host_is_not_held(relay, httpserver):
    httpserver.expect_request("/a").respond_with_response(Response("", 429, headers={"Retry-After": "120"}))
    httpserver.expect_request("/b").respond_with_data("ok")
    url = httpserver.url_for("")
    relay.hook({"request": {"method": "POST", "url": url + "a", "headers": {"Authorization": "Bearer one-one-one"}}})
    other = relay.hook({"request": {"method": "POST", "url": url + "b",
                                    "headers": {"Authorization": "Bearer two-two-two"}}})
    relay.event()
    relay.drain()
    assert relay.deliveries(other)[0]["status"] == "succeeded"


def github_hook(relay, httpserver, token="ghp_sharedtoken123"):
    return relay.hook({"github": {"repository": "acme/matching", "token": token,
                                  "base_url": httpserver.url_for(""), "sha": "${pactbroker.consumerVersionNumber}"}})


def test_github_last_request_of_the_hour_holds_the_token_until_the_reset(relay, httpserver):
    reset = int(utcnow().timestamp()) + 600
    httpserver.expect_request("/repos/acme/matching/statuses/1111111", method="POST").respond_with_response(Response(
        json.dumps({"id": 1, "state": "failure", "context": "c"}), 201, content_type="application/json",
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset), "x-ratelimit-limit": "5000"}))
    hook = github_hook(relay, httpserver)
    relay.event(consumerVersionNumber="1111111")
    relay.event(consumerVersionNumber="2222222")
    relay.drain()
    assert [r.path for r, _ in httpserver.log] == ["/repos/acme/matching/statuses/1111111"]
    first, second = relay.deliveries(hook)
    assert first["status"] == "succeeded"
    assert second["status"] == "pending" and second["attempts"] == [] and second["reason"].startswith("waiting")
    assert abs(utcnow().fromisoformat(second["nextAttemptAt"]).timestamp() - reset) <= 1  # held until the reset


def test_github_secondary_limit_403_holds_and_nothing_fails(relay, httpserver, runtime):
    httpserver.expect_ordered_request("/repos/acme/matching/statuses/1111111", method="POST").respond_with_response(
        Response(json.dumps({"message": "You have exceeded a secondary rate limit."}), 403,
                 content_type="application/json", headers={"retry-after": "60"}))
    hook = github_hook(relay, httpserver)
    relay.event(consumerVersionNumber="1111111")
    relay.event(consumerVersionNumber="2222222")
    relay.drain()
    assert len(httpserver.log) == 1
    first, second = relay.deliveries(hook)
    assert first["status"] == "retrying" and "rate limited" in first["attempts"][0]["error"]
    assert second["status"] == "pending" and second["attempts"] == []
    relay.all_due()
    assert run_delivery(runtime, second["id"]) == DEFERRED  # due, but the hold is not over
    assert len(httpserver.log) == 1


def test_slack_429_holds_the_workspace_token(relay, httpserver):
    httpserver.expect_ordered_request("/api/chat.postMessage").respond_with_response(
        Response(json.dumps({"ok": False, "error": "ratelimited"}), 429, headers={"Retry-After": "30"},
                 content_type="application/json"))
    serve_slack(httpserver)
    doc = {"token": "xoxb-123-456-abc", "channel": "#ci", "base_url": httpserver.url_for("/api/")}
    relay.hook({"slack": doc})
    other = relay.hook({"slack": {**doc, "channel": "#other"}})
    since = Since()
    relay.event()
    relay.drain()
    assert len(httpserver.log) == 1
    (held,) = relay.deliveries(other)
    assert held["status"] == "pending" and since.later_by(held["nextAttemptAt"], 30)


def test_a_webhook_rate_limit_paces_its_sends(relay, httpserver, runtime):
    httpserver.expect_request("/hook").respond_with_data("ok")
    hook = relay.hook({"request": {"method": "POST", "url": httpserver.url_for("/hook")}, "rateLimit": 0.5})
    assert hook["rateLimit"] == 0.5  # today: 400, rateLimit is an unknown field
    since = Since()
    for _ in range(3):
        relay.event()
    relay.drain()
    assert len(httpserver.log) == 1
    statuses = [(d["status"], len(d["attempts"])) for d in relay.deliveries(hook)]
    assert statuses == [("succeeded", 1), ("pending", 0), ("pending", 0)]
    assert all(since.later_by(d["nextAttemptAt"], 0, most=2) for d in relay.deliveries(hook)[1:])


def test_rate_limit_and_debounce_are_validated(relay, httpserver):
    url = httpserver.url_for("/hook")
    for bad in (0, -1, "5", True, 10_000):
        resp = relay.api.post("/webhooks", json={"request": {"method": "POST", "url": url}, "rateLimit": bad})
        assert resp.status_code == 400 and "rateLimit" in resp.json["errors"], bad
    for bad in (-1, 1.5, "30", True, 100_000):
        resp = relay.api.post("/webhooks", json={"request": {"method": "POST", "url": url}, "debounce": bad})
        assert resp.status_code == 400 and "debounce" in resp.json["errors"], bad
    resp = relay.api.post("/webhooks", json={"slack": {"webhook_url": "https://hooks.slack.com/services/x"},
                                             "debounce": 30})
    assert resp.status_code == 400 and "CI triggers" in resp.json["errors"]["debounce"][0]


def test_a_rate_limit_too_small_to_pace_is_refused_at_save(relay):
    """Issue 23 #7: 1e6 / 5e-324 is infinity, and the dispatcher's int() of it raised OverflowError forever."""
    for value in (5e-324, 1e-12, 1 / 86400 / 2):
        resp = relay.api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}],
                                                 "rateLimit": value,
                                                 "request": {"method": "POST", "url": "https://ci.example.com/a"}})
        assert resp.status_code == 400 and "rateLimit" in resp.json["errors"], (value, resp.json)
    ok = relay.api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}], "rateLimit": 1 / 86400,
                                           "request": {"method": "POST", "url": "https://ci.example.com/a"}})
    assert ok.status_code == 201, ok.json


def test_an_internal_error_before_the_send_fails_that_delivery_with_its_reason(relay, httpserver):
    """Issue 23 #7: a rate limit stored before the check (or any bug of ours before the send) fails the delivery
    once, saying why, instead of leaving it pending and leased again every lease period."""
    from sqlalchemy import update

    from relay.models import Webhook

    httpserver.expect_request("/a").respond_with_data("ok")
    broken = relay.hook({"request": {"method": "POST", "url": httpserver.url_for("/a")}})
    with relay.runtime.sessions.begin() as session:
        session.execute(update(Webhook).where(Webhook.uuid == broken["uuid"]).values(rate_limit=5e-324))
    relay.event()
    relay.drain()
    (delivery,) = relay.deliveries(broken)
    assert delivery["status"] == "failed", delivery
    assert "internal error" in delivery["attempts"][0]["error"] and "OverflowError" in delivery["attempts"][0]["error"]
    assert httpserver.log == []
