"""Shared test helpers: sample events, a guarded context, a renderer with test secrets, golden recordings."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

import integrations
from integrations.base import Context
from integrations.netguard import Guard, Policy
from relay.broker.results import failing_interactions
from relay.delivery.attempt import failure_variables
from relay.pairs.failures import FOUND, Failure
from relay.templating import Renderer

os.environ.setdefault("PACT_DO_NOT_TRACK", "true")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EVENTS_DIR = FIXTURES / "pactbroker" / "events"
EVENT_NAMES = sorted(p.stem for p in EVENTS_DIR.glob("*.json"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# Secret values used by the tests; none of them may appear in a golden file or an attempt log.
SECRETS = {
    "GitHubToken": "ghp_testSECRETtoken0123456789",
    "SlackToken": "xoxb-test-SECRET-bot-token",
    "SlackHookPath": "T000SECRET/B000SECRET/XXXXhooksecretXXXX",
    "JenkinsToken": "11jenkinsSECRETapitoken",
    "TravisToken": "travisSECRETtoken_abc123",
    "TeamsWebhookPath": "workflows/T0SECRETflow/triggers/manual/paths/invoke?sig=TEAMSsecretSIG",
    "TeamsWebhook": "https://prod-42.westeurope.logic.azure.com:443/workflows/T0SECRETflow/triggers/manual/paths/"
                    "invoke?sig=TEAMSsecretSIG",
    "GitLabToken": "glpat-SECRETgitlabtoken01",
    "BitbucketToken": "ATCTT3xFfGN0SECRETbitbucket",
}
VOLATILE_HEADERS = {"host", "user-agent", "content-length", "accept-encoding", "connection"}


def event(name: str, **overrides: str) -> dict[str, str]:
    variables = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    variables.update(overrides)
    return variables


def saveable(kind: str) -> tuple[str, dict]:
    """(endpoint field, config) from the kind's declared sample, its secrets literal: saved without any secret."""
    integration = integrations.get(kind)
    config = {k: ("t" if integration.fields[k].secret else v) for k, v in integration.sample.items()}
    field = next(name for name, spec in integration.fields.items() if spec.endpoint)
    return field, config


def renderer(variables: dict[str, str], secrets: dict[str, str] | None = None) -> Renderer:
    values = {**SECRETS, **(secrets or {})}
    return Renderer(variables, lambda name: values[name])


@pytest.fixture
def ctx() -> Context:
    guard = Guard(Policy(allow_private=True, schemes=("http", "https")))
    return Context(session=guard.session(), check_url=guard.check_url, timeout=(2.0, 5.0), delivery_id="d-test")


@pytest.fixture
def events() -> dict[str, dict[str, str]]:
    return {name: event(name) for name in EVENT_NAMES}


def hide(text: str, extra: dict[str, str] | None = None) -> str:
    for name, value in {**SECRETS, **(extra or {})}.items():
        text = text.replace(value, f"<{name}>")
    return text


def recorded(httpserver, extra_secrets: dict[str, str] | None = None) -> list[dict]:
    """What the loopback server received, with secrets replaced by <NAME> and volatile headers dropped."""
    out = []
    for request, _response in httpserver.log:
        headers = {}
        for key, value in sorted(request.headers.items()):
            if key.lower() in VOLATILE_HEADERS:
                continue
            if key.lower() == "authorization" and value.startswith("Basic "):
                value = "Basic base64(" + base64.b64decode(value[6:]).decode() + ")"
            headers[key] = value
        raw = request.get_data(as_text=True)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        raw_path = request.environ.get("RAW_URI", request.path).split("?", 1)[0]  # as sent: %2F stays %2F
        out.append({"method": request.method, "path": raw_path,
                    "query": [[k, v] for k, v in request.args.items(multi=True)], "headers": headers, "body": body})
    return json.loads(hide(json.dumps(out), extra_secrets))


def golden(integration: str, name: str, actual) -> None:
    """Compare with tests/fixtures/<integration>/<name>.json; UPDATE_GOLDEN=1 rewrites it."""
    path = FIXTURES / integration / f"{name}.json"
    text = json.dumps(actual, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if UPDATE or not path.exists() and os.environ.get("CREATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1 and review it"
    assert json.loads(path.read_text()) == json.loads(text)


def failure_from(name: str) -> dict:
    """What the delivery gives integrations for a failed verification, from a real verifier's recorded result."""
    folder = FIXTURES / "pactbroker" / "verification_results"
    pact = json.loads((folder / "pact.json").read_text())
    details = failing_interactions(json.loads((folder / name).read_text()), pact)
    return failure_variables(Failure("https://broker.example.com/r/41", FOUND, "", details))
