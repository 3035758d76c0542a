"""What every registered integration owes the core: declared fields, golden fixtures, no secret in any log."""

from __future__ import annotations

import json

import pytest

from integrations import REGISTRY
from integrations.base import Field, PermanentDeliveryError
from tests.integrations.conftest import EVENT_NAMES, FIXTURES, SECRETS, event, renderer
from tests.relay.intake.test_presets import TOKENS

# Literal secrets (not ${user.X}): the core can only redact values it knows, so none may reach a log by itself.
SAMPLES = {name: {key: (renderer({})(value, "text") if integration.fields[key].secret else value)
                  for key, value in integration.sample.items()}
           for name, integration in REGISTRY.items() if name != "request"}
TYPED = sorted(name for name in REGISTRY if name != "request")  # `request` belongs to the core's tests
EXTRA_SAMPLES = {"slack": {"token": SECRETS["SlackToken"], "channel": "#c"}}


def test_every_typed_integration_has_a_sample():
    assert all(REGISTRY[name].sample for name in TYPED)


@pytest.mark.parametrize("name", TYPED)
def test_declares_fields(name):
    integration = REGISTRY[name]
    assert integration.title and integration.fields
    assert all(isinstance(f, Field) for f in integration.fields.values())
    assert any(f.secret for f in integration.fields.values()), "every typed target takes a credential"
    assert integration.validate(SAMPLES[name]) == {}


@pytest.mark.parametrize("name", TYPED)
def test_has_a_golden_file_per_event(name):
    names = {p.stem.split("__")[0] for p in (FIXTURES / name).glob("*__*.json")}
    assert names >= set(EVENT_NAMES), f"missing golden files for {set(EVENT_NAMES) - names}"


@pytest.mark.parametrize("name", TYPED)
@pytest.mark.parametrize("event_name", EVENT_NAMES)
def test_no_secret_in_the_attempt_log_or_repr(name, event_name):
    integration = REGISTRY[name]
    for config in (SAMPLES[name], EXTRA_SAMPLES.get(name)):
        if not config:
            continue
        variables = event(event_name)
        built = integration.build(config, renderer(variables), variables)
        shown = json.dumps([r.to_log() for r in integration.describe(built)]) + repr(built)
        leaked = [k for k, v in SECRETS.items() if v in shown]
        assert not leaked, f"{name} shows {leaked} in its log"


def test_no_secret_in_any_golden_file_or_pact():
    values = list(SECRETS.values()) + list(TOKENS.values())
    for path in [*FIXTURES.glob("*/*.json"), *(FIXTURES.parents[1] / "pacts").glob("*.json")]:
        if path.parent.name == "pactbroker":
            continue
        text = path.read_text()
        assert not [v for v in values if v in text], f"secret value in {path}"


def test_the_documented_examples_are_valid():
    import re

    from relay.intake.presets import expand

    text = (FIXTURES.parents[1] / "docs" / "integrations.md").read_text()
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)]
    kinds = set()
    for example in examples:
        if "preset" in example:
            params = {k: v for k, v in example.items() if k != "preset"}
            assert expand(example["preset"], params)["request"]["url"].startswith("https://")
            kinds.add("preset")
            continue
        (kind,) = [k for k in example if k in REGISTRY]
        assert REGISTRY[kind].validate(example[kind]) == {}, kind
        kinds.add(kind)
    assert kinds == {*TYPED, "preset"}


LONG = "not/a/sha " + "hiddenvalue0123456789" * 5  # invalid for every field below, and long

REFUSED = [
    ("github", "sha", {}),
    ("github", "repository", {}),
    ("travis", "repository", {}),
    ("jenkins", "job", {}),
    ("gitlab", "sha", {}),
    ("gitlab", "project", {}),
    ("bitbucket", "sha", {}),
    ("bitbucket", "repository", {}),
]


@pytest.mark.parametrize(("name", "field", "extra"), REFUSED)
def test_a_value_rendered_from_a_secret_is_never_echoed_in_an_error(name, field, extra):
    """Issue 23 #14: `sha: ${user.Long}` failed with 80 characters of the secret in its message."""
    config = {**SAMPLES.get(name, {}), **extra}
    config[field] = "a/${user.Long}" if field == "job" else "${user.Long}"
    variables = event("contract_published")
    with pytest.raises(PermanentDeliveryError) as refused:
        REGISTRY[name].build(config, renderer(variables, {"Long": LONG}), variables)
    message = str(refused.value)
    assert not any(LONG[i:i + 6] in message for i in range(len(LONG) - 6)), message
    assert "secret" in message


def test_hosts_for_per_host_limits_are_the_real_hosts():
    def reveal(value):
        return SECRETS["TeamsWebhook"] if value == "${user.TeamsWebhook}" else value

    assert REGISTRY["teams"].host({"webhook_url": "${user.TeamsWebhook}"}, reveal) == \
        "prod-42.westeurope.logic.azure.com:443"
    assert REGISTRY["teams"].host({"webhook_url": "${user.TeamsWebhook}"}) is None  # the limit falls back to the kind
    assert REGISTRY["slack"].host({"webhook_url": "${user.SlackHook}"}) == "hooks.slack.com"
    assert REGISTRY["gitlab"].host({"project": "1"}) == "gitlab.com"
    assert REGISTRY["bitbucket"].host({"base_url": "https://bb.example.com:8443/"}) == "bb.example.com:8443"
    assert REGISTRY["github"].host({"target_url": "https://ci.example.com/x"}) == "api.github.com"
