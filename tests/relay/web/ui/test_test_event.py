"""Test lets the user pick the event: a stored event of the pair, or a named sample with known pacticipants."""

from __future__ import annotations

import json

from tests.conftest import sample_event


def hook_with_sink(api, httpserver) -> str:
    httpserver.expect_request("/ci").respond_with_data("ok")
    made = api.post("/webhooks", json={
        "description": "CI", "events": [{"name": "contract_published"}, {"name": "provider_verification_failed"}],
        "request": {"method": "POST", "url": httpserver.url_for("/ci"),
                    "body": {"event": "${pactbroker.eventName}", "consumer": "${pactbroker.consumerName}",
                             "version": "${pactbroker.consumerVersionNumber}"}}})
    assert made.status_code == 201, made.json
    return made.json["uuid"]


def sent(httpserver) -> dict:
    return json.loads(httpserver.log[-1][0].data)


def test_the_api_tests_with_a_chosen_stored_event_or_a_named_sample(api, httpserver):
    uuid = hook_with_sink(api, httpserver)
    published = api.post("/events", json=sample_event("contract_published")).json["event"]
    api.post("/events", json=sample_event("provider_verification_failed"))
    chosen = api.post(f"/webhooks/{uuid}/execute", json={"event": published}).json
    assert chosen["event"] == published and sent(httpserver)["event"] == "contract_published"
    consumer = sample_event("contract_published")["consumerName"]
    sample = api.post(f"/webhooks/{uuid}/execute", json={"sample": "provider_verification_failed",
                                                         "consumer": consumer}).json
    assert sample["event"] is None and sample["warnings"] == []
    assert sent(httpserver) == {"event": "provider_verification_failed", "consumer": consumer, "version": "1.0.0"}
    unseen = api.post(f"/webhooks/{uuid}/execute", json={"sample": "contract_published", "consumer": "Nobody"}).json
    assert unseen["warnings"] and "never seen a consumer called 'Nobody'" in unseen["warnings"][0]
    for bad, field in (({"sample": "nope"}, "sample"), ({"event": "missing"}, "event"),
                       ({"sample": "contract_published", "consumer": "a\nb"}, "consumer")):
        resp = api.post(f"/webhooks/{uuid}/execute", json=bad)
        assert resp.status_code == 400 and field in resp.json["errors"], resp.json
    assert api.post(f"/webhooks/{uuid}/execute").status_code == 200  # no body: the last matching event


def test_the_editor_offers_the_pairs_latest_events_and_samples(api, browser, httpserver):
    uuid = hook_with_sink(api, httpserver)
    published = api.post("/events", json=sample_event("contract_published")).json["event"]
    event = sample_event("contract_published")
    page = browser.get(f"/ui/webhooks/{uuid}").text
    assert f'value="event:{published}"' in page and 'value="sample:provider_verification_failed"' in page
    assert f'<option value="{event["consumerName"]}">' in page  # the datalist of pacticipants seen
    form = {"uuid": uuid, "kind": "request", "description": "CI", "consumer_by": "any", "provider_by": "any",
            "events": ["contract_published", "provider_verification_failed"], "enabled": "on",
            "cfg.method": "POST", "cfg.url": httpserver.url_for("/ci"),
            "cfg.body": '{"event": "${pactbroker.eventName}", "consumer": "${pactbroker.consumerName}"}',
            "test_event": "sample:provider_verification_failed", "test_consumer": "Never Seen"}
    html = browser.post("/ui/webhooks/test", form).text
    assert "a sample provider_verification_failed event of Never Seen" in html
    assert "never seen a consumer called" in html
    assert sent(httpserver) == {"event": "provider_verification_failed", "consumer": "Never Seen"}
    assert 'value="sample:provider_verification_failed" selected' in html
