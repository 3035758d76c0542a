"""Pact Relay as a Pact consumer of GitHub, Slack, Jenkins and Travis.

Consumer tests drive each integration's real `send` against pact-python's offline mock server and write
the pacts to pacts/. Provider verification replays those pacts against the loopback fakes (tests/integrations/
fakes.py) that the golden tests send to, so the pinned contracts and the fakes cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pact import Pact, Verifier, match  # PACT_DO_NOT_TRACK=true is set by conftest.py, imported first

from integrations import github, jenkins, slack, travis
from tests.integrations import fakes
from tests.integrations.conftest import event, renderer

PACTS = Path(__file__).resolve().parents[2] / "pacts"
CONSUMER = "pact-relay"
REPO, SHA = "acme/matching-service", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
URL = "https://broker.example.com/pacts/provider/Animal%20Profile%20Service/consumer/Matching%20Service/pact-version/1"
JSON_TYPE = match.regex("application/json", regex=r"^application/json(;\s?charset=utf-8)?$")
JWT = r"^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"


def new_pact(provider: str) -> Pact:
    return Pact(CONSUMER, provider).with_specification("V4")


def send(integration, config, event_name="provider_verification_succeeded", ctx=None, **overrides):
    variables = event(event_name, **overrides)
    built = integration.build(config, renderer(variables), variables)
    return integration.send(built, ctx)


def github_status(pact: Pact, description: str, auth: str, sha: str = SHA) -> None:
    (pact.upon_receiving(description)
     .given("the repository has the consumer commit", repository=REPO, sha=sha)
     .with_request("POST", f"/repos/{REPO}/statuses/{sha}")
     .with_header("Authorization", match.regex("token ghp_example", regex=auth))
     .with_header("Content-Type", JSON_TYPE)
     .with_body({"state": match.regex("success", regex=r"^(success|failure|pending|error)$"),
                 "context": match.str("pact/Animal Profile Service"),
                 "description": match.regex("Pact verified by Animal Profile Service 1.0.0", regex=r"^.{1,140}$"),
                 "target_url": match.regex(URL, regex=r"^https?://\S+$")}, content_type="application/json")
     .will_respond_with(201)
     .with_body({"id": match.int(1), "state": match.str("success"), "context": match.str("pact/x")},
                content_type="application/json"))


def test_github_consumer(ctx):
    pact = new_pact("github-api")
    github_status(pact, "a commit status set with a token", r"^token \S+$")
    (pact.upon_receiving("an installation token request signed as the GitHub App")
     .given("the app is installed", installation_id=77)
     .with_request("POST", "/app/installations/77/access_tokens")
     .with_header("Authorization", match.regex("Bearer aaa.bbb.ccc", regex=JWT))
     .with_body({"permissions": match.like({})}, content_type="application/json")
     .will_respond_with(201)
     .with_body({"token": match.str("ghs_example"), "expires_at": match.datetime("2030-01-01T00:00:00Z",
                                                                                 format="%Y-%m-%dT%H:%M:%SZ")},
                content_type="application/json"))
    github_status(pact, "a commit status set with an installation token", r"^token ghs_\S+$", "9fceb02")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pact.serve(addr="127.0.0.1") as srv:
        base = {"repository": REPO, "base_url": str(srv.url).rstrip("/"),
                "target_url": URL}
        send(github.GitHubStatus(), {**base, "token": "ghp_pactexampletoken"}, ctx=ctx, consumerVersionNumber=SHA)
        github._tokens.clear()
        send(github.GitHubStatus(), {**base, "app_id": "1", "private_key": pem, "installation_id": "77"}, ctx=ctx,
             consumerVersionNumber="9fceb02")
    pact.write_file(PACTS, overwrite=True)


SLACK_MESSAGE = {"text": match.str(":x: Animal Profile Service failed"),
                 "attachments": match.each_like({"color": match.regex("#D40E0D", regex=r"^#[0-9A-F]{6}$"),
                                                 # the headline section is pinned; other blocks may vary by event
                                                 "blocks": match.array_containing([
                                                     {"type": "section", "text": {"type": "mrkdwn", "text": match.str(
                                                         ":x: *Animal Profile Service* failed")}}])})}


def test_slack_consumer(ctx):
    pact = new_pact("slack-api")
    (pact.upon_receiving("a message to an incoming webhook")
     .given("the incoming webhook is active")
     .with_request("POST", "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX")
     .with_header("Content-Type", JSON_TYPE)
     .with_body(SLACK_MESSAGE, content_type="application/json")
     .will_respond_with(200)
     .with_body("ok", content_type="text/plain"))
    (pact.upon_receiving("a chat.postMessage call with a bot token")
     .given("the bot is in the channel", channel="#pacts")
     .with_request("POST", "/api/chat.postMessage")
     .with_header("Authorization", match.regex("Bearer xoxb-example", regex=r"^Bearer xox[bp]-\S+$"))
     .with_header("Content-Type", JSON_TYPE)
     .with_body({"channel": match.str("#pacts"), **SLACK_MESSAGE}, content_type="application/json")
     .will_respond_with(200)
     .with_body({"ok": True, "channel": match.str("C0PACTS"), "ts": match.str("1700000000.000100")},
                content_type="application/json"))
    with pact.serve(addr="127.0.0.1") as srv:
        root = str(srv.url).rstrip("/")
        hook = {"webhook_url": f"{root}/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"}
        assert send(slack.Slack(), hook, "provider_verification_failed", ctx=ctx).note == "message posted"
        bot = {"token": "xoxb-example", "channel": "#pacts", "base_url": f"{root}/api/"}
        assert send(slack.Slack(), bot, "provider_verification_failed", ctx=ctx).note == "message posted"
    pact.write_file(PACTS, overwrite=True)


def test_jenkins_consumer(ctx):
    pact = new_pact("jenkins")
    basic = match.regex("Basic cmVsYXk6dG9rZW4=", regex=r"^Basic [A-Za-z0-9+/]+=*$")
    (pact.upon_receiving("a crumb request")
     .given("CSRF protection is on")
     .with_request("GET", "/crumbIssuer/api/json")
     .with_header("Authorization", basic)
     .will_respond_with(200)
     .with_body({"crumb": match.str("c0ffee-crumb"), "crumbRequestField": match.str("Jenkins-Crumb")},
                content_type="application/json"))
    (pact.upon_receiving("a build with parameters in a folder")
     .given("the job exists", job="contracts/verify-provider")
     .with_request("POST", "/job/contracts/job/verify-provider/buildWithParameters")
     .with_header("Authorization", basic)
     .with_header("Jenkins-Crumb", match.str("c0ffee-crumb"))
     .with_query_parameter("PACT_URL", match.regex(URL, regex=r"^https?://\S+$"))
     .with_query_parameter("PROVIDER_VERSION", match.str("1.0.0"))
     .will_respond_with(201)
     .with_header("Location", match.regex("http://localhost/queue/item/42/", regex=r"^https?://\S+/queue/item/\d+/?$")))
    with pact.serve(addr="127.0.0.1") as srv:
        config = {"url": str(srv.url), "job": "contracts/verify-provider", "username": "relay", "token": "token",
                  "parameters": {"PACT_URL": URL, "PROVIDER_VERSION": "${pactbroker.providerVersionNumber}"}}
        assert "/queue/item/" in send(jenkins.Jenkins(), config, ctx=ctx).note
    pact.write_file(PACTS, overwrite=True)


def test_travis_consumer(ctx):
    pact = new_pact("travis-api")
    (pact.upon_receiving("an API v3 build request")
     .given("the repository is active on Travis", repository="acme/animal-profile-service")
     .with_request("POST", "/repo/acme%2Fanimal-profile-service/requests")
     .with_header("Travis-API-Version", "3")
     .with_header("Authorization", match.regex("token travis-example", regex=r"^token \S+$"))
     .with_header("Content-Type", JSON_TYPE)
     .with_body({"request": {"branch": match.str("main"), "message": match.str("Pact Relay: verify"),
                             "config": {"merge_mode": match.str("deep_merge_append"),
                                        "env": {"global": match.each_like(
                                            match.regex(f"PACT_URL={URL}", regex=r"^[A-Za-z_][A-Za-z0-9_]*=.*$"))}}}},
                content_type="application/json")
     .will_respond_with(202)
     .with_body({"@type": "pending", "request": {"id": match.int(4711)}}, content_type="application/json"))
    with pact.serve(addr="127.0.0.1") as srv:
        config = {"repository": "acme/animal-profile-service", "branch": "main", "token": "travis-example",
                  "env": {"PACT_URL": URL}, "base_url": str(srv.url).rstrip("/")}
        assert send(travis.Travis(), config, ctx=ctx).note.startswith("build request 4711")
    pact.write_file(PACTS, overwrite=True)


def _no_state(state: str, action: str, parameters: dict | None = None) -> None:
    """The fakes answer every state alike: they are stateless stand-ins."""


@pytest.mark.parametrize("provider,serve", [("github-api", fakes.serve_github), ("slack-api", fakes.serve_slack),
                                            ("jenkins", fakes.serve_jenkins), ("travis-api", fakes.serve_travis)])
def test_pacts_hold_against_the_loopback_fakes(httpserver, provider, serve):
    pact_file = PACTS / f"{CONSUMER}-{provider}.json"
    assert pact_file.exists(), "run the consumer tests first; they write pacts/"
    serve(httpserver)
    verifier = (Verifier(provider).add_transport(url=httpserver.url_for("/"))
                .state_handler(_no_state).add_source(pact_file))
    verifier.verify()  # raises with the verifier's report when the fake and the pact disagree
