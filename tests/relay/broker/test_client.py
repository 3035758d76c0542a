"""The broker connection against a loopback server: its origin only, its credentials, each bad answer one line."""

from __future__ import annotations

import threading

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from relay.broker.client import MAX_BYTES, BrokerClient, BrokerError, Reachability
from relay.config import Settings
from tests.conftest import free_port

TOKEN = "brk-token-never-shown"


def client_for(url: str, **settings) -> BrokerClient:
    values = {"broker_url": url.rstrip("/"), "broker_token": TOKEN, "broker_timeout": 0.5, **settings}
    return BrokerClient(Settings.from_env({}, database_url="sqlite://", redis_url=None, secret_key="k",
                                          encryption_keys=(), **values))


@pytest.fixture
def broker(httpserver) -> BrokerClient:
    return client_for(httpserver.url_for("/"))


def test_reads_json_with_the_token(broker, httpserver):
    httpserver.expect_request("/verification-results/1", headers={"Authorization": f"Bearer {TOKEN}"}) \
        .respond_with_json({"success": False})
    assert broker.get_json(httpserver.url_for("/verification-results/1")) == {"success": False}
    assert TOKEN not in repr(broker)


def test_basic_auth_when_no_token(httpserver):
    broker = client_for(httpserver.url_for("/"), broker_token=None, broker_username="relay",
                        broker_password="pw-never-shown")
    httpserver.expect_request("/r", headers={"Authorization": "Basic cmVsYXk6cHctbmV2ZXItc2hvd24="}) \
        .respond_with_json({})
    assert broker.get_json(httpserver.url_for("/r")) == {}


def test_another_origin_is_never_fetched_nor_given_the_credentials(broker, httpserver):
    elsewhere = HTTPServer(host="127.0.0.1", port=free_port())
    elsewhere.start()
    try:
        elsewhere.expect_request("/r").respond_with_json({})
        own = f"{httpserver.host}:{httpserver.port}"
        other_host = "127.0.0.2" if httpserver.host == "localhost" else "localhost"
        urls = [elsewhere.url_for("/r"), f"https://{own}/r", f"http://{other_host}:{httpserver.port}/r",
                f"http://user@{own}/r", "file:///etc/passwd", "/r", ""]
        for url in urls:
            with pytest.raises(BrokerError, match="not on the broker's origin"):
                broker.get_json(url)
        assert elsewhere.log == [] and httpserver.log == []
    finally:
        elsewhere.clear()
        elsewhere.stop()


def test_a_redirect_elsewhere_is_not_followed(broker, httpserver):
    httpserver.expect_request("/r").respond_with_data("", status=302, headers={"Location": "https://example.com/"})
    with pytest.raises(BrokerError, match="HTTP 302"):
        broker.get_json(httpserver.url_for("/r"))


def test_down():
    broker = client_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BrokerError, match=r"cannot reach the broker \(ConnectionError\)"):
        broker.get_json(broker.base_url + "/r")


def test_slow(broker, httpserver):
    release = threading.Event()

    def stall(request):
        release.wait(10)
        return Response("{}", mimetype="application/json")

    httpserver.expect_request("/r").respond_with_handler(stall)
    try:
        with pytest.raises(BrokerError, match="did not answer within 0.5 s"):
            broker.get_json(httpserver.url_for("/r"))
    finally:
        release.set()


@pytest.mark.parametrize("status, message", [(401, "refused the relay's credentials"), (403, "refused"),
                                             (500, "answered HTTP 500"), (404, "answered HTTP 404")])
def test_refused_and_broken(broker, httpserver, status, message):
    httpserver.expect_request("/r").respond_with_json({"error": TOKEN}, status=status)
    with pytest.raises(BrokerError, match=message) as caught:
        broker.get_json(httpserver.url_for("/r"))
    assert TOKEN not in str(caught.value)


def test_huge_declared_and_streamed(broker, httpserver):
    httpserver.expect_request("/declared").respond_with_data(b"x" * (5 * MAX_BYTES), content_type="application/json")
    httpserver.expect_request("/streamed").respond_with_handler(
        lambda request: Response((b"x" * 65536 for _ in range(80)), mimetype="application/json"))
    for path in ("/declared", "/streamed"):
        with pytest.raises(BrokerError, match="larger than 1024 KiB"):
            broker.get_json(httpserver.url_for(path))


@pytest.mark.parametrize("body", [b"<html>sign in</html>", b"[1, 2]", b"\xff\xfe"])
def test_not_json_or_not_an_object(broker, httpserver, body):
    httpserver.expect_request("/r").respond_with_data(body, content_type="text/html")
    with pytest.raises(BrokerError, match="not JSON|not a JSON object"):
        broker.get_json(httpserver.url_for("/r"))


def test_reachability_answers_at_once_and_learns_in_the_background(broker, httpserver):
    httpserver.expect_request("/").respond_with_json({"_links": {}})
    seen = Reachability()
    assert seen.check(broker) == "not checked yet"
    httpserver.wait(timeout=5)  # the background read reached the broker
    deadline = threading.Event()
    for _ in range(200):
        if seen.check(broker) == "ok":
            break
        deadline.wait(0.01)
    assert seen.check(broker) == "ok"
