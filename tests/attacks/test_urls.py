"""URLs that urllib cannot parse are refused with a field error at save time and a permanent failure at send time."""

import pytest

from integrations.netguard import AddressRefused, Guard, Policy

BAD = ["http://[::1/", "http://[]/", "http://example.com:99999/", "https://[not-an-ip]/x"]


@pytest.mark.parametrize("url", BAD)
def test_saving_a_webhook_with_an_unparseable_url_is_a_400(api, url):
    resp = api.post("/webhooks", json={"request": {"method": "POST", "url": url}})
    assert resp.status_code == 400
    assert resp.json["errors"]["request.url"] == ["must be an absolute http(s) URL with a host"]


@pytest.mark.parametrize("url", BAD)
def test_the_guard_refuses_an_unparseable_url_for_good(url):
    with pytest.raises(AddressRefused, match="not a valid URL"):
        Guard(Policy(allow_private=True, schemes=("http", "https"))).check_url(url)
