"""The web UI in real headless Chromium against `pact-relay serve`: sign in, edit, test, deliver, replay, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.conftest import sample_event
from tests.e2e.conftest import CHROMIUM, EMAIL, PASSWORD, wait_for

pytestmark = pytest.mark.e2e
SECRET_VALUE = "xoxb-never-shown-4f1c9"

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover
    sync_playwright = None

if sync_playwright is None or not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests need the playwright package and Debian chromium at {CHROMIUM} "
                "(apt-get install -y chromium)", allow_module_level=True)

SHA = "5d445a4612743728dfd99ccd4210423c052bb9db"
EVENTS = [  # (consumer, provider, event, pact sha): enough variety for every state colour
    ("Web App", "Orders API", "provider_verification_succeeded", SHA),
    ("Web App", "Users API", "provider_verification_succeeded", SHA),
    ("Web App", "Users API", "contract_content_changed", "0" * 40),
    ("Mobile App", "Orders API", "provider_verification_failed", SHA),
    ("Orders API", "Payments API", "provider_verification_succeeded", SHA),
    ("Mobile App", "Users API", "contract_published", SHA),
]
PAIRS = {(c, p) for c, p, _, _ in EVENTS}
TOO_WIDE = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > innerWidth && !e.parentElement.closest('pre, .scroll'))
  .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)"""
PHONE_PAGES = [("/", "Dashboard"), ("/network", "Network"), ("/webhooks", "Webhooks"),
               ("/webhooks/new", "New webhook"), ("/deliveries", "Deliveries"), ("/secrets", "Secrets"),
               ("/tokens", "API tokens"), ("/users", "Users"), ("/audit", "Audit log"),
               ("/about", "About Pact Relay")]


def event_for(consumer: str, provider: str, name: str, sha: str) -> dict:
    event = sample_event(name)
    for key in ("pactUrl", "verificationResultUrl"):
        event[key] = event[key].replace("Matching%20Service", consumer.replace(" ", "%20")).replace(
            "Animal%20Profile%20Service", provider.replace(" ", "%20")).replace(SHA, sha)
    event.update(consumerName=consumer, providerName=provider)
    return event


def nav(page, name: str):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def post_event(relay, event: dict) -> None:
    resp = requests.post(f"{relay.url}/events", json=event, timeout=10,
                         headers={"Authorization": f"Bearer {relay.intake}"})
    assert resp.status_code == 202, resp.text


