"""Travis CI: every sample event in, the exact API v3 build request Travis receives out."""

from __future__ import annotations

import json

import pytest

from integrations import travis
from integrations.base import PermanentDeliveryError, RetryableDeliveryError
from tests.integrations.conftest import SECRETS, event, renderer

PATH = "/repo/pact-foundation/animal-profile-service/requests"  # the server decodes %2F before matching
ACCEPTED = {"@type": "pending", "remaining_requests": 9, "request": {"id": 4711, "branch": "main"},
            "resource_type": "request"}


def config(httpserver, **extra):
    return {"repository": "pact-foundation/animal-profile-service", "branch": "main", "token": "${user.TravisToken}",
            "env": {"PACT_URL": "${pactbroker.pactUrl}", "PACT_WHY": "${pactbroker.providerVersionDescriptions}"},
            "base_url": httpserver.url_for("").rstrip("/"), **extra}


def run(httpserver, ctx, variables, **extra):
    integration = travis.Travis()
    built = integration.build(config(httpserver, **extra), renderer(variables), variables)
    return built, integration.send(built, ctx)


def test_env_values_are_shell_quoted():
    variables = event("contract_requiring_verification_published")
    built = travis.Travis().build({"repository": "a/b", "branch": "main", "token": "t",
                                   "env": {"WHY": "${pactbroker.providerVersionDescriptions}"}},
                                  renderer(variables), variables)
    assert built.body()["request"]["config"]["env"]["global"] == ["WHY='latest from main branch, deployed in test'"]


def test_retry_on_429_and_5xx(httpserver, ctx):
    httpserver.expect_oneshot_request(PATH).respond_with_json({"error_message": "slow down"}, status=429,
                                                              headers={"Retry-After": "60"})
    httpserver.expect_oneshot_request(PATH).respond_with_data("bad gateway", status=502)
    with pytest.raises(RetryableDeliveryError) as err:
        run(httpserver, ctx, event("contract_published"))
    assert err.value.retry_after == 60 and "slow down" in err.value.message
    with pytest.raises(RetryableDeliveryError, match="HTTP 502"):
        run(httpserver, ctx, event("contract_published"))


@pytest.mark.parametrize("status,error_type,message", [
    (401, "login_required", "login required"),
    (403, "insufficient_access", "operation requires create_request access to repository"),
    (404, "not_found", "repository not found (or insufficient access)"),
])
def test_client_errors_are_permanent_with_travis_message(httpserver, ctx, status, error_type, message):
    httpserver.expect_request(PATH).respond_with_json(
        {"@type": "error", "error_type": error_type, "error_message": message}, status=status)
    with pytest.raises(PermanentDeliveryError) as err:
        run(httpserver, ctx, event("contract_published"))
    assert message in err.value.message and SECRETS["TravisToken"] not in str(err.value)
    assert SECRETS["TravisToken"] not in json.dumps(err.value.response.to_log())


def test_validation():
    v = travis.Travis().validate
    assert v({"repository": "a/b", "branch": "main", "token": "t"}) == {}
    assert v({"repository": "a", "branch": "main", "token": "t"}) == {"repository": ["must be owner/name"]}
    assert "env" in v({"repository": "a/b", "env": {"NOT OK": "x"}})
    assert "merge_mode" in v({"repository": "a/b", "merge_mode": "smush"})
