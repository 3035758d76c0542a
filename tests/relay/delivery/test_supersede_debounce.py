"""Supersede (GitHub statuses) and debounce (CI triggers) on a real worker: only the newest goes out."""

import json

from sqlalchemy import update

from relay.delivery.runner import DEFERRED, run_delivery
from relay.models import Delivery, utcnow
from tests.conftest import Since
from tests.integrations.fakes import serve_github, serve_jenkins

SHA = "0123456789abcdef0123456789abcdef01234567"


def github_hook(relay, httpserver, **config):
    return relay.hook({"github": {"repository": "acme/matching", "token": "ghp_token_123456",
                                  "base_url": httpserver.url_for(""), **config}},
                      events=("provider_verification_succeeded", "provider_verification_failed"))


def test_only_the_newest_status_for_a_commit_is_sent(relay, httpserver):
    serve_github(httpserver)
    hook = github_hook(relay, httpserver)
    relay.event("provider_verification_failed", consumerVersionNumber=SHA)
    relay.event("provider_verification_succeeded", consumerVersionNumber=SHA)
    relay.event("provider_verification_failed", consumerVersionNumber=SHA)
    relay.event("provider_verification_succeeded", consumerVersionNumber=SHA)
    relay.drain()
    sent = [json.loads(r.get_data())["state"] for r, _ in httpserver.log]
    assert sent == ["success"]  # today: failure, success, failure, success
    *older, newest = relay.deliveries(hook)
    assert newest["status"] == "succeeded"
    for delivery in older:
        assert delivery["status"] == "superseded" and delivery["attempts"] == []
        assert delivery["supersededBy"] == newest["id"]
        assert delivery["reason"].startswith("superseded: a newer status for the same repository, commit and context")
        assert delivery["_links"]["pr:supersededBy"]["href"].endswith(f"/deliveries/{newest['id']}")
    listed = relay.api.get("/deliveries?status=superseded").json["deliveries"]
    assert {d["id"] for d in listed} == {d["id"] for d in older}


def test_other_commits_and_contexts_are_not_superseded(relay, httpserver):
    serve_github(httpserver)
    hook = github_hook(relay, httpserver)
    relay.event(consumerVersionNumber=SHA)
    relay.event(consumerVersionNumber=SHA.replace("0", "f"))
    relay.event(consumerVersionNumber=SHA, providerName="Another Provider")  # context pact/<provider> differs
    relay.drain()
    assert [d["status"] for d in relay.deliveries(hook)] == ["succeeded"] * 3


def test_an_old_status_is_never_sent_after_a_newer_one(relay, httpserver):
    serve_github(httpserver)
    hook = github_hook(relay, httpserver)
    relay.event("provider_verification_failed", consumerVersionNumber=SHA)
    relay.drain()
    relay.event("provider_verification_succeeded", consumerVersionNumber=SHA)
    relay.drain()
    old, new = relay.deliveries(hook)
    assert new["status"] == "pending"
    assert new["reason"] == "waiting: at most one status per commit and context every 2 s"
    relay.sent_earlier()
    relay.all_due()
    assert run_delivery(relay.runtime, new["id"]) == "succeeded"
    replay = relay.api.post(f"/deliveries/{old['id']}/replay").json  # a replay of the old result
    relay.drain()
    assert relay.api.get(f"/deliveries/{replay['id']}").json["supersededBy"] == new["id"]
    assert [json.loads(r.get_data())["state"] for r, _ in httpserver.log] == ["failure", "success"]


def test_a_newer_status_waits_while_an_older_one_is_in_flight(relay, httpserver, runtime):
    serve_github(httpserver)
    hook = github_hook(relay, httpserver)
    relay.event("provider_verification_failed", consumerVersionNumber=SHA)
    relay.event("provider_verification_succeeded", consumerVersionNumber=SHA)
    old, new = relay.deliveries(hook)
    with runtime.sessions.begin() as session:  # the old one is being sent by another worker right now
        session.execute(update(Delivery).where(Delivery.id == old["id"])
                        .values(lease_owner="elsewhere", lease_until=utcnow().replace(year=2100)))
    assert run_delivery(runtime, new["id"]) == DEFERRED
    assert httpserver.log == []
    waiting = relay.api.get(f"/deliveries/{new['id']}").json
    assert waiting["status"] == "pending" and waiting["attempts"] == [] and "being sent" in waiting["reason"]


