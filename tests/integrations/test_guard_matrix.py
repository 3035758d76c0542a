"""Every integration, whatever library it sends with, has each connection checked inside `Guard.enforced()`."""

from __future__ import annotations

import pytest

import integrations
from integrations import github
from integrations.base import Context
from integrations.netguard import AddressRefused, Guard, Policy
from tests.conftest import LOOPBACK_REFUSED, PUBLIC_ADDRESS
from tests.integrations.conftest import event, renderer
from tests.integrations.fakes import TARGETS, app_key_pem

STRICT = Guard(Policy(schemes=("http", "https")))
OPEN = Guard(Policy(allow_private=True, schemes=("http", "https")))


@pytest.fixture(scope="module")
def app_key() -> str:
    return app_key_pem()


def send(guard: Guard, name: str, base: str, app_key: str):
    kind, config, _ = TARGETS[name]
    integration = integrations.get(kind)
    variables = event("provider_verification_failed")
    built = integration.build(config(base), renderer(variables, {"AppKey": app_key}), variables)
    ctx = Context(session=guard.session(), check_url=guard.check_url, timeout=(2.0, 5.0), delivery_id="d-test")
    github._tokens.clear()
    with guard.enforced():
        return integration.send(built, ctx)


@pytest.mark.parametrize("name", TARGETS)
def test_dns_rebinding_is_refused_at_connect(httpserver, rebinding, app_key, name):
    with pytest.raises(AddressRefused) as refused:
        send(STRICT, name, f"http://rebind.test:{httpserver.port}", app_key)
    assert str(refused.value) == LOOPBACK_REFUSED
    assert rebinding[0] == PUBLIC_ADDRESS, "the pre-connect check saw the public answer and let it pass"
    assert httpserver.log == []


@pytest.mark.parametrize("name", TARGETS)
def test_with_private_networks_allowed_every_integration_gets_through(httpserver, app_key, name):
    TARGETS[name][2](httpserver)
    result = send(OPEN, name, httpserver.url_for("").rstrip("/"), app_key)
    assert result.response is not None and 200 <= result.response.status < 300
    assert httpserver.log and all(200 <= response.status_code < 300 for _, response in httpserver.log)


def test_a_redirect_slack_follows_is_checked_against_the_allow_list(httpserver):
    """urllib (under slack-sdk) follows redirects; the pre-connect check only ever saw the first URL."""
    httpserver.expect_request("/services/T/B/X").respond_with_data(
        "", status=302, headers={"Location": f"http://127.0.0.1:{httpserver.port}/elsewhere"})
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    guard = Guard(Policy(allow_private=True, allowed_hosts=("localhost",), schemes=("http",)))
    variables = event("provider_verification_failed")
    integration = integrations.get("slack")
    built = integration.build({"webhook_url": httpserver.url_for("/services/T/B/X")}, renderer(variables), variables)
    ctx = Context(session=guard.session(), check_url=guard.check_url, timeout=(2.0, 5.0))
    with guard.enforced(), pytest.raises(AddressRefused) as refused:
        integration.send(built, ctx)
    assert str(refused.value) == "refused connection to 127.0.0.1: not in RELAY_ALLOWED_HOSTS"
    assert [request.path for request, _ in httpserver.log] == ["/services/T/B/X"]
