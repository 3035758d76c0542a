"""The delivery job on a real RQ worker and Redis: success, retries, failure, leases, redaction, signing."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook as StandardWebhook
from werkzeug import Response

from relay.delivery import leases
from relay.delivery.runner import DEFERRED, NOT_CLAIMED, run_delivery
from relay.models import Delivery, utcnow
from tests.conftest import Since, sample_event


def create_hook(api, url, **request):
    resp = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}],
                                       "request": {"method": "POST", "url": url, **request}})
    assert resp.status_code == 201, resp.json
    return resp.json


def send_event(api, name="provider_verification_failed", **overrides):
    resp = api.post("/events", json={**sample_event(name), **overrides})
    assert resp.status_code == 202
    return resp.json


def delivery_of(api, event_id):
    (delivery,) = [d for d in api.get("/deliveries").json["deliveries"] if d["event"] == event_id]
    return delivery


def make_due(runtime, delivery_id):
    with runtime.sessions.begin() as session:
        # A little in the past: leases compare due times on the database's clock, which SQLite keeps to the second.
        session.execute(update(Delivery).where(Delivery.id == delivery_id)
                        .values(next_attempt_at=utcnow() - timedelta(seconds=2)))


def test_delivers_the_rendered_request(api, httpserver, drain):
    httpserver.expect_request("/hook").respond_with_data("thanks", status=201)
    create_hook(api, httpserver.url_for("/hook") + "?p=${pactbroker.providerName}",
                headers={"Content-Type": "application/json"},
                body={"state": "${pactbroker.githubVerificationStatus}", "url": "${pactbroker.pactUrl}"})
    event = send_event(api)
    drain()
    (request, _), = httpserver.log
    assert request.args["p"] == "Animal Profile Service"
    assert json.loads(request.data) == {"state": "failure",
                                        "url": sample_event("provider_verification_failed")["pactUrl"]}
    delivery = delivery_of(api, event["event"])
    assert delivery["status"] == "succeeded"
    (attempt,) = delivery["attempts"]
    assert attempt["response"]["status"] == 201 and attempt["response"]["body"] == "thanks"
    assert attempt["request"]["url"].endswith("?p=Animal+Profile+Service") and attempt["duration_ms"] > 0


def test_5xx_retries_with_retry_after_then_succeeds(api, runtime, httpserver, drain):
    httpserver.expect_ordered_request("/hook").respond_with_response(
        Response("busy", status=503, headers={"Retry-After": "120"}))
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    create_hook(api, httpserver.url_for("/hook"))
    since = Since()
    event = send_event(api)
    drain()
    delivery = delivery_of(api, event["event"])
    assert delivery["status"] == "retrying" and len(delivery["attempts"]) == 1
    assert since.later_by(delivery["nextAttemptAt"], 120)  # Retry-After (120 s) wins over the first step (10 s)
    assert delivery["attempts"][0]["error"] == "HTTP 503 from target"
    make_due(runtime, delivery["id"])
    assert run_delivery(runtime, delivery["id"]) == DEFERRED  # the Retry-After holds every send to this host
    runtime.redis.delete(*runtime.redis.keys("pact-relay:hold:*"))  # ...until it has passed
    make_due(runtime, delivery["id"])
    assert run_delivery(runtime, delivery["id"]) == "succeeded"
    assert [a["response"]["status"] for a in delivery_of(api, event["event"])["attempts"]] == [503, 200]


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502])
def test_retryable_statuses(api, httpserver, drain, status):
    httpserver.expect_request("/hook").respond_with_data("", status=status)
    create_hook(api, httpserver.url_for("/hook"))
    event = send_event(api)
    drain()
    assert delivery_of(api, event["event"])["status"] == "retrying"


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_other_4xx_fail_at_once_and_can_be_replayed(api, httpserver, drain, status):
    httpserver.expect_ordered_request("/hook").respond_with_data("nope", status=status)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    create_hook(api, httpserver.url_for("/hook"))
    event = send_event(api)
    drain()
    failed = delivery_of(api, event["event"])
    assert failed["status"] == "failed" and failed["nextAttemptAt"] is None
    replay = api.post(f"/deliveries/{failed['id']}/replay")
    assert replay.status_code == 202 and replay.json["id"] != failed["id"]
    drain()
    assert api.get(f"/deliveries/{replay.json['id']}").json["status"] == "succeeded"


def test_schedule_used_up_means_failed(api, runtime, drain):
    create_hook(api, "http://127.0.0.1:9/closed-port")
    event = send_event(api)
    drain()
    delivery_id = delivery_of(api, event["event"])["id"]
    for _ in range(len(runtime.settings.retry_schedule)):
        make_due(runtime, delivery_id)
        run_delivery(runtime, delivery_id)
    delivery = delivery_of(api, event["event"])
    assert delivery["status"] == "failed" and len(delivery["attempts"]) == 3
    assert all("connection failed" in a["error"] for a in delivery["attempts"])


def test_a_held_lease_keeps_a_second_worker_out(api, runtime, httpserver, drain):
    httpserver.expect_request("/hook").respond_with_data("ok")
    create_hook(api, httpserver.url_for("/hook"))
    event = send_event(api)
    delivery_id = delivery_of(api, event["event"])["id"]
    with runtime.sessions.begin() as session:
        assert leases.claim(session, runtime.settings, [delivery_id])
    assert run_delivery(runtime, delivery_id) == NOT_CLAIMED
    assert httpserver.log == []
    with runtime.sessions.begin() as session:  # the first worker died: its lease runs out
        session.execute(update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert run_delivery(runtime, delivery_id) == "succeeded"
    assert run_delivery(runtime, delivery_id) == NOT_CLAIMED
    assert len(httpserver.log) == 1


def test_secrets_are_redacted_in_every_attempt_field(api, httpserver, drain):
    secret = "p@ss w/rd\"&=+"
    httpserver.expect_request("/hook").respond_with_data(f"echo {secret}", status=500,
                                                         headers={"X-Echo": secret})
    api.post("/secrets", json={"name": "tok", "value": secret})
    create_hook(api, httpserver.url_for("/hook") + "?t=${user.tok}", username="bob", password="hunter2hunter2",
                headers={"X-Api-Key": "${user.tok}", "X-Other": "v=${user.tok}"},
                body={"token": "${user.tok}"})
    event = send_event(api)
    drain()
    (request, _), = httpserver.log
    assert request.args["t"] == secret and request.headers["X-Other"] == f"v={secret}"
    delivery = delivery_of(api, event["event"])
    logged = json.dumps(delivery)
    for leaked in (secret, json.dumps(secret)[1:-1], "hunter2hunter2", request.headers["Authorization"][6:]):
        assert leaked not in logged
    attempt = delivery["attempts"][0]
    assert attempt["request"]["headers"]["X-Api-Key"] == "**********"
    assert attempt["request"]["headers"]["X-Other"] == "v=********"
    assert attempt["request"]["url"].endswith("?t=********")
    assert attempt["response"]["body"] == "echo ********"


def test_signed_requests_verify_with_standard_webhooks(api, httpserver, drain):
    httpserver.expect_request("/hook").respond_with_data("ok")
    created = create_hook(api, httpserver.url_for("/hook"), sign=True, body={"c": "${pactbroker.consumerName}"})
    event = send_event(api)
    drain()
    (request, _), = httpserver.log
    payload = StandardWebhook(created["signingSecret"]).verify(request.data, dict(request.headers))
    assert payload == {"c": "Matching Service"}
    assert request.headers["webhook-id"] == delivery_of(api, event["event"])["id"]


def test_loopback_is_refused_unless_allowed(api, runtime, httpserver, tmp_path, database_url, redis_url):
    from relay.runtime import Runtime
    from tests.conftest import make_settings

    httpserver.expect_request("/hook").respond_with_data("ok")
    create_hook(api, httpserver.url_for("/hook"))
    event = send_event(api)
    strict = Runtime(make_settings(tmp_path, database_url, redis_url, allow_private_networks=False,
                                   allowed_schemes=("http", "https")))
    delivery_id = delivery_of(api, event["event"])["id"]
    assert run_delivery(strict, delivery_id) == "failed"
    assert httpserver.log == []
    error = delivery_of(api, event["event"])["attempts"][0]["error"]
    assert "127.0.0.1 is a loopback address" in error
    strict.engine.dispose()


def test_deleted_webhook_fails_its_pending_delivery(api, drain):
    created = create_hook(api, "http://127.0.0.1:9/")
    event = send_event(api)
    api.delete(f"/webhooks/{created['uuid']}")
    drain()
    delivery = delivery_of(api, event["event"])
    assert delivery["status"] == "failed" and "deleted" in delivery["attempts"][0]["error"]


def test_header_splitting_is_refused(api, httpserver, drain):
    httpserver.expect_request("/hook").respond_with_data("ok")
    create_hook(api, httpserver.url_for("/hook"), headers={"X-Consumer": "${pactbroker.consumerName}"})
    event = send_event(api, consumerName="evil\r\nX-Injected: yes")
    drain()
    assert httpserver.log == []
    delivery = delivery_of(api, event["event"])
    assert delivery["status"] == "failed" and "line break" in delivery["attempts"][0]["error"]


def test_a_retry_is_signed_with_the_same_webhook_id(api, runtime, httpserver, drain):
    httpserver.expect_ordered_request("/hook").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    create_hook(api, httpserver.url_for("/hook"), sign=True)
    event = send_event(api)
    drain()
    delivery = delivery_of(api, event["event"])
    make_due(runtime, delivery["id"])
    assert run_delivery(runtime, delivery["id"]) == "succeeded"
    assert [r.headers["webhook-id"] for r, _ in httpserver.log] == [delivery["id"]] * 2


def test_logged_response_body_is_cut_at_4_kib(api, httpserver, drain):
    httpserver.expect_request("/hook").respond_with_data("x" * 10_000)
    create_hook(api, httpserver.url_for("/hook"))
    event = send_event(api)
    drain()
    (attempt,) = delivery_of(api, event["event"])["attempts"]
    assert attempt["response"]["body"] == "x" * 4096


SECRET = "abcdefghijklmnop-sécret-Ünï-✓"


@pytest.mark.parametrize("before", [4096 - 14, 4096 - 1, 0, 5000])
def test_a_secret_across_the_4_kib_cut_leaves_no_trace(api, httpserver, drain, before):
    """L2: the body is cut after redaction, so the part of a secret before the cut is masked too."""
    api.post("/secrets", json={"name": "apiKey", "value": SECRET})
    httpserver.expect_request("/hook").respond_with_data(("x" * before + SECRET + "y" * 100).encode(),
                                                         content_type="text/plain; charset=utf-8")
    create_hook(api, httpserver.url_for("/hook"), headers={"X-Key": "${user.apiKey}"})
    event = send_event(api)
    drain()
    (attempt,) = delivery_of(api, event["event"])["attempts"]
    assert attempt["response"]["body"] == ("x" * before + "********" + "y" * 100)[:4096]


def test_a_secret_echoed_back_in_another_charset_is_masked(api, httpserver, drain):
    """L2: a non-Latin-1 secret sent as UTF-8 and echoed back read as Latin-1 (the HTTP default) is masked."""
    api.post("/secrets", json={"name": "apiKey", "value": SECRET})

    def echo(request):
        raw = request.headers.environ["HTTP_X_KEY"].encode("latin-1")  # the bytes as they came
        return Response(b"got " + raw, content_type="text/plain", headers={"X-Echo": raw.decode("latin-1")})

    httpserver.expect_request("/hook").respond_with_handler(echo)
    create_hook(api, httpserver.url_for("/hook"), headers={"X-Key": "${user.apiKey}"})
    event = send_event(api)
    drain()
    (attempt,) = delivery_of(api, event["event"])["attempts"]
    stored = json.dumps(attempt, ensure_ascii=False)
    assert attempt["response"]["body"] == "got ********", attempt["response"]
    assert "abcdefghijklmnop" not in stored and attempt["response"]["headers"]["X-Echo"] == "********"


def test_a_worker_stops_without_waiting_on_its_command_channel(runtime):
    """RQ listens for commands on a pub/sub thread; with redis 8.2 its stop waited for that thread's 60 s read, so
    every worker stop (SIGTERM, a burst run) hung for a minute and a supervisor killed it holding leases."""
    import time

    from relay.delivery import queue
    from workers.worker import RelayWorker

    started = time.monotonic()
    for _ in range(20):  # a race between the thread's read and the stop: not every stop hit it
        queue.enqueue(runtime.redis, runtime.settings.queue_name, [("no-such-delivery", 0)])  # one job to run
        RelayWorker(runtime).work(burst=True, logging_level="WARNING")  # RQ's signal handlers need the main thread
    assert time.monotonic() - started < 30, "a worker waited out the read timeout of its command channel to stop"
    assert runtime.redis.llen(f"rq:queue:{runtime.settings.queue_name}") == 0


def test_every_spelling_the_relay_produces_of_a_secret_is_masked(api, runtime, httpserver, drain):
    """Issue 23 #6: a JSON body is rendered with ensure_ascii=False, and a target reading it as Latin-1 echoes it
    JSON-escaped (`\\u00e2\\u0082\\u00ac`); neither spelling may be stored or shown."""
    secret = 'a b"c\\d\tx~€-' + "k" * 12
    assert api.post("/secrets", json={"name": "Odd", "value": secret}).status_code == 201

    def echo(request):
        latin = request.get_data().decode("latin-1")  # what a target assuming the HTTP default reads
        return Response(json.dumps({"ascii": latin, "raw": latin}, ensure_ascii=False).encode("utf-8")
                        + b"\n" + json.dumps({"ascii": latin}).encode(), content_type="application/json")

    httpserver.expect_request("/hook").respond_with_handler(echo)
    create_hook(api, httpserver.url_for("/hook"), headers={"Content-Type": "application/json"},
                body={"secret": "${user.Odd}"})
    event = send_event(api)
    drain()
    (request, _), = httpserver.log
    assert json.loads(request.data) == {"secret": secret}  # the target did get it
    (attempt,) = delivery_of(api, event["event"])["attempts"]
    assert attempt["request"]["body"] == '{"secret":"********"}', attempt["request"]
    shown = json.dumps(attempt, ensure_ascii=False) + json.dumps(attempt)
    with runtime.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.exec_driver_sql("SELECT * FROM attempts") for v in row)
    once = json.dumps(secret, ensure_ascii=False)[1:-1]
    latin = once.encode().decode("latin-1")
    for form in (secret, once, json.dumps(secret)[1:-1], latin, json.dumps(latin)[1:-1],
                 json.dumps(latin, ensure_ascii=False)[1:-1], "k" * 12):
        assert form not in shown and form not in stored, form


def test_redis_lost_during_rq_maintenance_does_not_end_the_worker(settings, tmp_path):
    """A Sentinel failover during RQ's registry clean-up ended the worker: RQ runs it outside the part of its loop
    that waits for Redis to come back."""
    from dataclasses import replace

    from relay.runtime import Runtime
    from tests.conftest import free_port, start_redis
    from workers.worker import RelayWorker

    port = free_port()
    server = start_redis(port, tmp_path)
    runtime = Runtime(replace(settings, redis_url=f"redis://127.0.0.1:{port}/0"))
    try:
        worker = RelayWorker(runtime)
        server.terminate()
        server.wait(10)  # Redis is gone, as the primary is during a failover
        worker.run_maintenance_tasks()
        worker.check_for_suspension(burst=True)
        assert worker.last_cleaned_at is None  # not done: tried again on the next turn of the loop
    finally:
        server.kill()
        runtime.engine.dispose()
