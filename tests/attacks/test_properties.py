"""Property tests: the intake validator, the renderer and the webhook validator on anything an attacker can send."""

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import integrations
from integrations.base import PermanentDeliveryError
from integrations.http import HttpRequest
from relay.config import Settings
from relay.errors import PayloadError
from relay.intake.events import EVENT_NAMES, parse
from relay.intake.webhooks import WebhookInput
from relay.security.secrets import Vault
from relay.templating import KNOWN, PLACEHOLDER, VARIABLES, Renderer
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.filterwarnings("ignore")
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRETS = {"token": "s3cr3t-t0ken", "other": "0ther-v@lue"}

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
# Pieces that stress templates and URLs: placeholders of both kinds, broken ones, line breaks, URL syntax.
PIECES = ["${pactbroker.consumerName}", "${pactbroker.providerName}", "${user.token}", "${user.missing}",
          "${pactbroker.nope}", "${", "}", "$", "\r\n", "\n", "\r", "\0", '"', "'", "\\", "[", "]", ":", "@", "/",
          "?", "#", "%", "%0d%0a", "..", " "]
template_text = st.lists(st.text(max_size=6) | st.sampled_from(PIECES), max_size=8).map("".join)
hostile_values = st.lists(st.text(max_size=6) | st.sampled_from(PIECES), max_size=8).map("".join)
variables = st.dictionaries(st.sampled_from(VARIABLES), hostile_values)


def make_settings() -> Settings:
    return Settings.from_env({"RELAY_DATA_DIR": "/nonexistent/relay"}, database_url="sqlite://", redis_url=None,
                             secret_key="x", encryption_keys=TEST_KEYS)


SETTINGS = make_settings()
VAULT = Vault(TEST_KEYS)


class Lookups:
    """The secret lookup a renderer gets, recording which names were asked for."""

    def __init__(self):
        self.asked: list[str] = []

    def __call__(self, name: str) -> str:
        from relay.templating import MissingSecret

        self.asked.append(name)
        if name not in SECRETS:
            raise MissingSecret(name)
        return SECRETS[name]


# --- intake ---------------------------------------------------------------------------------------------

@PROPERTY
@given(st.binary(max_size=2000))
def test_parse_any_bytes(body):
    _parsed_or_payload_error(body)


@PROPERTY
@given(json_values)
def test_parse_any_json(value):
    _parsed_or_payload_error(json.dumps(value).encode())


@PROPERTY
@given(st.dictionaries(st.sampled_from([*VARIABLES, *(f"pactbroker.{v}" for v in VARIABLES), "x"]),
                       hostile_values | json_values),
       st.sampled_from([*EVENT_NAMES, "test", "", "nope"]))
def test_parse_event_shaped_objects(doc, name):
    doc["eventName"] = name
    _parsed_or_payload_error(json.dumps(doc).encode())


@pytest.mark.parametrize("depth", [10, 500, 5000, 100_000])
def test_parse_deep_nesting_is_a_payload_error(depth):
    body = ("[" * depth + "]" * depth).encode()
    with pytest.raises(PayloadError):
        parse(body)
    with pytest.raises(PayloadError):
        parse(b'{"eventName": ' + body + b"}")


def _parsed_or_payload_error(body: bytes) -> None:
    try:
        result = parse(body)
    except PayloadError as exc:
        json.dumps(exc.errors)  # the 400 body is always serialisable
        assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in exc.errors.values())
        return
    assert set(result) <= KNOWN and all(isinstance(v, str) for v in result.values())
    assert result["eventName"] in (*EVENT_NAMES, "test")
    assert result["consumerName"].strip() and result["providerName"].strip()


# --- rendering ------------------------------------------------------------------------------------------

@PROPERTY
@given(template_text, variables, st.sampled_from(["url", "header", "text"]))
def test_values_never_expand_secrets(template, values, location):
    lookups = Lookups()
    try:
        out = Renderer(values, lookups)(template, location)
    except LookupError:
        out = None
    named = {m.group(2) for m in PLACEHOLDER.finditer(template) if m.group(1) == "user"}
    assert set(lookups.asked) <= named  # only the template's own references are looked up
    if out is not None and not any(f"${{user.{n}}}" in template for n in SECRETS):
        assert not any(secret in out for secret in SECRETS.values())


@PROPERTY
@given(st.sampled_from(["http", "https"]),
       st.sampled_from(["example.com", "relay.example.com:8443", "127.0.0.1:9000", "[::1]:8080"]),
       template_text, variables)
