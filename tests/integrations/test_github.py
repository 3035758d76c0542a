"""GitHub commit statuses: every sample event in, the exact request GitHub receives out."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug import Response as WResponse

from integrations import github as gh
from integrations.base import FAILURE, PermanentDeliveryError, RetryableDeliveryError
from tests.integrations.conftest import EVENT_NAMES, SECRETS, failure_from, golden, recorded, renderer
from tests.integrations.conftest import event as sample
from tests.integrations.fakes import serve_github

SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"


def event(name: str, **overrides: str) -> dict[str, str]:
    """A sample event whose consumer version is a git sha, as a GitHub status needs."""
    return sample(name, **{"consumerVersionNumber": SHA, **overrides})


STATUS_PATH = re.compile(r"^/repos/[^/]+/[^/]+/statuses/[^/]+$")
STATUS_REPLY = {"id": 1, "state": "success", "context": "pact/Animal Profile Service", "url": "x"}


def config(httpserver, **extra):
    return {"repository": "pact-foundation/matching-service", "token": "${user.GitHubToken}",
            "base_url": httpserver.url_for("").rstrip("/"), **extra}


def run(httpserver, ctx, variables, **extra):
    integration = gh.GitHubStatus()
    built = integration.build(config(httpserver, **extra), renderer(variables), variables)
    return built, integration.send(built, ctx)


def test_states_follow_the_event():
    states = {name: gh.state_for(event(name)) for name in EVENT_NAMES}
    assert states == {
        "contract_content_changed": "pending", "contract_published": "pending",
        "contract_requiring_verification_published": "pending", "provider_verification_failed": "failure",
        "provider_verification_published": "success", "provider_verification_succeeded": "success"}
    assert gh.state_for(event("provider_verification_published", githubVerificationStatus="failure")) == "failure"
    assert gh.state_for(event("provider_verification_published", githubVerificationStatus="")) == "error"


def test_several_consumer_versions_get_one_status_each(httpserver, ctx):
    serve_github(httpserver)
    variables = event("provider_verification_failed", consumerVersionNumber="abc1234, def4567, abc1234")
    built, result = run(httpserver, ctx, variables)
    assert built.shas == ("abc1234", "def4567")
    golden("github", "provider_verification_failed__two_consumer_versions", recorded(httpserver))
    assert "on 2 commit(s)" in result.note


def test_custom_fields_and_long_description_are_cut(httpserver, ctx):
    variables = event("provider_verification_succeeded", providerVersionNumber="c0ffee1")
    built = gh.GitHubStatus().build(config(httpserver, description="x" * 200, context="ci/${pactbroker.consumerName}",
                                           sha="${pactbroker.providerVersionNumber}", target_url="https://e.x/y"),
                                    renderer(variables), variables)
    assert len(built.description) == 140 and built.description.endswith("…")
    assert (built.context, built.shas, built.target_url) == ("ci/Matching Service", ("c0ffee1",), "https://e.x/y")


def test_retry_on_429_with_retry_after(httpserver, ctx):
    httpserver.expect_request(STATUS_PATH).respond_with_json(
        {"message": "API rate limit exceeded"}, status=429, headers={"Retry-After": "30"})
    with pytest.raises(RetryableDeliveryError) as err:
        run(httpserver, ctx, event("provider_verification_succeeded"))
    assert err.value.retry_after == 30 and "rate limit" in err.value.message


def test_retry_on_403_rate_limit_uses_reset_time(httpserver, ctx):
    reset = str(int(time.time()) + 120)
    httpserver.expect_request(STATUS_PATH).respond_with_json(
        {"message": "API rate limit exceeded for installation"}, status=403,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    with pytest.raises(RetryableDeliveryError) as err:
        run(httpserver, ctx, event("provider_verification_succeeded"))
    assert 100 < err.value.retry_after <= 120


def test_retry_on_5xx(httpserver, ctx):
    httpserver.expect_request(STATUS_PATH).respond_with_json({"message": "Server Error"}, status=502)
    with pytest.raises(RetryableDeliveryError, match="502"):
        run(httpserver, ctx, event("provider_verification_succeeded"))


@pytest.mark.parametrize("status,message", [(401, "Bad credentials"), (403, "Resource not accessible by integration"),
                                            (404, "Not Found"), (422, "No commit found for SHA: 9fceb02")])
def test_client_errors_fail_for_good_with_githubs_message(httpserver, ctx, status, message):
    httpserver.expect_request(STATUS_PATH).respond_with_json({"message": message}, status=status)
    with pytest.raises(PermanentDeliveryError) as err:
        run(httpserver, ctx, event("provider_verification_succeeded"))
    assert message in str(err.value) and SECRETS["GitHubToken"] not in str(err.value)


@pytest.mark.parametrize("location", ["https://github.example.com/repos/x/y/statuses/1",
                                      "http://ghe.example.com/api/v3/repos/x/y/statuses/1"])
def test_a_redirect_to_another_host_fails_for_good_naming_base_url(httpserver, ctx, location):
    httpserver.expect_request(STATUS_PATH).respond_with_data("", status=301, headers={"Location": location})
    with pytest.raises(PermanentDeliveryError) as err:
        run(httpserver, ctx, event("provider_verification_succeeded"))
    assert "redirected from" in str(err.value) and "base_url" in str(err.value)
    assert SECRETS["GitHubToken"] not in str(err.value)


def test_a_long_error_answer_is_kept_for_the_log_up_to_the_read_limit(httpserver, ctx):
    httpserver.expect_request(STATUS_PATH).respond_with_json({"message": "Not Found", "detail": "x" * 10_000},
                                                             status=404)
    with pytest.raises(PermanentDeliveryError) as err:
        run(httpserver, ctx, event("provider_verification_succeeded"))
    logged = err.value.response.to_log()["body"]  # the attempt record cuts it to 4 KiB after redaction
    assert len(logged) > 4096 and logged.startswith('{"message": "Not Found"')


def test_validation():
    v = gh.GitHubStatus().validate
    assert v({"repository": "a/b", "token": "t"}) == {}
    assert v({"repository": "${pactbroker.consumerName}", "token": "t"}) == {}
    assert v({"repository": "nope", "token": "t"}) == {"repository": ["must be owner/name"]}
    assert set(v({"repository": "a/b"})) == {"token"}
    assert set(v({"repository": "a/b", "app_id": "1"})) == {"private_key", "installation_id"}
    assert v({"repository": "a/b", "app_id": "1", "private_key": "k", "installation_id": "2"}) == {}
    assert "token" in v({"repository": "a/b", "token": "t", "app_id": "1", "private_key": "k", "installation_id": "2"})
    assert "base_url" in v({"repository": "a/b", "token": "t", "base_url": "ftp://x"})


def test_github_app_auth_end_to_end(httpserver, ctx):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key()
    issued = []

    def grant(request):
        scheme, _, token = request.headers["Authorization"].partition(" ")
        claims = jwt.decode(token, public, algorithms=["RS256"])  # raises unless signed by the app's key
        assert scheme == "Bearer" and claims["iss"] == "4242" and claims["exp"] - claims["iat"] <= 600
        issued.append(token)
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return WResponse(json.dumps({"token": "ghs_installationSECRET", "expires_at": expires}), status=201,
                         content_type="application/json")

    httpserver.expect_request("/app/installations/77/access_tokens", method="POST").respond_with_handler(grant)
    httpserver.expect_request(STATUS_PATH, method="POST").respond_with_json(STATUS_REPLY, status=201)
    gh._tokens.clear()
    app = {"token": "", "app_id": "4242", "private_key": "${user.AppKey}", "installation_id": "77"}
    variables = event("provider_verification_succeeded")
    integration = gh.GitHubStatus()
    built = integration.build(config(httpserver, **app), renderer(variables, {"AppKey": pem}), variables)
    first = integration.send(built, ctx)
    second = integration.send(built, ctx)
    assert len(issued) == 1, "the installation token is cached in-process"
    assert "new installation token" in first.note and "cached installation token" in second.note
    calls = recorded(httpserver, {"INSTALLATION_TOKEN": "ghs_installationSECRET", "JWT": issued[0]})
    assert [c["path"] for c in calls] == ["/app/installations/77/access_tokens"] + [
        f"/repos/pact-foundation/matching-service/statuses/{SHA}"] * 2
    assert calls[0]["headers"]["Authorization"] == "Bearer <JWT>"
    assert calls[1]["headers"]["Authorization"] == "token <INSTALLATION_TOKEN>"
    logs = json.dumps([r.to_log() for r in first.requests + second.requests])
    assert pem not in logs and issued[0] not in logs and "ghs_installationSECRET" not in logs


def test_github_app_token_near_expiry_is_renewed(httpserver, ctx):
    expiries = [datetime.now(UTC) + timedelta(minutes=2), datetime.now(UTC) + timedelta(hours=1)]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()

    def grant(request):
        expires = expiries.pop(0).strftime("%Y-%m-%dT%H:%M:%SZ")
        return WResponse(json.dumps({"token": f"ghs_{len(expiries)}", "expires_at": expires}), status=201,
                         content_type="application/json")

    httpserver.expect_request("/app/installations/9/access_tokens").respond_with_handler(grant)
    httpserver.expect_request(STATUS_PATH).respond_with_json(STATUS_REPLY, status=201)
    gh._tokens.clear()
    variables = event("contract_published")
    built = gh.GitHubStatus().build(config(httpserver, token="", app_id="5", private_key=pem, installation_id="9"),
                                    renderer(variables), variables)
    for _ in range(3):
        gh.GitHubStatus().send(built, ctx)
    assert not expiries, "a token 2 minutes from expiry is renewed; the next one is reused"
    assert sum(1 for r, _ in httpserver.log if r.path.endswith("access_tokens")) == 2


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("location", ["/elsewhere", None, "https://ghe.example.com/x"])
def test_any_redirect_fails_for_good_with_a_clear_reason(httpserver, ctx, status, location):
    """L5: a redirect (307 included, with or without Location) is permanent and says so; no crash, no retry."""
    headers = {"Location": httpserver.url_for(location) if location == "/elsewhere" else location} if location else {}
    httpserver.expect_request(STATUS_PATH).respond_with_data("", status=status, headers=headers)
    with pytest.raises(PermanentDeliveryError) as err:
        run(httpserver, ctx, event("provider_verification_succeeded"))
    assert "redirect" in str(err.value) and "base_url" in str(err.value), err.value
    assert SECRETS["GitHubToken"] not in str(err.value)
    assert len(httpserver.log) == 1  # not followed


def test_failed_verification_description_is_the_first_mismatch_within_140(httpserver):
    variables = {**event("provider_verification_failed"), FAILURE: failure_from("rust.json")}
    built = gh.GitHubStatus().build(config(httpserver), renderer(variables), variables)
    assert built.state == "failure" and len(built.description) <= 140
    assert built.description.startswith("a request for an alligator: body $")
    assert built.description.endswith("(+3 more)") or built.description.endswith("…")


def test_failed_verification_without_details_keeps_the_sentence(httpserver):
    variables = {**event("provider_verification_failed"), FAILURE: {"first": [], "reason": "not read yet"}}
    built = gh.GitHubStatus().build(config(httpserver), renderer(variables), variables)
    assert built.description == "Pact verification by Animal Profile Service 1.0.0 (main) failed"
