"""Template rendering: the Pact Broker vectors, escaping by location, single pass, save-time checks."""

import json

import pytest

from relay.templating import VARIABLES, Renderer, host_is_templated, template_errors
from tests.conftest import FIXTURES

VECTORS = json.loads((FIXTURES / "pactbroker" / "render_vectors.json").read_text())
CASES = [(VECTORS.get("vars"), case) for key in ("cases", "documents") for case in VECTORS.get(key, [])]
LOCATIONS = {"body_text": "text", "body_json": "json", "url": "url", "header": "header"}


def no_secrets(name):
    raise AssertionError(f"no secret expected, asked for {name}")


@pytest.mark.parametrize("default_vars,case", CASES, ids=[c.get("about", str(c["template"]))[:60] for _, c in CASES])
def test_render_vectors(default_vars, case):
    renderer = Renderer(case.get("vars", default_vars), no_secrets)
    assert renderer(case["template"], LOCATIONS[case["location"]]) == case["expected"]


def test_every_broker_variable_is_known():
    documented = {v["name"] for v in json.loads((FIXTURES / "pactbroker" / "variables.json").read_text())["variables"]}
    assert documented == set(VARIABLES) and len(VARIABLES) == 20


def test_single_pass_never_expands_a_value():
    renderer = Renderer({"consumerName": "${user.token}", "providerName": "${pactbroker.consumerName}"},
                        lambda name: "SECRET")
    out = renderer("${pactbroker.consumerName}|${pactbroker.providerName}", "text")
    assert out == "${user.token}|${pactbroker.consumerName}"
    assert renderer.used == set()


def test_json_body_stays_valid_with_quotes_newlines_and_backslashes():
    nasty = 'a "quoted"\n\\ value\r\n</script>'
    renderer = Renderer({"consumerName": nasty}, no_secrets)
    body = json.dumps(renderer({"name": "${pactbroker.consumerName}", "list": ["${pactbroker.consumerName}"]}, "json"))
    assert json.loads(body) == {"name": nasty, "list": [nasty]}


def test_url_values_are_form_encoded():
    renderer = Renderer({"consumerName": "a b/c&d=e?", "consumerVersionNumber": "1.0+build"}, no_secrets)
    assert renderer("https://ci/x/${pactbroker.consumerName}?v=${pactbroker.consumerVersionNumber}", "url") == \
        "https://ci/x/a+b%2Fc%26d%3De%3F?v=1.0%2Bbuild"


def test_user_secrets_are_substituted_and_remembered():
    renderer = Renderer({}, {"ciToken": "t0ps3cret"}.__getitem__)
    assert renderer("Bearer ${user.ciToken}", "header") == "Bearer t0ps3cret"
    assert renderer.used == {"t0ps3cret"}


def test_case_sensitive_and_unknown_names_left_alone():
    renderer = Renderer({"consumerName": "Foo"}, no_secrets)
    assert renderer("${pactbroker.ConsumerName} ${PACTBROKER.consumerName}", "text") == \
        "${pactbroker.ConsumerName} ${PACTBROKER.consumerName}"


def test_save_time_errors():
    errors = template_errors({"a": "${pactbroker.nope}", "b": ["${user.missing}", "${user.there}"]}, {"there"})
    assert errors == ["secret ${user.missing} does not exist", "unknown variable ${pactbroker.nope}"]
    assert template_errors("${pactbroker.consumerName} ${user.there}", {"there"}) == []


@pytest.mark.parametrize("url,templated", [
    ("https://${pactbroker.consumerName}.example.com/x", True),
    ("https://example.com:${pactbroker.providerVersionNumber}/", True),
    ("https://user:${user.pw}@example.com/", True),
    ("${pactbroker.pactUrl}", True),
    ("https://example.com/${pactbroker.consumerName}?x=${user.t}", False),
    ("https://example.com", False),
])
def test_host_templates_are_detected(url, templated):
    assert host_is_templated(url) is templated