def test_url_rendering_keeps_scheme_and_host(scheme, host, rest, values):
    rest = rest.replace("${user.missing}", "").translate({ord(c): None for c in "\r\n\0"})
    template = f"{scheme}://{host}/{rest}"
    rendered = Renderer(values, Lookups())(template, "url")
    before, after = urlsplit(f"{scheme}://{host}/"), urlsplit(rendered)
    assert (after.scheme, after.hostname, after.port) == (before.scheme, before.hostname, before.port)
    assert not any(c in rendered for c in "\r\n\0")  # every substituted value is percent-encoded


@PROPERTY
@given(st.dictionaries(st.text(min_size=1, max_size=10), template_text, max_size=4), variables)
def test_headers_never_carry_line_breaks(headers, values):
    headers = {k: v.replace("${user.missing}", "") for k, v in headers.items()}
    config = {"method": "POST", "url": "https://example.com/hook", "headers": headers}
    try:
        built = HttpRequest().build(config, Renderer(values, Lookups()), values)
    except PermanentDeliveryError:
        return  # refused before sending: the attempt fails, nothing is split
    for name, value in built.headers.items():
        assert not any(c in name + value for c in "\r\n\0")


@PROPERTY
@given(json_values, variables)
def test_json_bodies_stay_valid_json(body, values):
    assume(isinstance(body, (dict, list)))
    body = json.loads(json.dumps(body).replace("${user.missing}", ""))
    config = {"method": "POST", "url": "https://example.com/hook", "body": body}
    built = HttpRequest().build(config, Renderer(values, Lookups()), values)
    parsed = json.loads(built.body)
    assert type(parsed) is type(body)


@PROPERTY
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                       st.sampled_from(["${pactbroker.consumerName}", "${pactbroker.providerName}",
                                        "x ${pactbroker.consumerName} y"]), min_size=1), variables)
def test_json_body_values_survive_quotes_and_newlines(body, values):
    config = {"method": "POST", "url": "https://example.com/hook", "body": body}
    built = HttpRequest().build(config, Renderer(values, Lookups()), values)
    parsed = json.loads(built.body)
    for key, template in body.items():
        # single pass: a substituted value is never scanned again
        expected = PLACEHOLDER.sub(lambda m: values.get(m.group(2), ""), template)
        assert parsed[key] == expected


# --- webhook validation ---------------------------------------------------------------------------------

party = json_values | st.fixed_dictionaries({}, optional={"name": json_values | st.text(), "label": st.text()})
url_like = template_text | st.builds(lambda s, h, p: f"{s}://{h}{p}",
                                     st.sampled_from(["http", "https", "ftp", "", "javascript"]),
                                     st.text(max_size=20) | st.sampled_from(["[::1", "host:99999", "a@b", "[x]"]),
                                     template_text)
request_config = st.fixed_dictionaries({}, optional={
    "method": st.sampled_from(["POST", "get", "TRACE", ""]) | json_values, "url": url_like,
    "headers": st.dictionaries(st.text(max_size=10), template_text | json_values, max_size=3) | json_values,
    "body": json_values | template_text, "username": template_text | json_values,
    "password": template_text | json_values, "sign": st.booleans() | json_values})


def typed_config(kind: str):
    fields = list(integrations.get(kind).fields)
    return st.dictionaries(st.sampled_from([*fields, "unknown"]), template_text | url_like | json_values, max_size=6)


webhook_docs = st.fixed_dictionaries({}, optional={
    "description": json_values, "consumer": party, "provider": party, "enabled": json_values,
    "events": json_values | st.lists(st.fixed_dictionaries({"name": st.sampled_from([*EVENT_NAMES, "x"])})),
    "timeout": json_values | st.fixed_dictionaries({}, optional={"connect": json_values, "read": json_values}),
    "request": request_config | json_values,
    **{kind: typed_config(kind) for kind in integrations.REGISTRY if kind != "request"},
})


@PROPERTY
@given(webhook_docs)
def test_webhook_validator_structured_documents(doc):
    _validated_or_payload_error(doc)


@PROPERTY
@given(json_values)
def test_webhook_validator_any_json(doc):
    _validated_or_payload_error(doc)


def _validated_or_payload_error(doc) -> None:
    doc = json.loads(json.dumps(doc))  # what a request body can carry
    try:
        values = WebhookInput(SETTINGS, VAULT, set(SECRETS), None).parse(doc)
    except PayloadError as exc:
        json.dumps(exc.errors)
        return
    assert values["kind"] in integrations.REGISTRY
    json.dumps(values["config"])  # storable in the JSON column
    if values["kind"] == "request":
        url = values["config"]["url"]
        assert urlsplit(url.replace("${", "x").replace("}", "x")).scheme in SETTINGS.allowed_schemes
