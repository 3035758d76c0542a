"""Typed integrations and presets through the whole relay: saved over the API, delivered by a real worker."""

import json

import pytest

from tests.conftest import sample_event
from tests.integrations.fakes import serve_github, serve_slack


def test_presets_are_listed(api):
    names = [p["name"] for p in api.as_role("read").get("/webhooks/presets").json["presets"]]
    assert {"github-repository-dispatch", "github-workflow-dispatch", "gitlab-pipeline-trigger", "circleci-pipeline",
            "buildkite-build", "bitbucket-pipeline", "azure-devops-pipeline", "gitlab-commit-status",
            "bitbucket-commit-status"} <= set(names)


def test_a_preset_becomes_a_request_webhook(api):
    doc = {"preset": "github-repository-dispatch", "repository": "acme/app", "token_secret": "ghToken"}
    missing = api.post("/webhooks", json=doc)
    assert missing.status_code == 400
    assert any("${user.ghToken} does not exist" in m for m in missing.json["errors"]["request.headers"])
    api.post("/secrets", json={"name": "ghToken", "value": "ghp_abcdefabcdef"})
    created = api.post("/webhooks", json={**doc, "consumer": {"name": "web"}})
    assert created.status_code == 201, created.json
    assert created.json["request"]["url"] == "https://api.github.com/repos/acme/app/dispatches"
    assert created.json["consumer"] == {"name": "web"}


@pytest.mark.parametrize("doc,field", [
    ({"preset": "nope"}, "preset"),
    ({"preset": 5}, "preset"),
    ({"preset": "github-repository-dispatch"}, "repository"),
    ({"preset": "github-repository-dispatch", "repository": "a/b", "token_secret": "bad name"}, "token_secret"),
])
def test_bad_presets_are_400(api, doc, field):
    resp = api.post("/webhooks", json=doc)
    assert resp.status_code == 400 and field in resp.json["errors"], resp.json


@pytest.mark.parametrize("kind,config,field", [
    ("github", {"repository": "not-owner-name", "token": "t"}, "github.repository"),
    ("github", {"repository": "a/b"}, "github"),
    ("slack", {"channel": "#ci"}, "slack"),
    ("jenkins", {"job": "x"}, "jenkins.url"),
    ("travis", {"repository": "a/b"}, "travis.token"),
])
def test_typed_integrations_are_validated_at_save_time(api, kind, config, field):
    resp = api.post("/webhooks", json={"events": [{"name": "contract_published"}], kind: config})
    assert resp.status_code == 400
    assert any(k == field or k.startswith(field + ".") or k.startswith(field) for k in resp.json["errors"]), resp.json


def test_github_status_end_to_end_with_the_token_never_shown(api, httpserver, drain):
    serve_github(httpserver)
    created = api.post("/webhooks", json={
        "events": [{"name": "provider_verification_failed"}],
        "github": {"repository": "acme/matching", "token": "ghp_literal_token_123",
                   "base_url": httpserver.url_for("")}})
    assert created.status_code == 201, created.json
    assert created.json["github"]["token"] == "**********"
    event = api.post("/events", json=sample_event("provider_verification_failed")).json
    drain()
    (request, _), = [entry for entry in httpserver.log if "/statuses/" in entry[0].path]
    assert request.path == "/repos/acme/matching/statuses/1.0.1569369168"
    assert request.headers["Authorization"] == "token ghp_literal_token_123"
    assert json.loads(request.data)["state"] == "failure"
    (delivery,) = api.get(f"/webhooks/{created.json['uuid']}/deliveries").json["deliveries"]
    assert delivery["event"] == event["event"] and delivery["status"] == "succeeded"
    assert "ghp_literal_token_123" not in json.dumps(delivery)


def test_slack_only_failures_skips_success_as_succeeded(api, httpserver, drain):
    serve_slack(httpserver)
    api.post("/secrets", json={"name": "slackHook", "value": httpserver.url_for("/services/T/B/X")})
    created = api.post("/webhooks", json={
        "events": [{"name": "provider_verification_succeeded"}],
        "slack": {"webhook_url": "${user.slackHook}", "only_failures": True}})
    assert created.status_code == 201, created.json
    api.post("/events", json=sample_event("provider_verification_succeeded"))
    drain()
    assert httpserver.log == []
    (delivery,) = api.get(f"/webhooks/{created.json['uuid']}/deliveries").json["deliveries"]
    assert delivery["status"] == "succeeded" and "skipped" in delivery["attempts"][0]["response"]["note"]
