"""Can I deploy from the broker: the badges (always an SVG, private ones signed, never slower than the broker timeout)
and the opt-in pact/can-i-deploy GitHub status, against a loopback server replaying the recorded answers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from werkzeug import Response

from relay.pairs import badgeurls
from relay.pairs.deploy import Question
from tests.conftest import make_settings, pact_event
from tests.integrations.fakes import serve_github
from tests.relay.broker.conftest import BROKER_TOKEN

# The broker's own approval snapshots (features_can_i_deploy_approval_spec.json of the recorded exchanges).
RECORDED = json.loads((Path(__file__).parents[2] / "fixtures" / "pactbroker" / "can_i_deploy.json").read_text())
YES = RECORDED["GET /can-i-deploy approval can-i-deploy Foo's dev tag to Bar's prod tag (tag-to-tag URL format) "
               "snapshots"]
MISSING = RECORDED["GET /can-i-deploy approval can-i-deploy Foo v1 to the production environment with a failing "
                   "integration without ignoring the failing integration snapshots"]
TAG_BADGE = "/pacticipants/Foo/latest-version/dev/can-i-deploy/to/prod/badge"
BRANCH_BADGE = "/pacticipants/Foo/branches/main/latest-version/can-i-deploy/to-environment/production/badge"


def answers(httpserver, path: str, recorded: dict) -> None:
    httpserver.expect_request(path, headers={"Authorization": f"Bearer {BROKER_TOKEN}"}).respond_with_json(
        {"summary": recorded["summary"], "matrix": []}, status=recorded["status"])


def title(resp) -> str:
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    return resp.get_data(as_text=True).split("<title>", 1)[1].split("</title>", 1)[0]


def test_tag_and_branch_badges_show_the_brokers_answer(client, httpserver):
    answers(httpserver, TAG_BADGE.removesuffix("/badge"), YES)
    answers(httpserver, BRANCH_BADGE.removesuffix("/badge"), MISSING)
    assert title(client.get(TAG_BADGE)).startswith("can-i-deploy: yes (WARN: It is recommended")
    branch = title(client.get(BRANCH_BADGE))
    assert branch.startswith("can-i-deploy: unknown (There is no verified pact between version 1 of Foo")
    # Kept: the next badge is served from Redis, the broker is not asked again while the answer is fresh.
    asked = len(httpserver.log)
    assert title(client.get(TAG_BADGE + ".svg?label=deploy%20Foo")).startswith("deploy Foo: yes (")
    assert len(httpserver.log) == asked
    doc = client.get(TAG_BADGE, headers={"Accept": "application/json"}).json
    assert (doc["message"], doc["color"]) == ("yes", "brightgreen")


def stalled(release: threading.Event):
    def handler(request):
        release.wait(10)
        return Response("{}", mimetype="application/json")

    return handler


BAD = {
    "401": (lambda s, r: s.expect_request(TAG_BADGE[:-6]).respond_with_json({}, status=401), "HTTP 401"),
    "500": (lambda s, r: s.expect_request(TAG_BADGE[:-6]).respond_with_data("", status=500), "HTTP 500"),
    "400": (lambda s, r: s.expect_request(TAG_BADGE[:-6]).respond_with_json({"errors": {}}, status=400), "HTTP 400"),
    "huge": (lambda s, r: s.expect_request(TAG_BADGE[:-6]).respond_with_data(b" " * 5_000_000), "larger than"),
    "not JSON": (lambda s, r: s.expect_request(TAG_BADGE[:-6]).respond_with_data("<html/>"), "not JSON"),
    "no summary": (lambda s, r: s.expect_request(TAG_BADGE[:-6]).respond_with_json({"matrix": []}),
                   "no can-i-deploy summary"),
    "slow": (lambda s, r: s.expect_request(TAG_BADGE[:-6]).respond_with_handler(stalled(r)),
             "did not answer within 0.5 s"),
}


@pytest.mark.parametrize("answer", list(BAD))
def test_a_bad_broker_answer_is_an_unknown_badge_with_its_reason(client, httpserver, answer):
    release = threading.Event()
    serve, reason = BAD[answer]
    serve(httpserver, release)
    try:
        started = time.monotonic()
        text = title(client.get(TAG_BADGE))
        waited = time.monotonic() - started
    finally:
        release.set()
    assert text.startswith("can-i-deploy: unknown (") and reason in text and BROKER_TOKEN not in text
    if answer == "slow":
        assert waited < 5, "a slow broker holds a badge for the broker timeout (0.5 s), not its own time"


@pytest.mark.parametrize("broker_url", ["down"], indirect=True)
def test_a_broker_that_is_down_is_an_unknown_badge(client, broker_url):
    assert "cannot reach the broker" in title(client.get(BRANCH_BADGE))


def test_a_name_never_leads_to_another_origin(client, httpserver):
    # A pacticipant name is one encoded path segment on the broker's origin, whatever it holds.
    assert title(client.get("/pacticipants/http%3A%2F%2Fevil.example/latest-version/dev/can-i-deploy/to/prod/badge"))
    (request, _), = httpserver.log
    assert request.host == httpserver.url_for("/").split("/")[2]


def test_private_badges_need_the_signed_url(tmp_path, database_url, redis_url, broker_url, httpserver):
    from relay.app import create_app
    from relay.runtime import Runtime

    settings = make_settings(tmp_path, database_url, redis_url, broker_url=broker_url, broker_token=BROKER_TOKEN,
                             broker_timeout=0.5, private_badges=True)
    answers(httpserver, TAG_BADGE.removesuffix("/badge"), YES)
    runtime = Runtime(settings)
    try:
        client = create_app(runtime=runtime).test_client()
        refused = client.get(TAG_BADGE)
        assert refused.status_code == 403 and "signature required" in refused.get_data(as_text=True)
        assert client.get(TAG_BADGE + "?sig=nope").status_code == 403
        other = badgeurls.DeployBadge(Question("tag", "Foo", "dev", "test", False))
        assert client.get(TAG_BADGE + "?sig=" + badgeurls.sign(settings.secret_key, other)).status_code == 403
        signed = badgeurls.url("", badgeurls.deploy_badge(TAG_BADGE), settings.secret_key)
        assert title(client.get(signed)).startswith("can-i-deploy: yes")
        assert httpserver.log, "only a signed request reached the broker"
    finally:
        runtime.engine.dispose()
        runtime.redis.close()


@pytest.mark.parametrize("broker_timeout", [10.0])  # the first send waits for the answer, however slow the machine
def test_the_github_status_carries_can_i_deploy_for_the_events_version(api, httpserver, target, drain, broker_url):
    serve_github(target)
    httpserver.expect_request("/can-i-deploy", query_string={"pacticipant": "Matching Service",
                                                             "version": "9fceb02", "environment": "production"}) \
        .respond_with_json({"summary": MISSING["summary"]})
    created = api.post("/webhooks", json={"events": [{"name": "contract_published"}], "github": {
        "repository": "acme/matching", "token": "ghp_token", "base_url": target.url_for(""),
        "can_i_deploy": {"to_environment": "production"}}})
    assert created.status_code == 201, created.json
    api.as_role("intake").post("/events", json=pact_event("contract_published", consumerVersionNumber="9fceb02"))
    drain()
    statuses = {json.loads(r.get_data())["context"]: json.loads(r.get_data()) for r, _ in target.log}
    deploy = statuses["pact/can-i-deploy"]
    assert deploy["state"] == "pending"
    assert deploy["description"].startswith("Cannot tell yet whether it can deploy to environment production: There")
    assert len(deploy["description"]) <= 140


def test_can_i_deploy_option_is_validated(api):
    resp = api.post("/webhooks", json={"events": [{"name": "contract_published"}], "github": {
        "repository": "acme/matching", "token": "t", "can_i_deploy": {"to": "prod", "to_environment": "production"}}})
    assert resp.status_code == 400 and "github.can_i_deploy" in resp.json["errors"]
