"""Hostile event values never move a request to another endpoint: every integration, a real recording server."""

from __future__ import annotations

import json
import re

import pytest
from werkzeug import Response

import integrations
from integrations import github
from integrations.base import PermanentDeliveryError
from relay.intake.presets import PresetError, expand
from tests.integrations.conftest import event, renderer

# The value first, then every spelling of "another segment", "another resource" or "a query/fragment".
HOSTILE = [
    "../../../../repos/victim-org/private-repo/forks,abc?x=1#",
    "..", ".", "%2e%2e", "%2E%2E", "%252e%252e", ".%2e", "a/../../b", "..%2f..%2fadmin", "a%2fb", "x?y=1", "x#frag",
    "x\r\nX-Injected: 1", "x\ny", "/", "",
    # Issue 23 #10: servers that read "\\" as "/" (IIS, some Java and Windows stacks) resolve these.
    "..\\..\\admin", "..%5c..%5cadmin", "a\\..\\..\\b", "..\\",
]
# One path segment, never a dot segment, nor a dot next to a backslash (which some servers take for a separator).
SEGMENT = r"(?!\.{1,2}/)(?!%2[eE]%2[eE]/)(?![^/]*(?:%5[cC]|\\)\.)(?![^/]*\.(?:%5[cC]|\\))[^/?#]+"


def record_everything(httpserver) -> None:
    """Answer any path like the real target would, so a stray request is recorded instead of refused."""
    def answer(request):
        if request.path.endswith("crumbIssuer/api/json"):
            return Response(json.dumps({"crumb": "c", "crumbRequestField": "Jenkins-Crumb"}),
                            content_type="application/json")
        if request.path.endswith("chat.postMessage"):
            return Response(json.dumps({"ok": True}), content_type="application/json")
        return Response(json.dumps({"id": 1, "state": "success", "url": "x", "request": {"id": 1}}), status=201,
                        content_type="application/json")

    httpserver.expect_request(re.compile(".*")).respond_with_handler(answer)


def paths(httpserver) -> list[str]:
    return [request.environ.get("RAW_URI", request.path).split("?", 1)[0] for request, _ in httpserver.log]


def attempt(kind: str, config: dict, variables: dict, ctx) -> str:
    """'sent' or 'refused: <reason>' for one delivery; anything else (a crash) fails the test."""
    integration = integrations.get(kind)
    github._tokens.clear()
    try:
        built = integration.build(config, renderer(variables), variables)
        integration.send(built, ctx)
    except PermanentDeliveryError as exc:
        return f"refused: {exc.message}"
    return "sent"


def stays_inside(httpserver, allowed: str) -> None:
    stray = [p for p in paths(httpserver) if not re.fullmatch(allowed, p)]
    assert not stray, f"requests left their resource: {stray}"


@pytest.mark.parametrize("value", HOSTILE)
def test_github_sha_and_repository_stay_in_the_status_resource(httpserver, ctx, value):
    record_everything(httpserver)
    base = httpserver.url_for("/api/v3")
    variables = event("provider_verification_failed", consumerVersionNumber=value, consumerName=value)
    outcome = attempt("github", {"repository": "acme/app", "token": "ghp_x", "base_url": base}, variables, ctx)
    assert outcome.startswith("refused: sha")
    assert "not a commit sha (7 to 40 hex digits)" in outcome or value.strip() in ("", ",")
    outcome = attempt("github", {"repository": "acme/${pactbroker.consumerName}", "token": "ghp_x", "sha": "9fceb02",
                                 "base_url": base}, variables, ctx)
    assert outcome.startswith("refused: repository")
    assert paths(httpserver) == []
    # A real sha still goes exactly where it should.
    attempt("github", {"repository": "acme/app", "token": "ghp_x", "base_url": base},
            {**variables, "consumerVersionNumber": "9FCEB02d"}, ctx)
    assert paths(httpserver) == ["/api/v3/repos/acme/app/statuses/9FCEB02d"]


@pytest.mark.parametrize("repository", ["acme/..", "acme/.", "../x", "-acme/x", "acme/x/y", "a" * 40 + "/x",
                                        "acme/" + "x" * 101, "acme/x?y", "acme/x#"])
def test_github_and_travis_refuse_what_github_would_not_call_owner_name(repository):
    for kind in ("github", "travis"):
        config = {"repository": repository, "branch": "main", "token": "t"}
        assert integrations.get(kind).validate(config).get("repository") == ["must be owner/name"]


@pytest.mark.parametrize("field", ["base_url"])
@pytest.mark.parametrize("kind", ["github", "travis", "slack"])
def test_base_urls_take_no_event_value(kind, field):
    config = {"repository": "a/b", "branch": "main", "token": "t", "channel": "#c",
              field: "https://api.example.com/${pactbroker.consumerName}/"}
    assert "event values" in integrations.get(kind).validate(config)[field][0]


