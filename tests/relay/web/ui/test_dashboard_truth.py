"""The dashboard says what it means: unverified, whose branch, which consumer version was verified, worst delivery."""

from __future__ import annotations

from sqlalchemy import update

from relay.models import Delivery
from tests.conftest import pact_event


def row_of(page: str, pair: str) -> str:
    return flat(page).split(pair, 1)[1].split("</tr>", 1)[0]


def flat(page: str) -> str:
    """The dashboard puts a pair's provider on its own line; the text reads the same."""
    return page.replace(' <span class="to">→ ', " → ")


def test_unverified_changed_versions_and_branches(api, browser):
    published = pact_event("contract_published", consumerName="Shop", providerName="Stock")
    assert api.post("/events", json=published).status_code == 202
    verified = pact_event("provider_verification_succeeded", sha="a" * 40, consumerName="Web", providerName="Stock",
                          consumerVersionNumber="1.0.0-rc.1", providerVersionNumber="2.0.0",
                          consumerVersionBranch="feat/x", providerVersionBranch="main")
    changed = pact_event("contract_content_changed", sha="b" * 40, consumerName="Web", providerName="Stock",
                         consumerVersionNumber="1.1.0", consumerVersionBranch="feat/x")
    for event in (verified, changed):
        assert api.post("/events", json=event).status_code == 202
    page = browser.get("/ui/").text
    shop = row_of(page, "Shop → Stock")
    assert 'class="state state-unverified">unverified<' in flat(page).split("Shop → Stock")[0].rsplit("<tr", 1)[1]
    assert "unknown" not in shop
    web = row_of(page, "Web → Stock")
    assert 'title="1.1.0">1.1.0</code>' in web  # the consumer version shown
    assert "verified consumer <code" in web and 'title="1.0.0-rc.1"' in web  # what the provider verified
    assert '<span class="muted">consumer</span> feat/x' in web and '<span class="muted">provider</span> main' in web
    assert "unverified" in browser.get("/ui/?q=unverified").text.split("<tbody>", 1)[1]


def test_the_worst_current_delivery_is_shown(api, browser, runtime, httpserver):
    httpserver.expect_request("/ok").respond_with_data("ok")
    for path, description in (("/ok", "good"), ("/bad", "github")):
        made = api.post("/webhooks", json={"description": description, "events": [{"name": "contract_published"}],
                                           "request": {"method": "POST", "url": httpserver.url_for(path)}})
        assert made.status_code == 201
    event = api.post("/events", json=pact_event("contract_published", consumerName="A", providerName="B")).json
    with runtime.sessions.begin() as session:
        rows = session.query(Delivery).filter_by(event_id=event["event"]).order_by(Delivery.created_at).all()
        hooks = {h: d for d, h in zip(rows, ("first", "second"), strict=True)}
        session.execute(update(Delivery).where(Delivery.id == hooks["first"].id).values(status="failed"))
        session.execute(update(Delivery).where(Delivery.id == hooks["second"].id).values(status="succeeded"))
        failed_id = hooks["first"].id
    row = row_of(browser.get("/ui/").text, "A → B")
    assert f'href="/ui/deliveries/{failed_id}" class="status status-failed"' in row
    assert "worst of 2 webhooks" in row


def test_each_count_is_what_its_filter_shows_and_trouble_is_said_with_its_fix(api, browser, runtime, httpserver):
    import re
    from datetime import timedelta

    from relay.models import TargetState, utcnow

    made = api.post("/webhooks", json={"description": "CI that is down", "events": [{"name": "contract_published"}],
                                       "request": {"method": "POST", "url": httpserver.url_for("/ci")}}).json
    api.post("/events", json=pact_event("provider_verification_failed", consumerName="A", providerName="B"))
    api.post("/events", json=pact_event("provider_verification_succeeded", consumerName="C", providerName="D"))
    api.post("/events", json=pact_event("contract_published", consumerName="Failedness", providerName="F"))
    api.post("/events", json=pact_event("contract_published", consumerName="C", providerName="D"))
    with runtime.sessions.begin() as session:
        # C → D verified with a failed delivery: a delivery status is not the pair's state
        session.execute(update(Delivery).values(status="failed"))
        session.add(TargetState(webhook_uuid=made["uuid"], failures=5, paused_since=utcnow(), cooldown=30.0,
                                reason="Connection refused", next_probe_at=utcnow() + timedelta(seconds=30)))
    page = browser.get("/ui/").text
    for state in ("failed", "verified", "unverified"):
        counted = int(re.search(rf'id="count-{state}" data-count="(\d+)"', page).group(1))
        shown = browser.get("/ui/", query_string={"q": state}).text.count("<tr class=\"row-")
        assert shown == counted, (state, shown, counted)
    assert 'data-count="1"' in page.split('id="count-failed"')[1][:30]
    attention = page.split('id="attention"', 1)[1].split("</section>", 1)[0]
    assert "CI that is down" in attention and "Connection refused" in attention
    assert f'action="/ui/webhooks/{made["uuid"]}/resume"' in attention and ">Resume</button>" in attention
