"""The pair page of a failed verification in real Chromium, desktop and phone: the mismatches read from a broker."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EMAIL, PASSWORD, wait_for
from tests.e2e.test_browser import post_event  # importing it skips here too without Chromium
from tests.e2e.test_phone import OVERFLOW, PHONE
from tests.relay.broker.conftest import BROKER_TOKEN
from tests.relay.broker.test_explain import failed_event, fixture, serve_result, served_pact

pytestmark = pytest.mark.e2e
PAIR_PAGE = "/ui/pair?consumer=Matching+Service&provider=Animal+Profile+Service"


@pytest.fixture
def explained(relay_factory, httpserver):
    """A relay reading a loopback broker, after the Ruby verifier's recorded failure was posted and read."""
    serve_result(httpserver, fixture("ruby.json"), served_pact())
    broker = httpserver.url_for("").rstrip("/")
    relay = relay_factory(RELAY_BROKER_URL=broker, RELAY_BROKER_TOKEN=BROKER_TOKEN).start()
    made = relay.cli("users", "create", EMAIL, "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    intake = relay.cli("tokens", "create", "--name", "broker", "--role", "intake")
    assert intake.returncode == 0, intake.stderr
    relay.intake = intake.stdout.strip()
    post_event(relay, failed_event(broker))

    def read():
        (pair,) = relay.call("GET", "/status").json()["pairs"]
        return pair["verification"]["failure"]["status"] == "found"

    wait_for(read, what="the failure read from the broker")
    return relay


def test_the_pair_page_shows_every_mismatch_on_a_desktop_and_a_phone(explained, browser_page, shots):
    relay, page = explained, browser_page
    page.goto(f"{relay.url}/ui/sign-in")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/**")
    page.goto(relay.url + PAIR_PAGE)
    section = page.locator("#mismatches")
    expect(section.get_by_role("heading", name="Mismatches (4)")).to_be_visible()
    expect(section).to_contain_text("3 failing interactions, verified by pact-provider-verifier (Ruby)")
    interactions = section.locator("details.interaction")
    expect(interactions).to_have_count(3)
    for n in range(1, 3):  # the first is open; a reader opens the others
        interactions.nth(n).locator("summary").click()
    expect(interactions.nth(0)).to_contain_text("a request for an alligator — given there is an alligator named Mary")
    expect(interactions.nth(0)).to_contain_text('Could not find key "first_name" (keys present are: name, firstName, '
                                                "age) at $")
    expect(interactions.nth(1)).to_contain_text("expected 404 but was 200")
    expect(interactions.nth(2)).to_contain_text('Could not find key "name" (keys present are: nom) at $[0]')
    expect(interactions.nth(0).locator("pre").first).to_contain_text("/alligators/Mary")
    assert BROKER_TOKEN not in page.content()
    page.set_viewport_size({"width": 1280, "height": 860})
    shots(page, "17-pair-mismatches")

    page.set_viewport_size(PHONE)
    page.reload()
    expect(section.get_by_role("heading", name="Mismatches (4)")).to_be_visible()
    for n in range(1, 3):
        interactions.nth(n).locator("summary").click()
    expect(interactions.nth(2)).to_contain_text("there are alligators")
    found = page.evaluate(OVERFLOW)
    assert found["width"] <= PHONE["width"] and not found["wide"] and not found["scrolling"], found
    page.evaluate("document.querySelector('#mismatches').scrollIntoView()")
    shots(page, "phone-pair-mismatches", full_page=False)  # the mismatches as a phone shows them, not 5,000 px
