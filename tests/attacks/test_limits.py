"""Request floods, oversized and deeply nested bodies, against the app with a real database and Redis."""

import json

import pytest

from relay.app import create_app
from relay.runtime import Runtime
from tests.conftest import make_settings, sample_event


@pytest.fixture
def limited(tmp_path, database_url, redis_url):
    """An app whose tokens may make 5 requests a minute."""
    runtime = Runtime(make_settings(tmp_path, database_url, redis_url, rate_limit=5, rate_window=60.0))
    yield runtime
    runtime.engine.dispose()


def token(runtime, role="admin"):
    from relay.security.tokens import create_token

    with runtime.sessions.begin() as session:
        return create_token(session, "flood", role)[1]


def test_a_flood_from_one_token_gets_429_with_retry_after(limited):
    client = create_app(runtime=limited).test_client()
    flooder, other = token(limited), token(limited)
    answers = [client.get("/secrets", headers={"Authorization": f"Bearer {flooder}"}) for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in answers[5:])
    assert answers[5].json["error"].startswith("too many requests")
    assert client.get("/secrets", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_a_flood_of_bad_tokens_from_one_address_gets_429_and_stops_filling_the_audit_log(
        tmp_path, database_url, redis_url):
    from sqlalchemy import func, select

    from relay.models import AuditEntry

    runtime = Runtime(make_settings(tmp_path, database_url, redis_url, auth_failure_limit=3))
    client = create_app(runtime=runtime).test_client()
    guesser = {"REMOTE_ADDR": "203.0.113.5"}
    guesses = [client.get("/webhooks", headers={"Authorization": f"Bearer prt_guess{n}"}, environ_base=guesser)
               for n in range(4)] + [client.get("/webhooks", environ_base=guesser)]  # no token at all counts too
    assert [r.status_code for r in guesses] == [401] * 3 + [429] * 2
    assert 1 <= int(guesses[-1].headers["Retry-After"]) <= 60
    assert "without a valid token from this address" in guesses[-1].json["error"]
    with runtime.sessions() as session:
        denied = session.scalar(select(func.count()).where(AuditEntry.type == "auth.denied"))
    assert denied == 3  # the 429s are counted in the metrics, not written one by one
    valid = {"Authorization": f"Bearer {token(runtime, 'read')}"}
    assert client.get("/webhooks", headers=valid, environ_base=guesser).status_code == 200  # a real token still works
    other = client.get("/webhooks", headers={"Authorization": "Bearer prt_x"}, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 401
    runtime.engine.dispose()


def test_a_token_over_its_limit_is_slowed_before_its_role_is_checked(limited):
    client = create_app(runtime=limited).test_client()
    reader = {"Authorization": f"Bearer {token(limited, 'read')}"}
    answers = [client.delete("/secrets/nope", headers=reader) for _ in range(7)]
    assert [r.status_code for r in answers] == [403] * 5 + [429] * 2


def test_intake_keeps_working_when_the_limiter_cannot_reach_redis(tmp_path, database_url):
    from tests.conftest import free_port

    runtime = Runtime(make_settings(tmp_path, database_url, f"redis://127.0.0.1:{free_port()}/0", rate_limit=1))
    client = create_app(runtime=runtime).test_client()
    headers = {"Authorization": f"Bearer {token(runtime, 'intake')}"}
    for version in range(4):  # over the limit of 1, yet all accepted: the limiter fails open
        event = {**sample_event("contract_published"), "consumerVersionNumber": f"1.{version}"}
        assert client.post("/events", json=event, headers=headers).status_code == 202
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {token(runtime)}"}).text
    assert 'pact_relay_up{component="redis"} 0.0' in metrics
    assert 'pact_relay_events_received_total{event_name="contract_published",outcome="stored"}' in metrics
    runtime.engine.dispose()


def test_oversized_bodies_get_413_and_store_nothing(api):
    big = {**sample_event("contract_published"), "buildUrl": "x" * (300 * 1024)}
    resp = api.post("/events", json=big)
    assert resp.status_code == 413 and "256 KiB" in resp.json["error"]
    resp = api.post("/webhooks", json={"description": "x" * (300 * 1024)})
    assert resp.status_code == 413
    assert api.get("/deliveries").json["deliveries"] == []


@pytest.mark.parametrize("depth", [33, 2000, 100_000])
@pytest.mark.parametrize("path", ["/events", "/webhooks", "/secrets"])
def test_deeply_nested_json_is_a_400(api, path, depth):
    body = '{"eventName": ' + "[" * depth + "]" * depth + "}"
    resp = api.post(path, data=body, content_type="application/json")
    assert resp.status_code in (400, 413), resp.json
    assert "errors" in resp.json or "error" in resp.json


def test_nesting_within_the_limit_is_validated_normally(api):
    body = {"events": [{"name": "contract_published"}],
            "request": {"url": "https://example.com/", "body": json.loads("[" * 20 + "]" * 20)}}
    assert api.post("/webhooks", json=body).status_code == 201


def test_anonymous_requests_stop_filling_the_audit_log_at_the_address_cap(tmp_path, database_url, redis_url):
    """Issue 23 #4: anonymous GET /session, POST /logout, /login failures and UI posts wrote a row each, without a
    per-address cap (four threads added 7,227 rows in 15 s)."""
    from sqlalchemy import func, select

    from relay.models import AuditEntry
    from tests.relay.web.ui.conftest import csrf_of

    runtime = Runtime(make_settings(tmp_path, database_url, redis_url, auth_failure_limit=3))
    client = create_app(runtime=runtime).test_client()
    flooder = {"REMOTE_ADDR": "203.0.113.7"}
    answers = []
    for n in range(3):
        answers += [client.get("/session", environ_base=flooder), client.post("/logout", environ_base=flooder),
                    client.post("/login", json={"email": f"nobody{n}@example.com", "password": "not a password"},
                                environ_base=flooder)]
        page = client.get("/ui/sign-in", environ_base=flooder)
        answers.append(client.post("/ui/sign-in", data={"csrf_token": csrf_of(page.text), "email": f"x{n}@example.com",
                                                         "password": "not a password"}, environ_base=flooder))

    def written(source):
        with runtime.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.source == source))

    assert written("203.0.113.7") == 3, [r.status_code for r in answers]
    assert answers[-1].status_code == 429 and 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert client.get("/session", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 401
    assert written("10.9.9.9") == 1  # another address keeps its own budget
    runtime.engine.dispose()
