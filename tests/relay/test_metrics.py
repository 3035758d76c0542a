"""GET /metrics: a read token unless public; state from the database and Redis; never a secret."""

from relay.app import create_app
from relay.runtime import Runtime
from tests.conftest import make_settings, sample_event
from tests.reliability.tools import metric_value


def test_metrics_need_a_read_token(client, tokens):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {tokens['intake']}"}).status_code == 403
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {tokens['read']}"})
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")


def test_public_metrics_is_a_setting(tmp_path, database_url, redis_url):
    runtime = Runtime(make_settings(tmp_path, database_url, redis_url, public_metrics=True))
    assert create_app(runtime=runtime).test_client().get("/metrics").status_code == 200
    runtime.engine.dispose()


def test_state_and_counters(api, httpserver, drain):
    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post("/secrets", json={"name": "hookToken", "value": "v3ry-s3cret"})
    api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                "request": {"url": httpserver.url_for("/hook"),
                                            "headers": {"X-Token": "${user.hookToken}"}}})
    assert api.post("/events", json=sample_event("contract_published")).status_code == 202
    assert api.post("/events", json=sample_event("contract_published")).status_code == 200
    assert api.post("/events", json={"eventName": "nope"}).status_code == 400
    before = api.get("/metrics").text
    assert metric_value(before, "pact_relay_deliveries_due") == 1
    assert metric_value(before, "pact_relay_queue_depth", state="queued") == 1
    assert metric_value(before, "pact_relay_oldest_due_delivery_age_seconds") >= 0
    drain()
    text = api.get("/metrics").text
    assert metric_value(text, "pact_relay_events_stored", event_name="contract_published") == 1
    assert metric_value(text, "pact_relay_deliveries", integration="request", status="succeeded") == 1
    assert metric_value(text, "pact_relay_deliveries_due") == 0
    assert metric_value(text, "pact_relay_queue_depth", state="queued") == 0
    assert metric_value(text, "pact_relay_up", component="database") == 1
    assert metric_value(text, "pact_relay_up", component="redis") == 1
    # counters are per process in tests, so compare with what this process counted before
    assert metric_value(text, "pact_relay_events_received_total", outcome="invalid") >= 1
    assert "v3ry-s3cret" not in text and httpserver.url_for("/") not in text