@pytest.mark.parametrize("value", HOSTILE)
def test_travis_slug_stays_in_the_repository_requests_resource(httpserver, ctx, value):
    record_everything(httpserver)
    variables = event("contract_content_changed", consumerName=value)
    for repository in ("${pactbroker.consumerName}/app", "acme/${pactbroker.consumerName}"):
        outcome = attempt("travis", {"repository": repository, "branch": "main", "token": "t",
                                     "base_url": httpserver.url_for("")}, variables, ctx)
        assert outcome.startswith("refused: repository")
    outcome = attempt("travis", {"repository": "acme/app", "branch": "main", "token": "t",
                                 "base_url": httpserver.url_for("/${pactbroker.consumerName}")}, variables, ctx)
    assert outcome.startswith("refused: base_url uses an event value")
    assert paths(httpserver) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_jenkins_job_and_folders_stay_in_their_job(httpserver, ctx, value):
    record_everything(httpserver)
    variables = event("contract_content_changed", consumerName=value)
    config = {"url": httpserver.url_for("/ci/"), "job": "pacts/${pactbroker.consumerName}",
              "parameters": {"V": "${pactbroker.consumerName}"}}
    outcome = attempt("jenkins", config, variables, ctx)
    stays_inside(httpserver, rf"/ci/crumbIssuer/api/json|/ci/job/pacts/job/{SEGMENT}/(build|buildWithParameters)")
    if outcome == "sent":
        assert len([p for p in paths(httpserver) if "/job/" in p]) == 1
    else:
        assert outcome.startswith("refused: job") and paths(httpserver) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_jenkins_url_path_value_stays_one_segment(httpserver, ctx, value):
    record_everything(httpserver)
    variables = event("contract_content_changed", providerName=value)
    config = {"url": httpserver.url_for("/ci/${pactbroker.providerName}/"), "job": "verify"}
    outcome = attempt("jenkins", config, variables, ctx)
    stays_inside(httpserver, rf"/ci/({SEGMENT})?/?(crumbIssuer/api/json|job/verify/build)")
    assert outcome == "sent" or outcome.startswith("refused: url")


@pytest.mark.parametrize("value", HOSTILE)
def test_slack_endpoints_take_no_event_value(httpserver, ctx, value):
    record_everything(httpserver)
    variables = event("provider_verification_failed", consumerName=value, providerName=value)
    bot = attempt("slack", {"token": "xoxb-1", "channel": "${pactbroker.consumerName}",
                            "base_url": httpserver.url_for("/api/")}, variables, ctx)
    hostile_base = attempt("slack", {"token": "xoxb-1", "channel": "#c",
                                     "base_url": httpserver.url_for("/api/${pactbroker.consumerName}/")},
                           variables, ctx)
    hostile_hook = attempt("slack", {"webhook_url": httpserver.url_for("/services/T/${pactbroker.consumerName}")},
                           variables, ctx)
    assert bot == "sent"
    assert hostile_base.startswith("refused: base_url uses an event value")
    assert hostile_hook.startswith("refused: webhook_url uses an event value")
    assert paths(httpserver) == ["/api/chat.postMessage"]


@pytest.mark.parametrize("value", HOSTILE)
def test_request_webhook_values_stay_one_segment(httpserver, ctx, value):
    record_everything(httpserver)
    variables = event("contract_content_changed", consumerName=value)
    config = {"method": "POST", "url": httpserver.url_for("/hooks/${pactbroker.consumerName}/notify?c=${"
                                                          "pactbroker.consumerName}")}
    outcome = attempt("request", config, variables, ctx)
    stays_inside(httpserver, rf"/hooks/{SEGMENT}/notify|/hooks//notify")
    assert outcome == "sent" or outcome.startswith("refused: url has a '.' or '..' path segment")
    if value in ("..", ".", "%2e%2e"):
        assert outcome.startswith("refused")  # '..' and its spellings would climb once decoded


@pytest.mark.parametrize("value", HOSTILE)
def test_preset_commit_status_keeps_the_sha_in_its_segment(httpserver, ctx, value):
    record_everything(httpserver)
    webhook = expand("gitlab-commit-status", {"project": "group/app", "token_secret": "GitHubToken",
                                               "gitlab_url": httpserver.url_for("/gl")})
    variables = event("provider_verification_failed", consumerVersionNumber=value)
    outcome = attempt("request", webhook["request"], variables, ctx)
    stays_inside(httpserver, rf"/gl/api/v4/projects/group%2Fapp/statuses/{SEGMENT}|/gl/api/v4/projects/group%2Fapp"
                             r"/statuses/")
    assert outcome == "sent" or outcome.startswith("refused: url")


@pytest.mark.parametrize("name, params", [
    ("github-repository-dispatch", {"repository": "acme/.."}),
    ("github-repository-dispatch", {"repository": "../victim/x"}),
    ("github-workflow-dispatch", {"repository": "acme/app", "workflow": ".."}),
    ("circleci-pipeline", {"project_slug": "gh/acme//x"}),
    ("bitbucket-pipeline", {"workspace": "%2e%2e", "repository": "x"}),
])
def test_preset_parameters_refuse_dot_segments(name, params):
    with pytest.raises(PresetError) as refused:
        expand(name, params)
    assert any("'..' path segment" in " ".join(problems) for problems in refused.value.errors.values())
