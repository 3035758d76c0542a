"""Replay only ended deliveries, confirmed, linked both ways; waiting pages update in place; a token is shown once."""

from __future__ import annotations

import re

from sqlalchemy import update

from relay.models import Delivery
from tests.conftest import sample_event


def one_delivery(api, runtime, httpserver) -> str:
    httpserver.expect_request("/ci").respond_with_data("ok")
    made = api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                       "request": {"method": "POST", "url": httpserver.url_for("/ci")}})
    assert made.status_code == 201
    event = api.post("/events", json=sample_event("contract_published")).json
    with runtime.sessions() as session:
        return session.query(Delivery).filter_by(event_id=event["event"]).one().id


def test_replay_is_offered_on_ended_deliveries_only_and_links_both_ways(api, browser, runtime, httpserver):
    delivery = one_delivery(api, runtime, httpserver)
    with runtime.sessions.begin() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery).values(status="retrying"))
    page = browser.get(f"/ui/deliveries/{delivery}").text
    assert 'id="replay"' not in page and 'id="no-replay"' in page
    assert "http-equiv" not in page  # never reloads itself: it polls its status and swaps that part in
    assert f'data-poll="/ui/deliveries/{delivery}/live"' in page
    live = browser.get(f"/ui/deliveries/{delivery}/live?since=0").json
    assert live["status"] == "retrying" and live["ended"] is False and live["attempts"] == 0
    assert 'id="no-replay"' in live["live"] and live["fresh"].strip() == ""
    assert browser.post(f"/ui/deliveries/{delivery}/replay").status_code == 409
    with runtime.sessions.begin() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery).values(status="failed"))
    page = browser.get(f"/ui/deliveries/{delivery}").text
    assert 'id="replay"' in page and 'data-confirm="Send this event' in page and "data-poll" not in page
    assert browser.get(f"/ui/deliveries/{delivery}/live").json["ended"] is True
    replayed = browser.post(f"/ui/deliveries/{delivery}/replay")
    assert replayed.status_code == 302
    copy = re.search(r"/ui/deliveries/([^?]+)", replayed.headers["Location"]).group(1)
    assert f'href="/ui/deliveries/{delivery}" id="replay-of"' in browser.get(f"/ui/deliveries/{copy}").text
    assert f'href="/ui/deliveries/{copy}"' in browser.get(f"/ui/deliveries/{delivery}").text
    assert api.get(f"/deliveries/{copy}").json["replayOf"] == delivery


def test_a_waiting_delivery_says_what_was_sent_and_sends_only_new_attempts(api, browser, runtime, httpserver,
                                                                          drain):
    httpserver.expect_request("/ci").respond_with_data("boom", status=500)
    made = api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                       "request": {"method": "POST", "url": httpserver.url_for("/ci")}})
    api.post("/events", json=sample_event("contract_published"))
    drain()
    with runtime.sessions.begin() as session:
        delivery = session.query(Delivery).filter_by(webhook_uuid=made.json["uuid"]).one()
        assert delivery.status == "retrying" and delivery.attempts_made == 1
        delivery.reason = "target paused after 5 consecutive failures: HTTP 503"  # another sender paused it
        delivery_id = delivery.id
    page = browser.get(f"/ui/deliveries/{delivery_id}").text
    assert "Nothing was sent" not in page
    assert ("Attempt 1 was sent and answered HTTP 500; the next attempt waits: target paused after 5 consecutive "
            "failures: HTTP 503.") in page
    assert 'data-count="1"' in page and 'data-attempt="1"' in page
    live = browser.get(f"/ui/deliveries/{delivery_id}/live?since=1").json
    assert live["attempts"] == 1 and live["fresh"].strip() == ""  # attempt 1 is on the page already
    assert "answered HTTP 500" in live["live"] and "Nothing was sent" not in live["live"]
    assert 'data-attempt="1"' in browser.get(f"/ui/deliveries/{delivery_id}/live?since=0").json["fresh"]


def test_a_created_token_is_shown_once_and_a_reload_creates_nothing(browser, runtime):
    from relay.models import Token

    page = browser.get("/ui/tokens").text
    form_id = re.search(r'name="form_id" value="([^"]+)"', page).group(1)
    created = browser.post("/ui/tokens", {"name": "ci", "role": "read", "form_id": form_id})
    assert created.status_code == 302 and "prt_" not in created.headers["Location"]
    shown = browser.get(created.headers["Location"]).text
    assert re.search(r'id="new-token">prt_', shown)
    assert "prt_" not in browser.get(created.headers["Location"]).text  # a reload shows it no more
    about = browser.post("/ui/about/intake-token")
    assert about.status_code == 302
    assert "Bearer prt_" in browser.get(about.headers["Location"]).text
    assert "Bearer prt_" not in browser.get(about.headers["Location"]).text
    with runtime.sessions() as session:
        assert session.query(Token).filter(Token.name.in_(("ci", "pact-broker"))).count() == 2
