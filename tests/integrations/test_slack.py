"""Slack: every sample event in, the exact message Slack receives out, by webhook and by bot token."""

from __future__ import annotations

import json

import pytest

from integrations import slack
from integrations.base import FAILURE, PermanentDeliveryError, RetryableDeliveryError
from tests.integrations.conftest import EVENT_NAMES, SECRETS, event, failure_from, golden, recorded, renderer
from tests.integrations.fakes import serve_slack

HOOK = "/services/" + SECRETS["SlackHookPath"]


def webhook_config(httpserver, **extra):
    return {"webhook_url": httpserver.url_for("/services/${user.SlackHookPath}"), **extra}


def bot_config(httpserver, **extra):
    return {"token": "${user.SlackToken}", "channel": "#pacts", "base_url": httpserver.url_for("/api/"), **extra}


def run(ctx, variables, config):
    integration = slack.Slack()
    built = integration.build(config, renderer(variables), variables)
    return built, integration.send(built, ctx)


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_each_event_by_bot_token(httpserver, ctx, name):
    serve_slack(httpserver)
    _, result = run(ctx, event(name), bot_config(httpserver))
    golden("slack", f"{name}__bot", recorded(httpserver))
    assert result.response.status == 200


def test_failed_verification_is_red_with_provider_version_branch_and_links():
    variables = event("provider_verification_failed")
    built = slack.Slack().build({"webhook_url": "https://hooks.slack.com/x"}, renderer(variables), variables)
    attachment = built.payload["attachments"][0]
    text = json.dumps(attachment)
    assert attachment["color"] == "#D40E0D"
    assert "*Provider version*\\n1.0.0" in text and "*Provider branch*\\nmain" in text
    assert "|Verification result>" in text and "|Pact>" in text


def test_custom_text_template():
    variables = event("contract_published", consumerName="A<b>&c")
    config = {"webhook_url": "https://h.example/x", "text": "New pact from ${pactbroker.consumerName}"}
    built = slack.Slack().build(config, renderer(variables), variables)
    assert built.payload["text"] == "New pact from A<b>&c"


def test_only_failures_skips_the_rest_without_a_request(httpserver, ctx):
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    for name in EVENT_NAMES:
        _, result = run(ctx, event(name), webhook_config(httpserver, only_failures=True))
        if name == "provider_verification_failed":
            assert result.note == "message posted"
        else:
            assert result.requests == [] and result.note.startswith("skipped: only_failures")
    assert len(httpserver.log) == 1


def test_retry_on_429_with_retry_after(httpserver, ctx):
    httpserver.expect_request("/api/chat.postMessage").respond_with_json(
        {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "7"})
    with pytest.raises(RetryableDeliveryError) as err:
        run(ctx, event("provider_verification_failed"), bot_config(httpserver))
    assert err.value.retry_after == 7 and "ratelimited" in err.value.message


def test_webhook_retry_on_429_and_5xx(httpserver, ctx):
    httpserver.expect_oneshot_request(HOOK).respond_with_data("", status=429, headers={"Retry-After": "3"})
    httpserver.expect_oneshot_request(HOOK).respond_with_data("rollup_error", status=500)
    with pytest.raises(RetryableDeliveryError) as err:
        run(ctx, event("provider_verification_failed"), webhook_config(httpserver))
    assert err.value.retry_after == 3
    with pytest.raises(RetryableDeliveryError, match="rollup_error"):
        run(ctx, event("provider_verification_failed"), webhook_config(httpserver))


@pytest.mark.parametrize("status,code", [(400, "invalid_payload"), (403, "action_prohibited"),
                                         (404, "channel_not_found"), (410, "channel_is_archived")])
def test_webhook_errors_fail_with_slacks_code(httpserver, ctx, status, code):
    httpserver.expect_request(HOOK).respond_with_data(code, status=status)
    with pytest.raises(PermanentDeliveryError) as err:
        run(ctx, event("provider_verification_failed"), webhook_config(httpserver))
    assert code in err.value.message and SECRETS["SlackHookPath"] not in str(err.value)


@pytest.mark.parametrize("code", ["channel_not_found", "channel_is_archived", "invalid_auth", "not_in_channel"])
def test_web_api_errors_fail_with_slacks_code(httpserver, ctx, code):
    httpserver.expect_request("/api/chat.postMessage").respond_with_json({"ok": False, "error": code})
    with pytest.raises(PermanentDeliveryError) as err:
        run(ctx, event("provider_verification_failed"), bot_config(httpserver))
    assert f"Slack: {code} (" in err.value.message and SECRETS["SlackToken"] not in str(err.value)


def test_web_api_unauthorised_and_server_errors(httpserver, ctx):
    httpserver.expect_oneshot_request("/api/chat.postMessage").respond_with_json(
        {"ok": False, "error": "invalid_auth"}, status=401)
    httpserver.expect_oneshot_request("/api/chat.postMessage").respond_with_data("<html>oops</html>", status=503)
    with pytest.raises(PermanentDeliveryError, match="invalid_auth"):
        run(ctx, event("provider_verification_failed"), bot_config(httpserver))
    with pytest.raises(RetryableDeliveryError, match="503"):
        run(ctx, event("provider_verification_failed"), bot_config(httpserver))


def test_validation():
    v = slack.Slack().validate
    assert v({"webhook_url": "https://hooks.slack.com/services/x"}) == {}
    assert v({"webhook_url": "${user.SlackHook}"}) == {}
    assert v({"token": "${user.T}", "channel": "#c"}) == {}
    assert "channel" in v({"webhook_url": "https://h/x", "channel": "#c"})
    assert "channel" in v({"token": "t"})
    assert "webhook_url" in v({})
    assert "token" in v({"webhook_url": "https://h/x", "token": "t", "channel": "c"})
    assert "only_failures" in v({"webhook_url": "https://h/x", "only_failures": "yes"})


def test_failed_verification_lists_the_first_mismatches_within_block_kit_limits():
    variables = {**event("provider_verification_failed"), FAILURE: failure_from("ruby.json")}
    built = slack.Slack().build({"webhook_url": "https://hooks.slack.com/x"}, renderer(variables), variables)
    (section,) = [b for b in built.payload["attachments"][0]["blocks"] if "Mismatches" in json.dumps(b)]
    text = section["text"]["text"]
    assert text.splitlines()[0] == "*Mismatches (4)*"
    assert ('• _a request for an alligator_: body $: Could not find key "first_name" (keys present are: name, '
            'firstName, age) at $') in text
    assert "status: expected 404 but was 200" in text and len(text) <= 3000


def test_many_long_mismatches_stay_within_block_kit_limits():
    long = {"description": "d" * 900, "attribute": "body", "path": "$", "message": "m" * 5000}
    failure = {"interactions": 40, "mismatches": 800, "first": [long] * 5, "reason": None}
    variables = {**event("provider_verification_failed"), FAILURE: failure}
    built = slack.Slack().build({"webhook_url": "https://hooks.slack.com/x"}, renderer(variables), variables)
    text = json.dumps(built.payload)
    section = [b for b in built.payload["attachments"][0]["blocks"] if "Mismatches (800)" in json.dumps(b)][0]
    assert len(section["text"]["text"]) <= 3000 and "and 795 more" in text


def test_details_unavailable_says_why_in_one_line():
    failure = {"first": [], "reason": "details unavailable: the broker answered HTTP 500"}
    variables = {**event("provider_verification_failed"), FAILURE: failure}
    built = slack.Slack().build({"webhook_url": "https://hooks.slack.com/x"}, renderer(variables), variables)
    assert "details unavailable: the broker answered HTTP 500" in json.dumps(built.payload)
