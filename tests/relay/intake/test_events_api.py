"""POST /events: acceptance, idempotency, every kind of bad input, and nothing stored when refused."""

import json

import pytest
from sqlalchemy import func, select

from relay.delivery.queue import FRESH, feed, take_fresh
from relay.models import Delivery, Event
from tests.conftest import sample_event, sample_events


def count(runtime, model):
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def post_event(api, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return api.post("/events", data=data, headers={"Content-Type": "application/json", **headers})


@pytest.fixture
def webhook(api):
    resp = api.post("/webhooks", json={
        "events": [{"name": n} for n in ("contract_published", "contract_content_changed",
                                          "provider_verification_failed")],
        "request": {"method": "POST", "url": "http://127.0.0.1:9/hook"}})
    assert resp.status_code == 201, resp.json
    return resp.json


@pytest.mark.parametrize("name", sample_events())
def test_every_sample_event_is_accepted(api, runtime, name):
    resp = post_event(api, sample_event(name))
    assert resp.status_code == 202
    assert set(resp.json) == {"event", "deliveries"} and resp.json["deliveries"] == 0
    with runtime.sessions() as session:
        event = session.get(Event, resp.json["event"])
        assert event.name == name and event.variables == sample_event(name)


def test_deliveries_are_stored_with_the_event_and_queued(api, runtime, webhook):
    resp = post_event(api, sample_event("contract_published"))
    assert resp.status_code == 202 and resp.json["deliveries"] == 1
    with runtime.sessions() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.event_id == resp.json["event"] and delivery.status == "pending"
    assert take_fresh(runtime.redis, runtime.settings.queue_name, None) == [delivery.id]


def test_event_not_subscribed_makes_no_delivery(api, webhook):
    assert post_event(api, sample_event("provider_verification_succeeded")).json["deliveries"] == 0


def test_same_body_twice_is_one_event(api, runtime, webhook):
    body = json.dumps(sample_event("contract_published"))
    first, second = post_event(api, body), post_event(api, body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json == second.json
    assert count(runtime, Event) == 1 and count(runtime, Delivery) == 1


def test_idempotency_key_decides_over_the_body(api, runtime):
    event = sample_event("contract_published")
    first = post_event(api, event, **{"Idempotency-Key": "k1"})
    event["consumerVersionNumber"] = "other"
    again = post_event(api, event, **{"Idempotency-Key": "k1"})
    other = post_event(api, event, **{"Idempotency-Key": "k2"})
    assert again.status_code == 422  # issue 23 #13: the same key for other content is refused, not taken
    assert other.status_code == 202 and other.json["event"] != first.json["event"]


def test_idempotency_keys_belong_to_the_token_that_sent_them(api, runtime, tokens):
    """Issue 23 #13: token B reusing token A's key got A's event back, and B's event was never stored."""
    from relay.security.tokens import create_token

    with runtime.sessions.begin() as session:
        _, other = create_token(session, "second-broker", "intake")
    event = sample_event("contract_published")
    first = post_event(api, event, **{"Idempotency-Key": "shared"})
    theirs = post_event(api, {**event, "consumerVersionNumber": "theirs"},
                        **{"Idempotency-Key": "shared", "Authorization": f"Bearer {other}"})
    assert first.status_code == 202 and theirs.status_code == 202, theirs.json
    assert theirs.json["event"] != first.json["event"]
    assert count(runtime, Event) == 2


def test_a_key_reused_with_another_body_is_422(api, runtime):
    """Issue 23 #13: the same key with different content is a client error, not a silent duplicate."""
    event = sample_event("contract_published")
    first = post_event(api, event, **{"Idempotency-Key": "k-422"})
    again = post_event(api, json.dumps(event, indent=2), **{"Idempotency-Key": "k-422"})  # same content, respaced
    other = post_event(api, {**event, "consumerVersionNumber": "other"}, **{"Idempotency-Key": "k-422"})
    assert again.status_code == 200 and again.json["event"] == first.json["event"]
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"], other.json
    assert count(runtime, Event) == 1


def test_test_events_are_never_deduplicated(api, runtime):
    event = {**sample_event("contract_published"), "eventName": "test"}
    ids = {post_event(api, event).json["event"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("body,field,message", [
    (b"{not json", "body", "is not valid JSON"),
    (b"", "body", "is not valid JSON"),
    (b"[1, 2]", "body", "must be a JSON object"),
    (b'"text"', "body", "must be a JSON object"),
    ({"eventName": "nope", "consumerName": "a", "providerName": "b"}, "eventName", "unknown event"),
    ({"consumerName": "a", "providerName": "b"}, "eventName", "is required"),
    ({"eventName": "contract_published", "providerName": "b"}, "consumerName", "is required"),
    ({"eventName": "contract_published", "consumerName": "a", "providerName": "  "}, "providerName", "is required"),
    ({"eventName": "contract_published", "consumerName": 5, "providerName": "b"}, "consumerName", "must be a string"),
    ({"eventName": "contract_published", "consumerName": "a", "providerName": "b", "buildUrl": ["x"]},
     "buildUrl", "must be a string, not an array"),
    ({"eventName": None, "consumerName": "a", "providerName": "b"}, "eventName", "not null"),
    (b"\xff\xfe", "body", "is not valid JSON"),
    (b'{"eventName": "contract_published", "consumerName": "a\\u0000b", "providerName": "b"}', "consumerName",
     "without NUL"),
    (b'{"eventName": "contract_published", "consumerName": "a", "providerName": "\\ud800"}', "providerName",
     "valid Unicode"),
    (b'{"eventName": "contract_published", "consumerName": "a", "providerName": "b", "pactUrl": "\\udfff"}',
     "pactUrl", "valid Unicode"),
    (b"[" * 100000 + b"]" * 100000, "body", "nests deeper than 32 levels"),
    (b'{"eventName": "contract_published", "consumerName": "a", "providerName": "b", "buildUrl": ' + b"9" * 5000
     + b"}", "buildUrl", "must be a string, not a number"),
    (b'{"eventName": "contract_published", "consumerName": -' + b"1" * 5000 + b', "providerName": "b"}',
     "consumerName", "must be a string, not a number"),
    # Issue 23 #8: a verification result number past what int() parses (4,300 digits) or a 64-bit column holds.
    *[({**sample_event("provider_verification_failed"), "verificationResultUrl":
        f"https://broker.example/pacts/provider/P/consumer/C/pact-version/{'a' * 40}/verification-results/{n}"},
       "verificationResultUrl", "verification result number") for n in ("9" * 4301, "9" * 20, str(2**63))],
    # Issue 23 #18: JSON parsers disagree on which of two equal keys wins; the relay must not pick silently.
    (b'{"eventName": "contract_published", "consumerName": "a", "providerName": "b", "consumerName": "c"}',
     "consumerName", "appears twice"),
    (b'{"eventName": "contract_published", "consumerName": "a", "providerName": "b", "pactbroker.consumerName": "c"}',
     "consumerName", "appears twice"),
])
def test_bad_input_is_400_with_the_field_and_stores_nothing(api, runtime, body, field, message):
    resp = post_event(api, body)
    assert resp.status_code == 400
    assert any(message in m for m in resp.json["errors"][field]), resp.json
    assert count(runtime, Event) == 0


def test_unicode_and_injection_are_stored_verbatim(api, runtime):
    event = {**sample_event("contract_published"), "consumerName": "Zoë's \"svc\"; DROP TABLE events;--",
             "providerName": "サービス ${user.x}"}
    resp = post_event(api, event)
    assert resp.status_code == 202
    with runtime.sessions() as session:
        stored = session.get(Event, resp.json["event"])
    assert stored.consumer == event["consumerName"] and stored.provider == event["providerName"]


def test_wrong_content_type_is_415(api, runtime):
    resp = api.post("/events", data=json.dumps(sample_event("contract_published")),
                    headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415 and "Content-Type" in resp.json["errors"]
    assert count(runtime, Event) == 0


def test_oversized_body_is_413(api, runtime):
    event = {**sample_event("contract_published"), "buildUrl": "x" * (257 * 1024)}
    resp = post_event(api, event)
    assert resp.status_code == 413 and "256 KiB" in resp.json["error"]
    assert count(runtime, Event) == 0


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "prt_abc"])
def test_without_a_valid_token_is_401(client, runtime, header):
    headers = {"Content-Type": "application/json"}
    if header:
        headers["Authorization"] = header
    resp = client.post("/events", data=json.dumps(sample_event("contract_published")), headers=headers)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(runtime, Event) == 0


def test_intake_token_only_posts_events(api):
    intake = api.as_role("intake")
    assert post_event(intake, sample_event("contract_published")).status_code == 202
    assert intake.get("/webhooks").status_code == 403
    assert post_event(api.as_role("read"), sample_event("contract_published")).status_code == 403


def test_idempotency_key_too_long_is_400(api):
    resp = post_event(api, sample_event("contract_published"), **{"Idempotency-Key": "k" * 300})
    assert resp.status_code == 400 and "Idempotency-Key" in resp.json["errors"]


def test_redis_down_still_stores_the_event(tmp_path, database_url):
    from relay.app import create_app
    from relay.runtime import Runtime
    from tests.conftest import _token, make_settings

    runtime = Runtime(make_settings(tmp_path, database_url, "redis://127.0.0.1:1/0"))
    client = create_app(runtime=runtime).test_client()
    token = _token(runtime, "admin")
    headers = {"Authorization": f"Bearer {token}"}
    client.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                   "request": {"method": "POST", "url": "http://127.0.0.1:9/"}}, headers=headers)
    resp = client.post("/events", json=sample_event("contract_published"), headers=headers)
    assert resp.status_code == 202 and resp.json["deliveries"] == 1
    runtime.engine.dispose()


@pytest.mark.parametrize("filters,expected", [
    ({}, 1),
    ({"consumer": {"name": "Matching Service"}}, 1),
    ({"consumer": {"name": "Other"}}, 0),
    ({"provider": {"name": "Animal Profile Service"}}, 1),
    ({"consumer": {"label": "web"}}, 1),
    ({"consumer": {"label": "mobile"}}, 0),
    ({"provider": {"label": "web"}}, 0),
    ({"enabled": False}, 0),
])
def test_webhooks_match_by_name_label_and_enabled(api, filters, expected):
    doc = {"events": [{"name": "provider_verification_failed"}],
           "request": {"method": "POST", "url": "http://127.0.0.1:9/"}, **filters}
    assert api.post("/webhooks", json=doc).status_code == 201
    assert post_event(api, sample_event("provider_verification_failed")).json["deliveries"] == expected


def test_one_event_fans_out_to_every_matching_webhook(api, runtime):
    for _ in range(25):
        api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                    "request": {"method": "POST", "url": "http://127.0.0.1:9/"}})
    assert post_event(api, sample_event("contract_published")).json["deliveries"] == 25
    # One entry of the feed carries them all, each marked as queued for the sweeper until a worker takes it.
    with runtime.sessions() as session:
        ids = set(session.scalars(select(Delivery.id)))
    assert {m.decode() for m in runtime.redis.zrange(FRESH, 0, -1)} == ids
    assert runtime.redis.llen(feed(runtime.settings.queue_name)) == 1
    assert set(take_fresh(runtime.redis, runtime.settings.queue_name, None)) == ids
    assert runtime.redis.zcard(FRESH) == 0


def test_deliveries_are_committed_before_they_are_queued(api, runtime, webhook, monkeypatch):
    """A worker may take the job at once: the delivery row must already be visible to it."""
    import relay.delivery.queue

    real, visible = relay.delivery.queue.enqueue_batch, []

    def spy(redis, name, deliveries, *args, **kwargs):
        with runtime.sessions() as session:  # a connection of its own: sees only what is committed
            visible.extend(session.get(Delivery, d) is not None for d in deliveries)
        return real(redis, name, deliveries, *args, **kwargs)

    monkeypatch.setattr(relay.delivery.queue, "enqueue_batch", spy)
    assert post_event(api, sample_event("contract_published")).status_code == 202
    assert visible == [True]


def test_a_revoked_intake_token_is_refused_on_its_very_next_event(api, client, runtime):
    made = api.post("/tokens", json={"name": "broker", "role": "intake"}).json
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert client.post("/events", json=sample_event("contract_published"), headers=headers).status_code == 202
    assert api.post(f"/tokens/{made['id']}/revoke").status_code == 200
    again = {**sample_event("contract_published"), "consumerVersionNumber": "2.0.0"}
    refused = client.post("/events", json=again, headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json["error"]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 1
