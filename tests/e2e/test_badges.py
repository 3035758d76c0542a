"""Badges from a real `pact-relay serve`: gunicorn keeps %2F inside a name, private mode signs what the CLI prints."""

import json

import pytest
import requests

from tests.conftest import pact_event

pytestmark = pytest.mark.e2e
NAME, OTHER = "team/ünï service", "a b+c"


def test_badges_and_signed_urls_through_gunicorn(relay_factory):
    relay = relay_factory(RELAY_PRIVATE_BADGES="true")
    relay.env["RELAY_PUBLIC_URL"] = relay.url
    relay.start()
    for variables in (pact_event("contract_published", consumerName=NAME, providerName=OTHER),
                      pact_event("provider_verification_succeeded", n=1, consumerName=NAME, providerName=OTHER)):
        resp = relay.call("POST", "/events", data=json.dumps(variables), headers={"Content-Type": "application/json"})
        assert resp.status_code == 202, resp.text
    printed = relay.cli("badges", "url", "--consumer", NAME, "--provider", OTHER)
    assert printed.returncode == 0, printed.stderr
    url = printed.stdout.strip()
    assert "/consumer/team%2F%C3%BCn%C3%AF%20service/" in url and "sig=" in url
    badge = requests.get(url, timeout=10)
    assert badge.status_code == 200 and badge.headers["Content-Type"].startswith("image/svg+xml")
    assert ">verified</text>" in badge.text and ">team/ünï service/a b+c pact</text>" in badge.text
    again = requests.get(url, headers={"If-None-Match": badge.headers["ETag"]}, timeout=10)
    assert again.status_code == 304
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403
    listed = relay.call("GET", "/status").json()["pairs"]
    assert [p["_links"]["badge"]["href"] for p in listed] == [url]
