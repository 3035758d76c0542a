"""The UI and Test tell the truth: skips are skips, failures are failures, nothing broken looks healthy."""

from __future__ import annotations

from tests.conftest import sample_event

HOOK = "/services/T000/B000/XXXX"


def slack_only_failures(api, httpserver, status: int) -> str:
    httpserver.expect_request(HOOK, method="POST").respond_with_data("no_service" if status == 404 else "ok",
                                                                      status=status)
    api.post("/secrets", json={"name": "slackHook", "value": httpserver.url_for(HOOK)})
    created = api.post("/webhooks", json={"description": "failures to Slack",
                                          "events": [{"name": "provider_verification_succeeded"},
                                                     {"name": "provider_verification_failed"}],
                                          "slack": {"webhook_url": "${user.slackHook}", "only_failures": True}})
    assert created.status_code == 201, created.json
    return created.json["uuid"]


def test_test_reports_a_skip_as_a_skip_and_tries_a_failure_too(api, httpserver):
    uuid = slack_only_failures(api, httpserver, 200)
    result = api.post(f"/webhooks/{uuid}/execute").json
    assert result["status"] == "skipped" and "only_failures" in result["reason"]
    assert result["request"] is None
    assert result["failureEvent"]["status"] == "succeeded"
    assert result["failureEvent"]["eventName"] == "provider_verification_failed"
    assert len(httpserver.log) == 1  # the failure variant was really sent


def test_test_of_a_slack_url_answering_404_fails(api, httpserver):
    uuid = slack_only_failures(api, httpserver, 404)
    result = api.post(f"/webhooks/{uuid}/execute").json
    assert result["success"] is False
    assert result["status"] == "skipped"
    assert result["failureEvent"]["status"] == "failed" and result["failureEvent"]["response"]["status"] == 404


def test_the_test_button_shows_skipped_and_the_failing_variant(browser, api, httpserver):
    uuid = slack_only_failures(api, httpserver, 404)
    page = browser.get(f"/ui/webhooks/{uuid}").text
    assert "failures to Slack" in page
    form = {"uuid": uuid, "kind": "slack", "description": "failures to Slack", "consumer_by": "any",
            "provider_by": "any", "events": ["provider_verification_succeeded"], "enabled": "on",
            "cfg.webhook_url": "${user.slackHook}", "cfg.only_failures": "on"}
    html = browser.post("/ui/webhooks/test", form, headers={"X-Requested-With": "fetch"}).text
    assert 'class="status status-skipped"' in html and "only_failures is set" in html
    assert 'data-success="false"' in html and 'status-succeeded' not in html
    assert 'class="status status-failed"' in html and "HTTP 404" in html


def test_a_skipped_delivery_is_grey_with_its_reason_everywhere(browser, api, httpserver, drain):
    uuid = slack_only_failures(api, httpserver, 200)
    api.post("/events", json=sample_event("provider_verification_succeeded"))
    drain()
    assert httpserver.log == []
    (delivery,) = api.get(f"/webhooks/{uuid}/deliveries").json["deliveries"]
    listing = browser.get("/ui/deliveries").text
    assert 'class="status status-skipped"' in listing and "only_failures is set" in listing
    assert "status-succeeded" not in listing
    page = browser.get(f"/ui/deliveries/{delivery['id']}").text
    assert 'id="delivery-status">skipped' in page and 'id="delivery-reason"' in page
    assert "<h4>Response</h4>" not in page  # no empty response box
    assert "status-succeeded" not in browser.get("/ui/webhooks").text
    pair = browser.get("/ui/pair", query_string={"consumer": delivery["consumer"],
                                                 "provider": delivery["provider"]}).text
    assert "status-skipped" in pair and "status-succeeded" not in pair


def test_superseded_is_grey_and_linked_to_its_successor(browser, api, httpserver, runtime):
    from relay.models import Delivery

    uuid = slack_only_failures(api, httpserver, 200)
    for _ in range(2):
        api.post("/events", json=sample_event("provider_verification_failed"), headers={"Idempotency-Key": str(_)})
    with runtime.sessions.begin() as session:
        older, newer = session.query(Delivery).filter_by(webhook_uuid=uuid).order_by(Delivery.created_at).all()
        older.status, older.superseded_by, older.reason = "superseded", newer.id, "a newer status for the same sha"
        old_id, new_id = older.id, newer.id
    page = browser.get(f"/ui/deliveries/{old_id}").text
    assert 'id="delivery-status">superseded' in page and f'href="/ui/deliveries/{new_id}"' in page
    assert "a newer status for the same sha" in page
    listing = browser.get("/ui/deliveries").text
    assert 'class="status status-superseded"' in listing


def test_a_paused_webhook_says_so_and_can_be_resumed(browser, api, httpserver, runtime):
    from relay.models import TargetState, utcnow

    uuid = slack_only_failures(api, httpserver, 200)
    with runtime.sessions.begin() as session:
        session.add(TargetState(webhook_uuid=uuid, failures=5, paused_since=utcnow(), next_probe_at=utcnow(),
                                reason="HTTP 503"))
    assert api.get(f"/webhooks/{uuid}").json["state"] == "paused"
    listing = browser.get("/ui/webhooks").text
    assert 'class="status status-paused"' in listing and "5 consecutive failures; last: HTTP 503" in listing
    page = browser.get(f"/ui/webhooks/{uuid}").text
    assert 'id="paused"' in page and 'id="resume"' in page
    assert browser.post(f"/ui/webhooks/{uuid}/resume").status_code == 302
    assert api.get(f"/webhooks/{uuid}").json["state"] == "active"
    assert "status-paused" not in browser.get("/ui/webhooks").text
