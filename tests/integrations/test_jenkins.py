"""Jenkins: every sample event in, the exact crumb and build requests Jenkins receives out."""

from __future__ import annotations

import json

import pytest

from integrations import jenkins as jk
from integrations.base import PermanentDeliveryError, RetryableDeliveryError
from tests.integrations.conftest import SECRETS, event, golden, recorded, renderer
from tests.integrations.fakes import CRUMB, serve_jenkins

BUILD = "/job/contracts/job/verify-provider/buildWithParameters"
PARAMETERS = {"PACT_URL": "${pactbroker.pactUrl}", "PROVIDER_VERSION": "${pactbroker.providerVersionNumber}",
              "PROVIDER_BRANCH": "${pactbroker.providerVersionBranch}", "EVENT": "${pactbroker.eventName}"}


def config(httpserver, **extra):
    return {"url": httpserver.url_for("/"), "job": "contracts/verify-provider", "parameters": PARAMETERS,
            "username": "relay-bot", "token": "${user.JenkinsToken}", **extra}


def run(httpserver, ctx, variables, **extra):
    integration = jk.Jenkins()
    built = integration.build(config(httpserver, **extra), renderer(variables), variables)
    return built, integration.send(built, ctx)


def test_without_crumb_issuer_and_without_parameters(httpserver, ctx):
    httpserver.expect_request("/crumbIssuer/api/json").respond_with_data("Not Found", status=404)
    httpserver.expect_request("/job/deploy/build", method="POST").respond_with_data(
        "", status=201, headers={"Location": httpserver.url_for("/queue/item/7/")})
    _, result = run(httpserver, ctx, event("contract_published"), job="deploy", parameters={})
    golden("jenkins", "contract_published__no_crumb_no_parameters", recorded(httpserver))
    assert result.note.endswith("/queue/item/7/")


def test_retry_on_429_with_retry_after(httpserver, ctx):
    httpserver.expect_request("/crumbIssuer/api/json").respond_with_json(CRUMB)
    httpserver.expect_request(BUILD).respond_with_data("slow down", status=429, headers={"Retry-After": "12"})
    with pytest.raises(RetryableDeliveryError) as err:
        run(httpserver, ctx, event("contract_requiring_verification_published"))
    assert err.value.retry_after == 12


@pytest.mark.parametrize("status", [500, 503])
def test_retry_on_5xx(httpserver, ctx, status):
    httpserver.expect_request("/crumbIssuer/api/json").respond_with_json(CRUMB)
    httpserver.expect_request(BUILD).respond_with_data("<html><body>Jenkins is restarting</body></html>",
                                                       status=status)
    with pytest.raises(RetryableDeliveryError) as err:
        run(httpserver, ctx, event("contract_requiring_verification_published"))
    assert f"HTTP {status}" in err.value.message and "Jenkins is restarting" in err.value.message


@pytest.mark.parametrize("status,page,where", [
    (401, "<html><title>Error 401 Invalid password/token for user: relay-bot</title></html>", "crumb request"),
    (403, "<html><title>Error 403 relay-bot is missing the Job/Build permission</title></html>", "crumb request"),
])
def test_auth_failures_are_permanent_with_jenkins_message(httpserver, ctx, status, page, where):
    httpserver.expect_request("/crumbIssuer/api/json").respond_with_data(page, status=status)
    with pytest.raises(PermanentDeliveryError) as err:
        run(httpserver, ctx, event("contract_requiring_verification_published"))
    assert f"HTTP {status}" in err.value.message and where in err.value.message
    assert page.split("<title>")[1].split("</title>")[0] in err.value.message
    assert SECRETS["JenkinsToken"] not in str(err.value)


def test_unknown_job_is_permanent(httpserver, ctx):
    httpserver.expect_request("/crumbIssuer/api/json").respond_with_json(CRUMB)
    httpserver.expect_request(BUILD).respond_with_data("<html><title>Not Found</title></html>", status=404)
    with pytest.raises(PermanentDeliveryError, match="HTTP 404.*build request.*Not Found"):
        run(httpserver, ctx, event("contract_requiring_verification_published"))


def test_secret_stays_out_of_the_log():
    variables = event("provider_verification_failed")
    built = jk.Jenkins().build({"url": "https://ci.example.com/", "job": "a/b c", "username": "u",
                                "token": "${user.JenkinsToken}", "parameters": PARAMETERS},
                               renderer(variables), variables)
    log = json.dumps(built.requests()[0].to_log())
    assert SECRETS["JenkinsToken"] not in log and SECRETS["JenkinsToken"] not in repr(built)
    assert built.build_url().startswith("https://ci.example.com/job/a/job/b%20c/buildWithParameters?PACT_URL=")


def test_validation():
    v = jk.Jenkins().validate
    assert v({"url": "https://ci.example.com", "job": "a/b", "username": "u", "token": "t"}) == {}
    assert v({"url": "https://ci.example.com", "job": "a"}) == {}
    assert "url" in v({"url": "https://${pactbroker.providerName}/", "job": "a"})
    assert "credentials" in v({"url": "https://admin:s3cret@ci.example.com", "job": "a"})["url"][0]
    assert "job" in v({"url": "https://ci.example.com", "job": "a//b"})
    assert "username" in v({"url": "https://ci.example.com", "job": "a", "token": "t"})
    assert "parameters" in v({"url": "https://ci.example.com", "job": "a", "parameters": ["x"]})


def test_connections_are_checked_inside_enforced(httpserver):
    from integrations.base import Context
    from integrations.netguard import AddressRefused, Guard, Policy

    serve_jenkins(httpserver)
    strict = Guard(Policy(allow_private=False, schemes=("http", "https")))
    ctx = Context(session=strict.session(), check_url=lambda url: None)  # only the connection check is left
    with strict.enforced(), pytest.raises(AddressRefused, match="loopback"):
        run(httpserver, ctx, event("contract_published"))
    assert len(httpserver.log) == 0
