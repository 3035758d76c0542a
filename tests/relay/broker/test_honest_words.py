"""A failed verification is never labelled "Verified"; a pact no provider has verified yet reads `unverified`."""

from __future__ import annotations

import re

from tests.conftest import pact_event
from tests.relay.web.ui.conftest import PASSWORD, Browser


def facts(html: str) -> dict[str, str]:
    return {dt: re.sub(r"<[^>]+>", "", dd).strip() for dt, dd in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", html)}


def test_the_pair_page_names_a_failed_and_an_unverified_pact_as_they_are(app, api, make_user):
    make_user("dev@example.com", "read", PASSWORD)
    browser = Browser(app.test_client()).sign_in("dev@example.com")
    published = pact_event("contract_published")
    api.as_role("intake").post("/events", json=published)
    pair = {"consumer": published["consumerName"], "provider": published["providerName"]}
    page = browser.get("/ui/pair", query_string=pair).text
    assert "unverified" in page and facts(page)["Verification"] == "not verified yet"
    assert "Verified" not in facts(page)
    assert "unverified" in browser.get("/ui/").text
    api.as_role("intake").post("/events", json=pact_event("provider_verification_failed"))
    page = browser.get("/ui/pair", query_string=pair).text
    assert "Verification failed" in facts(page) and "Verified" not in facts(page)