def jenkins_hook(relay, httpserver, debounce=30):
    return relay.hook({"jenkins": {"url": httpserver.url_for(""), "job": "provider-verify",
                                   "parameters": {"VERSION": "${pactbroker.consumerVersionNumber}"}},
                       "debounce": debounce}, events=("contract_content_changed",))


def test_debounce_starts_one_build_for_a_burst_carrying_the_newest_event(relay, httpserver, runtime):
    serve_jenkins(httpserver)
    hook = jenkins_hook(relay, httpserver)
    assert hook["debounce"] == 30  # today: 400, debounce is an unknown field
    since = Since()
    for version in ("1.0.1", "1.0.2", "1.0.3"):
        relay.event("contract_content_changed", consumerVersionNumber=version, consumerVersionBranch="main")
    relay.event("contract_content_changed", consumerVersionNumber="2.0.0", consumerVersionBranch="feat/x")
    relay.drain()
    assert httpserver.log == []  # the window is still open
    one, two, three, other = relay.deliveries(hook)
    assert [d["status"] for d in (one, two)] == ["superseded", "superseded"]  # a newer event already carries them
    assert one["supersededBy"] == two["supersededBy"] == three["id"]
    assert one["reason"].startswith("debounced: a newer event for the same consumer, provider and branch")
    for waiting in (three, other):
        assert waiting["status"] == "pending" and waiting["attempts"] == []
        assert waiting["reason"] == "waiting: debounce of 30 s collects a burst of events"
        assert since.later_by(waiting["nextAttemptAt"], 30)
    relay.age(31)
    relay.all_due()
    for delivery in (three, other):
        assert run_delivery(runtime, delivery["id"]) == "succeeded"
    builds = sorted(r.args["VERSION"] for r, _ in httpserver.log if r.path.endswith("buildWithParameters"))
    assert builds == ["1.0.3", "2.0.0"]  # today: four builds, one per event

def test_without_debounce_every_event_builds(relay, httpserver):
    serve_jenkins(httpserver)
    hook = relay.hook({"jenkins": {"url": httpserver.url_for(""), "job": "provider-verify"}},
                      events=("contract_content_changed",))
    relay.event("contract_content_changed")
    relay.event("contract_content_changed")
    relay.drain()
    assert [d["status"] for d in relay.deliveries(hook)] == ["succeeded", "succeeded"]


def test_an_older_event_of_a_burst_never_builds_after_the_newest_was_sent(relay, httpserver, runtime):
    """Issue 23 #18: once the burst's newest delivery had succeeded, an older one looked at later found no newer
    *waiting* sibling and started a second build, with stale values (the order two workers happen to take them)."""
    serve_jenkins(httpserver)
    hook = jenkins_hook(relay, httpserver)
    relay.event("contract_content_changed", consumerVersionNumber="1.0.1", consumerVersionBranch="main")
    relay.drain()  # the first of the burst is looked at alone: it waits for the window
    relay.event("contract_content_changed", consumerVersionNumber="1.0.2", consumerVersionBranch="main")
    older, newer = relay.deliveries(hook)
    relay.age(31)
    relay.all_due()
    assert run_delivery(runtime, newer["id"]) == "succeeded"  # this worker was quicker
    run_delivery(runtime, older["id"])
    builds = [r.args["VERSION"] for r, _ in httpserver.log if r.path.endswith("buildWithParameters")]
    assert builds == ["1.0.2"]
    older = relay.deliveries(hook)[0]
    assert older["status"] == "superseded" and older["supersededBy"] == newer["id"]
