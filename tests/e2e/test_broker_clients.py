"""The Pact Broker's own clients (Ruby and Rust `pact-broker`) manage a real relay's webhooks, which then fire.

The clients come from the registries through tools/install-pact-clients (run by .ci/run); nothing here is
mocked or recorded. One `pact-relay serve` and one recording target serve the whole module.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import pact_event
from tests.e2e.conftest import ROOT, Relay, Sink, wait_for

pytestmark = pytest.mark.e2e

CLIENTS = {
    "ruby": ROOT / ".ci-tools/ruby/pact_cli/bin/pact-broker",
    "rust": ROOT / ".ci-tools/node/node_modules/.bin/pact-broker",
}
EVENT_FLAGS = {
    "--contract-content-changed": "contract_content_changed",
    "--contract-published": "contract_published",
    "--provider-verification-published": "provider_verification_published",
    "--provider-verification-failed": "provider_verification_failed",
    "--provider-verification-succeeded": "provider_verification_succeeded",
    "--contract-requiring-verification-published": "contract_requiring_verification_published",
}
TEAM = "b7f5e1a2-46c4-4b4e-9a3c-5d1f0a3b2c11"


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    server = Relay(tmp_path_factory.mktemp("broker-clients") / "data", {}).start(workers=1, web_workers=1)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def target():
    sink = Sink()
    yield sink
    sink.close()


@pytest.fixture(params=sorted(CLIENTS))
def client(request, relay):
    path = CLIENTS[request.param]
    if not path.exists():
        message = f"the {request.param} pact-broker client is not installed at {path}: run tools/install-pact-clients"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: missing there is a broken build, not a skip
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACT_BROKER_")}

    def run(*args: str, ok: bool = True) -> str:
        result = subprocess.run([str(path), *args, "--broker-base-url", relay.url, "--broker-token",
                                 relay.admin_token()], env=env, capture_output=True, text=True, timeout=120)
        output = result.stdout + result.stderr
        assert (result.returncode == 0) == ok, f"{request.param} pact-broker {' '.join(args)}: {output}"
        return output

    run.name = request.param
    return run


def webhooks(relay) -> dict[str, dict]:
    return {h["uuid"]: h for h in relay.call("GET", "/webhooks").json()["webhooks"]}


def arrivals(target, prefix: str) -> list[dict]:
    return [r for r in target.requests if r["path"].startswith(prefix)]


def test_webhook_commands_make_webhooks_that_fire_as_asked(client, relay, target):
    name = client.name
    consumer, provider = f"{name} Consumer/App", f"{name} Provider Ü"
    hook = f"{target.url}/{name}"
    pair = ["--consumer", consumer, "--provider", provider]
    before = set(webhooks(relay))

    # With a consumer and provider pair (the clients POST /webhooks/provider/{p}/consumer/{c}), a JSON body.
    out = client("create-webhook", f"{hook}/pair", "-X", "POST", "-H", "Content-Type: application/json",
                 "-d", '{"consumer": "${pactbroker.consumerName}", "url": "${pactbroker.pactUrl}"}',
                 "--description", f"{name} pair", "--contract-published", *pair)
    assert f"{name} pair" in out
    # Without any pair (every consumer and provider), with every event flag and a PactFlow team.
    client("create-webhook", f"{hook}/any", "-X", "POST", *EVENT_FLAGS, "--team-uuid", TEAM)
    # Labels on both sides, and basic auth towards the target.
    client("create-webhook", f"{hook}/labels", "-X", "POST", "--consumer-label", f"{name}-web",
           "--provider-label", f"{name}-api", "--user", "deploy:s3cr3t pass", "--contract-content-changed")
    # A GET carrying the values in its query, and a form body.
    client("create-webhook", f"{hook}/get?consumer=${{pactbroker.consumerName}}", "-X", "GET", *pair,
           "--provider-verification-published")
    client("create-webhook", f"{hook}/form", "-X", "POST", "-H", "Content-Type: application/x-www-form-urlencoded",
           "-d", "consumer=${pactbroker.consumerName}&status=${pactbroker.githubVerificationStatus}", *pair,
           "--contract-requiring-verification-published")
    # Create-or-update with a client-chosen uuid: created, then updated in place.
    uuid = f"{name}-0f4b1c3e-aaaa-4bbb-8ccc-123456789012"
    first = client("create-or-update-webhook", f"{hook}/v1", "--uuid", uuid, "-X", "POST", *pair,
                   "--contract-content-changed", "--description", f"{name} versioned")
    second = client("create-or-update-webhook", f"{hook}/v2", "--uuid", uuid, "-X", "POST", *pair,
                    "--contract-content-changed", "--description", f"{name} versioned")
    if name == "ruby":  # the Ruby client says which; the Rust one prints the webhook
        assert "created" in first and "updated" in second

    made = {h["request"]["url"].split("?")[0].rsplit("/", 1)[1]: h
            for u, h in webhooks(relay).items() if u not in before}
    assert sorted(made) == ["any", "form", "get", "labels", "pair", "v2"]
    assert made["pair"]["consumer"] == {"name": consumer} and made["pair"]["provider"] == {"name": provider}
    assert "consumer" not in made["any"] and "provider" not in made["any"] and made["any"]["teamUuid"] == TEAM
    assert sorted(e["name"] for e in made["any"]["events"]) == sorted(EVENT_FLAGS.values())
    assert made["labels"]["consumer"] == {"label": f"{name}-web"}
    assert made["labels"]["provider"] == {"label": f"{name}-api"}
    assert made["labels"]["request"]["username"] == "deploy" and made["labels"]["request"]["password"] == "**********"
    assert made["v2"]["uuid"] == uuid and made["v2"]["description"] == f"{name} versioned"

    # test-webhook sends the webhook now (with a sample event) and prints the relay's log of it.
    out = client("test-webhook", "--uuid", uuid)
    assert f"POST {hook}/v2" in out
    wait_for(lambda: arrivals(target, f"/{name}/v2"), timeout=10, what="the test execution")

    # delete-webhook (Rust only: the Ruby client has no such command) removes it; a later event sends nothing.
    if name == "rust":
        doomed = client("create-webhook", f"{hook}/deleted", "-X", "POST", *pair, "--contract-published")
        assert "/deleted" in doomed
        doomed_uuid = next(u for u, h in webhooks(relay).items() if h["request"]["url"].endswith("/deleted"))
        assert "successfully deleted" in client("delete-webhook", "--uuid", doomed_uuid)
        assert doomed_uuid not in webhooks(relay)
        assert "was not found" in client("delete-webhook", "--uuid", doomed_uuid)

    # The broker's events: each webhook fires for what it asked for, and nothing else does.
    target.requests.clear()
    labels = {"consumerLabels": f"{name}-web", "providerLabels": f"{name}-api"}
    for n, event in enumerate(EVENT_FLAGS.values(), start=1):
        body = pact_event(event, n=n, consumerName=consumer, providerName=provider, **labels)
        assert relay.call("POST", "/events", json=body).status_code == 202
    other = pact_event("contract_published", consumerName=f"{name} other", providerName=provider)
    assert relay.call("POST", "/events", json=other).status_code == 202
    expected = {"pair": 1, "any": 7, "labels": 1, "get": 1, "form": 1, "v2": 1}
    wait_for(lambda: len(arrivals(target, f"/{name}/")) >= sum(expected.values()), timeout=30,
             what=lambda: f"deliveries; got {[r['path'] for r in target.requests]}")
    time.sleep(1)  # anything extra would arrive about now
    got = {}
    for request in arrivals(target, f"/{name}/"):
        key = urlsplit(request["path"]).path.rsplit("/", 1)[1]
        got[key] = got.get(key, 0) + 1
    assert got == expected

    by_kind = {urlsplit(r["path"]).path.rsplit("/", 1)[1]: r for r in arrivals(target, f"/{name}/")}
    pair_body = requests.compat.json.loads(by_kind["pair"]["body"])
    assert pair_body["consumer"] == consumer and pair_body["url"].startswith("https://")
    assert by_kind["labels"]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"deploy:s3cr3t pass").decode()
    assert by_kind["get"]["method"] == "GET"
    assert parse_qs(urlsplit(by_kind["get"]["path"]).query) == {"consumer": [consumer]}
    assert parse_qs(by_kind["form"]["body"]) == {"consumer": [consumer], "status": ["pending"]}
    assert by_kind["form"]["headers"]["Content-Type"] == "application/x-www-form-urlencoded"

    for uuid in set(webhooks(relay)) - before:  # the next client starts from a clean relay
        assert relay.call("DELETE", f"/webhooks/{uuid}").status_code == 204


@pytest.mark.parametrize("command", [
    ["can-i-deploy", "--pacticipant", "Foo", "--version", "1.0.0"],
    ["publish", str(ROOT / "pacts"), "--consumer-app-version", "1.0.0", "--branch", "main"],
    ["describe-pacticipant", "--name", "Foo"],
])
def test_broker_only_commands_are_told_this_is_the_relay(client, command):
    assert "This is Pact Relay, not a Pact Broker" in client(*command, ok=False)
