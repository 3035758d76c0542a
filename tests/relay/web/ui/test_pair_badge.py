"""A pair's page: its live badge (also when private), the README snippet to copy, the versions it knows."""

from __future__ import annotations

import html
import re

import pytest

from tests.conftest import make_settings, sample_event


@pytest.fixture
def settings(tmp_path, database_url, redis_url):
    return make_settings(tmp_path, database_url, redis_url, private_badges=True,
                         public_url="https://relay.example.com")


def test_private_badge_on_the_pair_page_loads_and_its_snippet_is_signed(browser, api, client):
    event = sample_event("provider_verification_failed")
    assert api.post("/events", json=event).status_code == 202
    page = browser.get(f"/ui/pair?consumer={event['consumerName']}&provider={event['providerName']}").text
    src = html.unescape(re.search(r'<img src="([^"]+)"', page).group(1))
    assert src.startswith("/pacts/provider/") and "sig=" in src
    image = client.get(src)
    assert image.status_code == 200 and image.mimetype == "image/svg+xml" and "failed" in image.text
    assert client.get(src.split("?")[0]).status_code != 200  # unsigned, the same path is refused
    # Only a verification so far: the consumer version it verified stands in for the published one.
    assert f"<dt>Consumer version</dt><dd><code>{event['consumerVersionNumber']}</code>" in page
    snippet = html.unescape(re.search(r'id="badge-markdown">([^<]+)<', page).group(1))
    assert snippet == f"[![pact](https://relay.example.com{src})](https://relay.example.com{src})"
