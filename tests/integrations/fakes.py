"""Loopback stand-ins for every integration's target (golden tests, pact verification), FAKES and TARGETS."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug import Response

GITHUB_STATUS = re.compile(r"^/repos/[^/]+/[^/]+/statuses/[^/]+$")
GITHUB_TOKEN_GRANT = re.compile(r"^/app/installations/\d+/access_tokens$")
GITHUB_CHECK_RUNS = re.compile(r"^/repos/[^/]+/[^/]+/check-runs$")
SLACK_HOOK = re.compile(r"^/services/.+$")
SLACK_POST = "/api/chat.postMessage"
JENKINS_CRUMB = "/crumbIssuer/api/json"
JENKINS_BUILD = re.compile(r"^(/job/[^/]+)+/(buildWithParameters|build)$")
TRAVIS_REQUESTS = re.compile(r"^/repo/[^/]+/[^/]+/requests$")  # the server decodes owner%2Fname before matching
CRUMB = {"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": "c0ffee-crumb",
         "crumbRequestField": "Jenkins-Crumb"}


def serve_github(httpserver) -> None:
    def status(request):
        body = json.loads(request.get_data())
        reply = {"id": 1, "url": request.url, "state": body["state"], "context": body.get("context", "default"),
                 "description": body.get("description"), "target_url": body.get("target_url"),
                 "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
        return Response(json.dumps(reply), status=201, content_type="application/json")

    def grant(request):
        scheme, _, jwt = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or jwt.count(".") != 2:
            return Response(json.dumps({"message": "A JSON web token could not be decoded"}), status=401,
                            content_type="application/json")
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Response(json.dumps({"token": "ghs_fakeinstallationtoken", "expires_at": expires}), status=201,
                        content_type="application/json")

    def check_run(request):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "token" or not token.startswith("ghs_"):  # GitHub creates check runs for Apps only
            return Response(json.dumps({"message": "You must authenticate via a GitHub App."}), status=403,
                            content_type="application/json")
        body = json.loads(request.get_data())
        reply = {"id": 4, "url": request.url + "/4", "name": body["name"], "head_sha": body["head_sha"],
                 "status": body.get("status", "queued"), "conclusion": body.get("conclusion"),
                 "details_url": body.get("details_url"), "output": body.get("output", {}),
                 "started_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-01T00:00:00Z"}
        return Response(json.dumps(reply), status=201, content_type="application/json")

    httpserver.expect_request(GITHUB_TOKEN_GRANT, method="POST").respond_with_handler(grant)
    httpserver.expect_request(GITHUB_CHECK_RUNS, method="POST").respond_with_handler(check_run)
    httpserver.expect_request(GITHUB_STATUS, method="POST").respond_with_handler(status)


def serve_slack(httpserver) -> None:
    httpserver.expect_request(SLACK_HOOK, method="POST").respond_with_data("ok", content_type="text/plain")
    httpserver.expect_request(SLACK_POST, method="POST").respond_with_json(
        {"ok": True, "channel": "C0PACTS", "ts": "1700000000.000100", "message": {"type": "message"}})


def serve_jenkins(httpserver) -> None:
    httpserver.expect_request(JENKINS_CRUMB, method="GET").respond_with_json(CRUMB)
    httpserver.expect_request(JENKINS_BUILD, method="POST").respond_with_data(
        "", status=201, headers={"Location": httpserver.url_for("/queue/item/42/")})


def serve_travis(httpserver) -> None:
    def accept(request):
        body = json.loads(request.get_data())["request"]
        reply = {"@type": "pending", "remaining_requests": 9, "resource_type": "request",
                 "request": {"id": 4711, "branch": body["branch"], "message": body.get("message")}}
        return Response(json.dumps(reply), status=202, content_type="application/json")

    httpserver.expect_request(TRAVIS_REQUESTS, method="POST").respond_with_handler(accept)


GITLAB_STATUS = re.compile(r"^/api/v4/projects/.+/statuses/[0-9a-fA-F]+$")  # the server decodes %2F
BITBUCKET_STATUS = re.compile(r"^/2\.0/repositories/[^/]+/[^/]+/commit/[0-9a-fA-F]+/statuses/build$")
TEAMS_HOOK = re.compile(r"^/workflows/.+$")


def serve_gitlab(httpserver) -> None:
    def status(request):
        body = json.loads(request.get_data())
        reply = {"id": 93, "sha": request.path.rsplit("/", 1)[-1], "ref": None, "status": body["state"],
                 "name": body.get("name", "default"), "target_url": body.get("target_url"),
                 "description": body.get("description"), "created_at": "2026-01-01T00:00:00.000Z",
                 "allow_failure": False}
        return Response(json.dumps(reply), status=201, content_type="application/json")

    httpserver.expect_request(GITLAB_STATUS, method="POST").respond_with_handler(status)


def serve_bitbucket(httpserver) -> None:
    def status(request):
        body = json.loads(request.get_data())
        reply = {"type": "commitstatus", "key": body["key"], "state": body["state"], "url": body["url"],
                 "description": body.get("description", ""), "created_on": "2026-01-01T00:00:00+00:00"}
        return Response(json.dumps(reply), status=201, content_type="application/json")

    httpserver.expect_request(BITBUCKET_STATUS, method="POST").respond_with_handler(status)


def serve_teams(httpserver) -> None:
    httpserver.expect_request(TEAMS_HOOK, method="POST").respond_with_data("", status=202)


def app_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _ok(httpserver) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")


# What answers each kind like its real target does: a new integration adds its stand-in here.
FAKES = {"request": lambda httpserver: httpserver.expect_request(re.compile("^/hooks/.*$")).respond_with_data("ok"),
         "github": serve_github, "slack": serve_slack, "jenkins": serve_jenkins, "travis": serve_travis,
         "teams": serve_teams, "gitlab": serve_gitlab, "bitbucket": serve_bitbucket}


# kind, config for a target at `base`, what serves it: each library and way of authenticating, for the guard tests
TARGETS = {
    "request (requests)": ("request", lambda base: {"method": "POST", "url": f"{base}/hook"}, _ok),
    "github token (PyGithub)": ("github", lambda base: {"repository": "acme/app", "token": "${user.GitHubToken}",
                                                        "sha": "9fceb02", "base_url": base}, serve_github),
    "github app (PyGithub)": ("github", lambda base: {"repository": "acme/app", "app_id": "4242",
                                                      "private_key": "${user.AppKey}", "installation_id": "77",
                                                      "sha": "9fceb02", "base_url": base}, serve_github),
    "slack webhook (slack-sdk)": ("slack", lambda base: {"webhook_url": f"{base}/services/${{user.SlackHookPath}}"},
                                  serve_slack),
    "slack bot (slack-sdk)": ("slack", lambda base: {"token": "${user.SlackToken}", "channel": "#pacts",
                                                     "base_url": f"{base}/api/"}, serve_slack),
    "jenkins (python-jenkins)": ("jenkins", lambda base: {"url": f"{base}/", "job": "contracts/verify",
                                                          "parameters": {"PACT_URL": "${pactbroker.pactUrl}"},
                                                          "username": "bot", "token": "${user.JenkinsToken}"},
                                 serve_jenkins),
    "travis (requests)": ("travis", lambda base: {"repository": "acme/app", "branch": "main",
                                                  "token": "${user.TravisToken}", "base_url": base}, serve_travis),
    "teams (requests)": ("teams", lambda base: {"webhook_url": f"{base}/${{user.TeamsWebhookPath}}"},
                         serve_teams),
    "gitlab (requests)": ("gitlab", lambda base: {"project": "acme/app", "token": "${user.GitLabToken}",
                                                  "sha": "9fceb02", "base_url": base}, serve_gitlab),
    "bitbucket (requests)": ("bitbucket", lambda base: {"repository": "acme/app", "token": "${user.BitbucketToken}",
                                                        "sha": "9fceb02", "base_url": base}, serve_bitbucket),
}
