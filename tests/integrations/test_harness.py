"""Every registered integration through the same cases: golden sends, failure modes, hostile values, secrets."""

from __future__ import annotations

import json
import re
import socket
import threading

import pytest
from werkzeug import Response

import integrations
from integrations.base import READ_LIMIT, Context, DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from integrations.netguard import Guard, Policy
from tests.integrations.conftest import EVENT_NAMES, SECRETS, event, golden, recorded, renderer
from tests.integrations.fakes import FAKES

KINDS = sorted(integrations.REGISTRY)
# Golden files the per-integration tests wrote before this harness, kept byte for byte under their names.
GOLDEN_DETAIL = {"github": "token", "slack": "webhook", "jenkins": "crumb", "travis": "env"}
HOSTILE = ["../../../../repos/victim-org/private-repo/forks,abc?x=1#", "..", "%2e%2e", "a/../../b", "a%2fb",
           "x?y=1", "x#frag", "x\r\nX-Injected: 1", ""]


def aimed(kind: str, base: str) -> tuple[dict, dict[str, str]]:
    """The kind's declared sample with every endpoint field pointing at `base`; (config, extra secrets)."""
    integration = integrations.get(kind)
    config, extra = dict(integration.sample), {}
    for name, spec in integration.fields.items():
        value = config.get(name, spec.default)
        if not spec.endpoint or not isinstance(value, str):
            continue
        if reference := re.fullmatch(r"\$\{user\.([A-Za-z0-9]+)\}", value):  # the whole URL is a secret (Teams)
            extra[reference[1]] = f"{base}/{SECRETS[reference[1] + 'Path']}"
        elif "://" in value:
            config[name] = re.sub(r"^[a-z]+://[^/]*", base, value)
    return config, extra


def hidden(extra: dict[str, str]) -> list[str]:
    """Every secret value, and the secret part of a secret URL (its path), that must never show."""
    values = list(SECRETS.values()) + list(extra.values())
    return values + [v.split("/", 3)[-1] for v in extra.values() if "://" in v]


def run(kind: str, base: str, variables: dict, ctx: Context, config: dict | None = None):
    integration = integrations.get(kind)
    aimed_config, extra = aimed(kind, base)
    built = integration.build(config or aimed_config, renderer(variables, extra), variables)
    return integration.send(built, ctx), extra


def assert_nothing_shown(extra: dict[str, str], *shown) -> None:
    text = json.dumps(shown, default=str)
    leaked = [v for v in hidden(extra) if v and v in text]
    assert not leaked, f"secret shown: {leaked}"