def test_sign_in_edit_test_deliver_replay_and_secrets(served, sink, browser_page, shots):
    page, relay = browser_page, served

    # Sign in: every page sends a stranger to the sign-in form first.
    page.goto(f"{relay.url}/ui/webhooks")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shots(page, "01-sign-in")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {EMAIL}")).to_be_visible()

    # A secret, used by the webhook below; its value never comes back.
    nav(page, "Secrets").click()
    page.get_by_label("Name").fill("SinkToken")
    page.get_by_label("Description").fill("token the sink expects")
    page.get_by_label("Value").fill(SECRET_VALUE)
    page.get_by_role("button", name="Save secret").click()
    expect(page.get_by_text("Saved “SinkToken”")).to_be_visible()
    assert SECRET_VALUE not in page.content()
    assert page.get_by_label("Value").input_value() == ""

    # The editor: a validation error appears beside its field.
    nav(page, "Webhooks").click()
    page.get_by_role("link", name="New webhook").click()
    page.get_by_label("Description").fill("Notify the sink")
    page.get_by_label("url").fill("not a url")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#cfg\\.url-error")).to_contain_text("absolute http(s) URL")
    assert page.get_by_label("url").get_attribute("aria-invalid") == "true"

    page.get_by_label("contract_published").check()
    page.get_by_label("provider_verification_succeeded").check()
    page.get_by_label("provider_verification_failed").check()
    page.get_by_label("url").fill(sink.url + "/hook/${pactbroker.eventName}")
    expect(page.locator("#cfg\\.url-error")).to_be_hidden()  # edited: the old message no longer applies
    assert page.get_by_label("url").get_attribute("aria-invalid") is None
    page.get_by_label("headers").fill("Content-Type: application/json\nX-Token: ${user.SinkToken}")
    page.get_by_label("body").fill(json.dumps({"consumer": "${pactbroker.consumerName}",
                                               "provider": "${pactbroker.providerName}",
                                               "version": "${pactbroker.consumerVersionNumber}"}, indent=2))
    shots(page, "02-webhook-editor")

    # Test: sent to the recording server, the result shown in place (the URL does not change).
    url_before = page.url
    page.get_by_role("button", name="Test").click()
    result = page.locator("#test-output .test-result")
    expect(result).to_contain_text("succeeded")
    expect(result).to_contain_text("HTTP 200")
    expect(result.locator("pre.log")).to_contain_text("POST " + sink.url)
    assert page.url == url_before
    assert SECRET_VALUE not in page.content()  # redacted in the rendered request
    wait_for(lambda: len(sink.requests) == 1, what="the test request")
    assert sink.requests[0]["headers"]["X-Token"] == SECRET_VALUE
    result.scroll_into_view_if_needed()
    shots(page, "03-webhook-test", full_page=False)

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()

    # Events arrive; deliveries appear, newest first.
    for consumer, provider, name, sha in EVENTS:
        post_event(relay, event_for(consumer, provider, name, sha))
    wait_for(lambda: len(sink.requests) == 1 + len(EVENTS), what="deliveries at the sink")
    nav(page, "Webhooks").click()
    shots(page, "04-webhooks")

    nav(page, "Deliveries").click()
    wait_for(lambda: page.reload() or page.locator(".status-succeeded").count() == len(EVENTS), timeout=30,
             what="succeeded deliveries listed")
    shots(page, "05-deliveries")
    page.locator("#deliveries tbody tr").first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Attempt 1", exact=False)).to_be_visible()
    expect(page.locator("#delivery-status")).to_have_text("succeeded")
    assert SECRET_VALUE not in page.content()
    shots(page, "06-delivery")

    # Replay: a new delivery of the same event, sent again.
    before = len(sink.requests)
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_text("Replayed as this new delivery")).to_be_visible()
    wait_for(lambda: len(sink.requests) == before + 1, what="the replayed request")
    page.evaluate("window.notReloaded = true")
    # The page never reloads itself: it polls and swaps the status in place.
    expect(page.locator("#delivery-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.get_by_role("heading", name="Attempt 1", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name="Replay")).to_be_visible()
    assert page.evaluate("window.notReloaded === true")
    shots(page, "07-delivery-replayed")

    # The dashboard: failed first, every state coloured; a pair's page; the network picture.
    nav(page, "Dashboard").click()
    rows = page.locator("#pairs tbody tr")
    expect(rows).to_have_count(len(PAIRS))
    expect(rows.first).to_contain_text("failed")
    expect(rows.first).to_contain_text("Mobile App → Orders API")
    expect(rows.nth(1)).to_contain_text("changed")
    shots(page, "08-dashboard")
    page.get_by_label("Filter pairs").fill("users")
    expect(page.locator("#pairs tbody tr:visible")).to_have_count(2)
    page.get_by_label("Filter pairs").fill("")
    page.get_by_role("link", name="Web App → Orders API").click()
    expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
    expect(page.locator("h1 .state")).to_have_text("verified")
    badge = page.get_by_role("img", name="Web App/Orders API pact: verified")
    expect(badge).to_be_visible()
    page.wait_for_function("img => img.complete", arg=badge.element_handle())
    assert badge.evaluate("img => img.naturalWidth") > 0  # the badge itself loaded, not its alt text
    expect(page.locator("#badge-markdown")).to_contain_text("/pacts/provider/Orders%20API/consumer/Web%20App/")
    shots(page, "09-pair")
    nav(page, "Network").click()
    svg = page.locator("svg.network")
    expect(svg).to_be_visible()
    assert svg.locator(".edge").count() == len(PAIRS)
    assert svg.locator("path[stroke='#c62828']").count() == 1  # the failed edge in red
    shots(page, "10-network")

    # Secrets: still never shown, also where the webhook uses it.
    nav(page, "Secrets").click()
    expect(page.locator("#secrets")).to_contain_text("Notify the sink")
    page.get_by_role("link", name="Set value").click()
    assert page.get_by_label("Value").input_value() == ""
    assert SECRET_VALUE not in page.content()
    shots(page, "11-secrets")

    # Tokens: shown once, then revocable.
    nav(page, "Tokens").click()
    page.get_by_label("Name").fill("ci")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("prt_")
    shots(page, "12-tokens")
    nav(page, "Tokens").click()  # not a reload: that would post the form again
    assert token not in page.content()
    page.get_by_role("button", name="Revoke ci").click()
    expect(page.get_by_role("row", name="ci read", exact=False)).to_contain_text("revoked")

    nav(page, "Users").click()
    page.get_by_label("E-mail").fill("grace@example.com")
    page.get_by_label("Initial password").fill("another long password")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("table")).to_contain_text("grace@example.com")
    shots(page, "13-users")

    nav(page, "Audit log").click()
    for kind in ("user.login", "secret.created", "webhook.created", "webhook.executed", "delivery.replayed",
                 "token.created", "token.revoked", "user.created"):
        expect(page.locator("#audit")).to_contain_text(kind)
    assert SECRET_VALUE not in page.content()
    shots(page, "14-audit")

    nav(page, "About").click()
    expect(page.locator("#broker-json")).to_contain_text(f"{relay.url.split(':')[0]}")
    expect(page.locator("#broker-json")).to_contain_text("${pactbroker.consumerName}")
    shots(page, "15-about")

    # Phone width: every page reflows, no sideways scrolling of the page itself (wide tables and code
    # scroll inside their own box). Waiting for the heading keeps the check off the page being left.
    page.set_viewport_size({"width": 390, "height": 844})
    for path, heading in PHONE_PAGES:
        page.goto(f"{relay.url}/ui{path}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"/ui{path} is {width} px wide at a 390 px viewport: {page.evaluate(TOO_WIDE)}"
    nav(page, "Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    shots(page, "16-dashboard-phone")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{relay.url}/ui/secrets")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_keyboard_only_sign_in_and_role_limits(served, browser_page):
    page, relay = browser_page, served
    made = relay.cli("users", "create", "reader@example.com", "--role", "read", "--password-stdin",
                     input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    page.goto(f"{relay.url}/ui/")
    # Focus moves after the page has loaded (autofocus, fragment navigation): wait for it, don't sample it.
    expect(page.locator("#email")).to_be_focused()  # focus starts in the form
    page.keyboard.type("reader@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.keyboard.press("Tab")  # the skip link comes first on every page
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    menu = page.get_by_role("navigation", name="Main")
    for hidden in ("Tokens", "Users", "Audit log"):
        expect(menu.get_by_role("link", name=hidden)).to_have_count(0)
    page.goto(f"{relay.url}/ui/webhooks")
    expect(page.get_by_role("link", name="New webhook")).to_have_count(0)
    response = page.goto(f"{relay.url}/ui/tokens")
    assert response.status == 403
    expect(page.get_by_role("heading", name="403")).to_be_visible()
