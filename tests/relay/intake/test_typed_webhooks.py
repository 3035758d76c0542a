"""Typed integrations and presets through the whole relay: saved over the API, delivered by a real worker."""

import json

import pytest

import integrations
from tests.conftest import sample_event
from tests.integrations.fakes import serve_github, serve_slack, serve_teams


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
    ("gitlab", {"project": "../x", "token": "t"}, "gitlab.project"),
    ("gitlab", {"project": "a/b", "token": "t", "sha": "main"}, "gitlab.sha"),
    ("bitbucket", {"repository": "just-one", "token": "t"}, "bitbucket.repository"),
    ("bitbucket", {"repository": "w/r"}, "bitbucket.token"),
    ("teams", {"webhook_url": "https://x.example.com/${pactbroker.consumerName}"}, "teams.webhook_url"),
    ("teams", {"only_failures": True}, "teams.webhook_url"),
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
    event = api.post("/events", json={**sample_event("provider_verification_failed"),
                                      "consumerVersionNumber": "9fceb02"}).json
    drain()
    (request, _), = [entry for entry in httpserver.log if "/statuses/" in entry[0].path]
    assert request.path == "/repos/acme/matching/statuses/9fceb02"
    assert request.headers["Authorization"] == "token ghp_literal_token_123"
    assert json.loads(request.data)["state"] == "failure"
    (delivery,) = api.get(f"/webhooks/{created.json['uuid']}/deliveries").json["deliveries"]
    assert delivery["event"] == event["event"] and delivery["status"] == "succeeded"
    assert "ghp_literal_token_123" not in json.dumps(delivery)


def test_slack_only_failures_ends_skipped_with_its_reason(api, httpserver, drain):
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
    assert delivery["status"] == "skipped" and "skipped" in delivery["attempts"][0]["response"]["note"]
    assert delivery["reason"] == ("only_failures is set and provider_verification_succeeded is not a failed "
                                  "verification")
    listed = api.get("/deliveries?status=skipped").json["deliveries"]
    assert [d["id"] for d in listed] == [delivery["id"]]


def test_jenkins_credentials_echoed_back_are_masked_for_read_users(api, httpserver, drain):
    """M1: the basic-auth pair python-jenkins builds from username + token is masked in every stored form."""
    import base64

    from werkzeug import Response

    def echo(request):
        return Response(f"you sent Authorization: {request.headers.get('Authorization')}", status=201,
                        headers={"X-Echo": request.headers.get("Authorization", "")})

    httpserver.expect_request("/crumbIssuer/api/json").respond_with_json({"crumb": "c", "crumbRequestField": "J"})
    httpserver.expect_request("/job/verify/build", method="POST").respond_with_handler(echo)
    created = api.post("/webhooks", json={"events": [{"name": "contract_published"}], "jenkins": {
        "url": httpserver.url_for("/"), "job": "verify", "username": "u", "token": "jtok12345678"}})
    assert created.status_code == 201, created.json
    api.post("/events", json=sample_event("contract_published"))
    drain()
    assert any("Basic" in (r.headers.get("Authorization") or "") for r, _ in httpserver.log)
    (delivery,) = api.as_role("read").get("/deliveries").json["deliveries"]
    assert delivery["status"] == "succeeded", delivery
    stored = json.dumps(delivery)
    pair = base64.b64encode(b"u:jtok12345678").decode()
    assert pair not in stored and pair.rstrip("=") not in stored and "jtok12345678" not in stored
    assert "you sent Authorization: Basic ********" in stored


def test_literal_secret_fields_are_validated_then_sealed(api, httpserver, drain):
    """L1: a literal Slack webhook_url (a secret field) is checked as a URL before it is encrypted."""
    serve_slack(httpserver)
    hook = httpserver.url_for("/services/T0/B0/literalhooksecret")
    created = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}],
                                          "slack": {"webhook_url": hook}})
    assert created.status_code == 201, created.json
    assert created.json["slack"]["webhook_url"] == "**********"
    kept = api.put(f"/webhooks/{created.json['uuid']}", json={"events": [{"name": "provider_verification_failed"}],
                                                                "slack": {"webhook_url": "**********"}})
    assert kept.status_code == 200, kept.json
    api.post("/events", json=sample_event("provider_verification_failed"))
    drain()
    assert [r.path for r, _ in httpserver.log] == ["/services/T0/B0/literalhooksecret"]
    bad = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}],
                                      "slack": {"webhook_url": "not a url literalhooksecret"}})
    assert bad.status_code == 400 and bad.json["errors"]["slack.webhook_url"] == ["must be an http(s) URL with a host"]
    assert "literalhooksecret" not in json.dumps(bad.json)


@pytest.mark.parametrize("kind,config,secret", [
    ("teams", {"webhook_url": "https://prod-1.westeurope.logic.azure.com/workflows/abc?sig=s3cr3t"}, "webhook_url"),
    ("gitlab", {"project": "12345", "token": "glpat-literal"}, "token"),
    ("bitbucket", {"repository": "acme/app", "token": "bb-literal"}, "token"),
])
def test_new_integrations_seal_their_secrets_and_take_their_default_events(api, kind, config, secret):
    created = api.post("/webhooks", json={kind: config})
    assert created.status_code == 201, created.json
    assert created.json[kind][secret] == "**********" and config[secret] not in json.dumps(created.json)
    assert [e["name"] for e in created.json["events"]] == list(integrations.get(kind).default_events)


def test_teams_card_end_to_end_with_the_url_never_shown(api, httpserver, drain):
    serve_teams(httpserver)
    hook = httpserver.url_for("/workflows/abc/triggers/manual/paths/invoke?sig=s3cr3tSIG")
    created = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}],
                                          "teams": {"webhook_url": hook}})
    assert created.status_code == 201, created.json
    api.post("/events", json=sample_event("provider_verification_failed"))
    drain()
    (request, _), = httpserver.log
    assert json.loads(request.data)["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    (delivery,) = api.get(f"/webhooks/{created.json['uuid']}/deliveries").json["deliveries"]
    assert delivery["status"] == "succeeded" and "s3cr3tSIG" not in json.dumps(delivery)
    assert delivery["attempts"][0]["request"]["url"].endswith("/<webhook_url path>")
