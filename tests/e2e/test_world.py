"""The UI at company scale in real Chromium: 30 services, 60 pairs, 9 webhooks (benchmarks/ui_world.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from benchmarks import ui_world
from tests.e2e.conftest import EMAIL, PASSWORD, wait_for
from tests.e2e.test_browser import nav  # importing it skips here too without Chromium

pytestmark = pytest.mark.e2e
DESKTOP, PHONE = {"width": 1280, "height": 860}, {"width": 390, "height": 844}
# The dashboard table against the page: its width, the main column's, every header cell inside, the tallest row.
FIT = """() => {
  const table = document.querySelector('#pairs'), main = document.querySelector('main');
  const right = main.getBoundingClientRect().right;
  return {table: Math.round(table.getBoundingClientRect().width), main: Math.round(main.clientWidth),
          cut: [...table.querySelectorAll('thead th')].filter(th => th.getBoundingClientRect().right > right + 0.5)
               .map(th => th.textContent.trim()),
          tallest: Math.max(...[...table.querySelectorAll('tbody tr')].map(r => r.getBoundingClientRect().height)),
          height: document.documentElement.scrollHeight};
}"""


@pytest.fixture
def world(served, sink, browser_page):
    sink.behaviour = lambda n, req: (500, 0) if req["path"].startswith("/fail500") else (200, 0)
    made = ui_world.build(served.url, served.admin_token(), sink.url)
    down = made["webhooks"][7]
    wait_for(lambda: served.call("GET", f"/webhooks/{down}").json()["state"] == "paused", timeout=60,
             what="the target that is down paused")
    page = browser_page
    page.goto(f"{served.url}/ui/sign-in")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/**")
    return served, page, made


def test_the_dashboard_fits_a_laptop_and_its_counts_agree_with_its_filters(world, shots):
    relay, page, made = world
    page.set_viewport_size(DESKTOP)
    page.goto(f"{relay.url}/ui/")
    expect(page.locator("#pairs tbody tr")).to_have_count(len(made["pairs"]))
    fit = page.evaluate(FIT)
    print(f"\ndashboard at 1280 px: {fit}")
    shots(page, "world-dashboard")
    assert fit["table"] <= fit["main"] and not fit["cut"], fit
    assert fit["tallest"] < 100, fit  # two lines of names at most, never five
    for state in ("failed", "verified", "unverified"):
        counted = int(page.locator(f"#count-{state}").get_attribute("data-count"))
        page.get_by_label("Filter pairs").fill(state)
        expect(page.locator("#pairs tbody tr:visible")).to_have_count(counted)
        page.goto(f"{relay.url}/ui/?q={state}")
        expect(page.locator("#pairs tbody tr")).to_have_count(counted)
        page.goto(f"{relay.url}/ui/")
    # The target that is down: paused, said on the dashboard with the action that fixes it.
    attention = page.locator("#attention")
    expect(attention.get_by_text("Legacy target that is down")).to_be_visible()
    expect(attention.get_by_role("button", name="Resume")).to_be_visible()
    expect(attention.get_by_text("Payments release gate (answers 500)")).to_be_visible()
    page.set_viewport_size(PHONE)
    page.goto(f"{relay.url}/ui/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(nav(page, "Dashboard")).to_be_visible()
