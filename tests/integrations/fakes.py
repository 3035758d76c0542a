"""Loopback stand-ins for GitHub, Slack, Jenkins and Travis: used by the golden tests and to verify the pacts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from werkzeug import Response

GITHUB_STATUS = re.compile(r"^/repos/[^/]+/[^/]+/statuses/[^/]+$")
GITHUB_TOKEN_GRANT = re.compile(r"^/app/installations/\d+/access_tokens$")
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

    httpserver.expect_request(GITHUB_TOKEN_GRANT, method="POST").respond_with_handler(grant)
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
