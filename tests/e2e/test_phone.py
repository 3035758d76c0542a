"""Every page at a 390 px phone width in real Chromium: nothing wider than the viewport, no table scrolling sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EMAIL, PASSWORD, wait_for
from tests.e2e.test_browser import EVENTS, event_for, post_event  # importing it skips here too without Chromium

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}
PHONE_SHOTS = {"/": "dashboard", "/network": "network", "/pair?consumer=Web+App&provider=Orders+API": "pair",
               "/deliveries": "deliveries", "/audit": "audit"}
# Elements sticking out of the viewport, and boxes that scroll sideways (code blocks may wrap, never scroll).
OVERFLOW = """() => ({
  width: document.documentElement.scrollWidth,
  wide: [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > innerWidth + 0.5
                 && !e.closest('.visually-hidden, table.cards thead'))
    .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)),
  scrolling: [...document.querySelectorAll('body *')]
    .filter(e => e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
    .map(e => e.tagName + '.' + e.className + ' ' + e.scrollWidth + '>' + e.clientWidth),
})"""


@pytest.fixture
def phone(served, sink, browser_page):
    relay, page = served, browser_page
    hook = relay.call("POST", "/webhooks", json={
        "description": "Notify the sink about a rather long-named integration target",
        "events": [{"name": n} for n in ("contract_published", "provider_verification_succeeded",
                                         "provider_verification_failed", "contract_content_changed")],
        "request": {"method": "POST",
                    "url": sink.url + "/hook/${pactbroker.eventName}?consumer=${pactbroker.consumerName}",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"consumer": "${pactbroker.consumerName}", "sha": "${pactbroker.consumerVersionNumber}"}}})
    assert hook.status_code == 201, hook.text
    for consumer, provider, name, sha in EVENTS:
        post_event(relay, event_for(consumer, provider, name, sha))
    wait_for(lambda: len(sink.requests) == len(EVENTS), what="deliveries at the sink")
    page.goto(f"{relay.url}/ui/sign-in")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/**")
    deliveries = relay.call("GET", "/deliveries").json()["deliveries"]
    return relay, page, hook.json()["uuid"], deliveries[0]["id"]


def test_no_page_is_wider_than_a_phone(phone, shots):
    relay, page, uuid, delivery = phone
    pages = ["/", "/?q=nothing-matches", "/network", "/webhooks", "/webhooks/new", f"/webhooks/{uuid}",
             "/webhooks/new?preset=github-repository-dispatch", "/deliveries", f"/deliveries/{delivery}",
             "/pair?consumer=Web+App&provider=Orders+API", "/pair?consumer=Mobile+App&provider=Orders+API",
             "/secrets", "/tokens", "/users", "/audit", "/about"]
    page.set_viewport_size(PHONE)
    problems = {}
    for path in pages:
        page.goto(f"{relay.url}/ui{path}")
        page.wait_for_load_state("load")
        found = page.evaluate(OVERFLOW)
        if path in PHONE_SHOTS:
            shots(page, f"phone-{PHONE_SHOTS[path]}")
        if found["width"] > PHONE["width"] or found["wide"] or found["scrolling"]:
            problems[path] = found
    assert not problems, "\n".join(f"{path}: {found}" for path, found in problems.items())


def test_a_filter_with_no_match_says_so(phone):
    relay, page, _, _ = phone
    page.goto(f"{relay.url}/ui/")
    page.get_by_label("Filter pairs").fill("no such service")
    expect(page.locator("#no-match")).to_be_visible()
    expect(page.locator("#pairs")).to_be_hidden()  # no bare header row
    page.get_by_label("Filter pairs").fill("orders")
    expect(page.locator("#no-match")).to_be_hidden()
    expect(page.locator("#pairs tbody tr:visible")).to_have_count(3)