@pytest.mark.parametrize("name", EVENT_NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_each_event_is_sent_as_its_golden_file(httpserver, ctx, kind, name):
    FAKES[kind](httpserver)
    result, extra = run(kind, httpserver.url_for("").rstrip("/"), event(name), ctx)
    golden(kind, f"{name}__{GOLDEN_DETAIL.get(kind, 'sample')}", recorded(httpserver, extra))
    assert result.response is not None and 200 <= result.response.status < 300, result
    assert httpserver.log and all(200 <= r.status_code < 300 for _, r in httpserver.log)
    assert_nothing_shown(extra, [r.to_log() for r in result.requests], result.response.to_log(), result.note,
                         repr(result))


def answer_with(httpserver, response: Response) -> None:
    httpserver.expect_request(re.compile(".*")).respond_with_response(response)


MODES = {
    "400": (Response('{"message": "bad"}', 400, content_type="application/json"), PermanentDeliveryError),
    "401": (Response('{"message": "401 Unauthorized"}', 401, content_type="application/json"), PermanentDeliveryError),
    "403": (Response('{"message": "403 Forbidden"}', 403, content_type="application/json"), PermanentDeliveryError),
    "404": (Response('{"message": "404 Not found"}', 404, content_type="application/json"), PermanentDeliveryError),
    "409": (Response('{"message": "conflict"}', 409, content_type="application/json"), PermanentDeliveryError),
    "422": (Response('{"message": "unprocessable"}', 422, content_type="application/json"), PermanentDeliveryError),
    "429": (Response('{"message": "slow down"}', 429, headers={"Retry-After": "7"}, content_type="application/json"),
            RetryableDeliveryError),
    "500": (Response("oops", 500), RetryableDeliveryError),
    "502": (Response("<html><body>Bad gateway</body></html>", 502, content_type="text/html"), RetryableDeliveryError),
    "503": (Response("unavailable", 503), RetryableDeliveryError),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_error_answers_retry_or_fail_as_they_should(httpserver, ctx, kind, mode):
    response, expected = MODES[mode]
    answer_with(httpserver, response)
    with pytest.raises(DeliveryError) as err:
        run(kind, httpserver.url_for("").rstrip("/"), event("provider_verification_failed"), ctx)
    extra = aimed(kind, httpserver.url_for("").rstrip("/"))[1]
    if kind == "slack" and mode in ("401", "409", "422"):  # Slack's webhooks answer with their own codes
        assert isinstance(err.value, DeliveryError)
    else:
        assert type(err.value) is expected or isinstance(err.value, expected), err.value.message
    if mode == "429":
        assert err.value.retry_after == 7
    assert_nothing_shown(extra, err.value.message, err.value.response.to_log() if err.value.response else None)


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_is_retried(ctx, kind):
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(RetryableDeliveryError) as err:
            run(kind, base, event("provider_verification_failed"), ctx)
    assert_nothing_shown(aimed(kind, base)[1], err.value.message)


@pytest.mark.parametrize("kind", KINDS)
def test_a_target_that_does_not_answer_in_time_is_retried(httpserver, kind):
    release = threading.Event()

    def stall(request):
        release.wait(10)
        return Response("late", 200)

    httpserver.expect_request(re.compile(".*")).respond_with_handler(stall)
    guard = Guard(Policy(allow_private=True, schemes=("http", "https")))
    quick = Context(session=guard.session(), check_url=guard.check_url, timeout=(2.0, 1.0), delivery_id="d-test")
    try:
        with pytest.raises(RetryableDeliveryError) as err:
            run(kind, httpserver.url_for("").rstrip("/"), event("provider_verification_failed"), quick)
    finally:
        release.set()
    assert_nothing_shown(aimed(kind, httpserver.url_for("").rstrip("/"))[1], err.value.message)


@pytest.mark.parametrize("kind", KINDS)
def test_a_redirect_is_not_a_success(httpserver, ctx, kind):
    answer_with(httpserver, Response("", 302, headers={"Location": "https://elsewhere.example.com/x"}))
    with pytest.raises(DeliveryError):
        run(kind, httpserver.url_for("").rstrip("/"), event("provider_verification_failed"), ctx)
    assert all(not r.path.startswith("/x") for r, _ in httpserver.log)


@pytest.mark.parametrize("body", ["<html>fine</html>", "x" * (5 * 1024 * 1024)], ids=["non-json", "5MB"])
@pytest.mark.parametrize("kind", KINDS)
def test_odd_success_bodies_never_crash_and_are_kept_short(httpserver, ctx, kind, body):
    status = {"github": 201}.get(kind, 200)
    answer_with(httpserver, Response(body, status, content_type="text/html"))
    try:
        result, _ = run(kind, httpserver.url_for("").rstrip("/"), event("provider_verification_failed"), ctx)
    except DeliveryError as exc:  # a target whose answer must be JSON may say so; nothing else may escape
        logged = exc.response.to_log() if exc.response else {"body": ""}
    else:
        logged = result.response.to_log() if result.response else {"body": ""}
    assert len(logged["body"]) <= READ_LIMIT


def segments(path: str) -> int:
    return len(path.split("/"))


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_event_values_in_templated_fields_never_move_a_request(httpserver, ctx, kind, value):
    """Each templated field in turn takes an event value; a send either stays on the golden paths' shape or is
    refused for good, and never crashes."""
    integration = integrations.get(kind)
    base = httpserver.url_for("").rstrip("/")
    FAKES[kind](httpserver)
    run(kind, base, event("provider_verification_failed"), ctx)
    shapes = {segments(r.environ.get("RAW_URI", r.path).split("?", 1)[0]) for r, _ in httpserver.log}
    httpserver.clear_log()
    config, _ = aimed(kind, base)
    variables = event("provider_verification_failed", consumerName=value, consumerVersionNumber=value,
                      providerName=value, pactUrl=value)
    for name, spec in integration.fields.items():
        if not spec.template or spec.kind not in ("str", "map"):
            continue
        hostile = {**config, name: ({"X": "${pactbroker.consumerName}"} if spec.kind == "map" else
                                    "${pactbroker.consumerName}")}
        if spec.endpoint and isinstance(config.get(name), str) and "://" in config[name]:
            hostile[name] = config[name].rstrip("/") + "/${pactbroker.consumerName}"
        if integration.validate(hostile):
            continue  # refused at save time already
        sent = len(httpserver.log)
        try:
            run(kind, base, variables, ctx, hostile)
        except PermanentDeliveryError:
            pass
        except RetryableDeliveryError as exc:  # the fake may not know a request a valid value makes
            assert "HTTP" in exc.message or "unreachable" in exc.message, exc.message
        # an endpoint field's value may add its one segment; nothing may add more, or climb
        allowed = shapes | {n + 1 for n in shapes} if spec.endpoint else shapes
        for request, _ in httpserver.log[sent:]:
            raw = request.environ.get("RAW_URI", request.path).split("?", 1)[0]
            assert segments(raw) in allowed, f"{kind}.{name}: request moved to {raw}"
            assert not any(p in ("..", ".") or p.lower() in ("%2e%2e", "%2e") for p in raw.split("/")), raw
