"""Names are picked, not typed: the known names offered, a never-seen name warned about, filters by part of a name."""

from __future__ import annotations

import re

from tests.conftest import sample_event
from tests.relay.web.ui.test_ui_pages import editor_form

CONSUMER, PROVIDER = "Matching Service", "Animal Profile Service"  # the names in sample_event


def test_the_editor_offers_the_names_events_carried(api, browser):
    api.post("/events", json=sample_event("contract_published"))
    page = browser.get("/ui/webhooks/new").text
    for side in ("consumer", "provider"):
        assert re.search(rf'<input id="{side}_value"[^>]* list="pacticipants"', page)
    datalist = re.search(r'<datalist id="pacticipants">(.*?)</datalist>', page, re.S).group(1)
    assert f'<option value="{CONSUMER}">' in datalist and f'<option value="{PROVIDER}">' in datalist


def test_saving_a_name_never_seen_warns_in_the_form_and_in_the_api(api, browser, httpserver):
    api.post("/events", json=sample_event("contract_published"))
    url = httpserver.url_for("/ci")
    typo = browser.post("/ui/webhooks/new", editor_form(url, consumer_by="name", consumer_value=CONSUMER,
                                                         provider_by="name",
                                                         provider_value="Animal Profile Servce"))
    assert typo.status_code == 201  # saved: a warning never blocks
    assert 'id="save-warnings"' in typo.text and 'id="provider-warning"' in typo.text
    assert "never seen a provider called &#39;Animal Profile Servce&#39;" in typo.text
    assert 'id="consumer-warning"' not in typo.text
    cased = browser.post("/ui/webhooks/new", editor_form(url, consumer_by="name", consumer_value=CONSUMER.lower()))
    assert "did you mean &#39;Matching Service&#39;" in cased.text
    known = browser.post("/ui/webhooks/new", editor_form(url, consumer_by="name", consumer_value=CONSUMER,
                                                         provider_by="name",
                                                         provider_value=PROVIDER))
    assert known.status_code == 302  # nothing to warn about: straight back to the editor
    listing = browser.get("/ui/webhooks").text
    assert listing.count(">never seen</span>") == 2  # the typo and the lower-cased name, each marked in the list

    hook = {"events": [{"name": "contract_published"}], "request": {"method": "POST", "url": url}}
    unseen = api.post("/webhooks", json={**hook, "provider": {"name": "Checkout Servce"}})
    assert unseen.status_code == 201
    assert list(unseen.json["warnings"]) == ["provider.name"]
    assert "never seen a provider called 'Checkout Servce'" in unseen.json["warnings"]["provider.name"][0]
    seen = api.post("/webhooks", json={**hook, "consumer": {"name": CONSUMER}})
    assert seen.status_code == 201 and "warnings" not in seen.json
    put = api.put("/webhooks/a-webhook-with-a-typo", json={**hook, "consumer": {"name": "Nobody"}})
    assert put.status_code == 201 and "consumer.name" in put.json["warnings"]
    assert "warnings" not in api.get(f"/webhooks/{unseen.json['uuid']}").json  # said on the save only


def test_the_deliveries_filter_matches_part_of_a_name_in_any_case(api, browser, httpserver, drain):
    httpserver.expect_request("/ci").respond_with_data("ok")
    api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                "request": {"method": "POST", "url": httpserver.url_for("/ci")}})
    api.post("/events", json=sample_event("contract_published"))
    other = {**sample_event("contract_published"), "consumerName": "Billing 100%_done", "providerName": "Ledger"}
    api.post("/events", json=other)
    drain()

    def rows(**query) -> int:
        page = browser.get("/ui/deliveries", query_string=query).text
        return len(re.findall(r'<td data-label="Pair">', page))

    assert rows() == 2
    assert rows(consumer="matching") == 1 and rows(consumer="MATCHING serv") == 1
    assert rows(provider="profile") == 1 and rows(provider="ledg") == 1
    assert rows(consumer="100%_") == 1 and rows(consumer="%") == 1 and rows(consumer="_") == 1  # LIKE escaped
    assert rows(consumer="checkout") == 0
    page = browser.get("/ui/deliveries").text
    assert re.search(r'<input id="consumer"[^>]* list="pacticipants"', page) and f'<option value="{CONSUMER}">' in page


def test_the_webhooks_list_filters_by_part_of_any_name_and_shows_the_target_host(api, browser):
    for name, provider, url in (("Orders CI", "Orders API", "https://ci.example.com/orders"),
                                ("Payments chat", "Pay", "https://chat.example.org/x")):
        api.post("/webhooks", json={"description": name, "events": [{"name": "contract_published"}],
                                    "provider": {"name": provider}, "request": {"method": "POST", "url": url}})
    page = browser.get("/ui/webhooks").text
    assert "ci.example.com" in page and "chat.example.org" in page and 'data-filter="#webhooks tbody tr"' in page
    only = browser.get("/ui/webhooks", query_string={"q": "orders api"}).text
    assert "Orders CI" in only and "Payments chat" not in only
    none = browser.get("/ui/webhooks", query_string={"q": "zzz"}).text
    assert 'id="no-webhook-match">' in none and "No webhooks yet" not in none
